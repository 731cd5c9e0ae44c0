"""Contamination-aware scores: planted overlaps found exactly, every corpus format, clean vs contaminated scores.

The flags must be exactly those of the decontamination rule (``medsbench.ins.decontam.overlap``) applied
to every (corpus text, item) pair: no planted overlap missed, and the false positives on clean controls
counted (none expected: controls share no 13-gram, CJK run or near-duplicate with any item). On the
real converted splits, every corpus text the rule finds contaminated by the run's items is explained by
the flagged items (no false negative), and every flag's first matching record overlaps its item.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import RAW, missing
from medsbench.contam import ContamOptions, check_run
from medsbench.contam.check import Item, flag_items
from medsbench.contam.corpus import open_corpus, record_texts
from medsbench.errors import MedsbenchError
from medsbench.ins.config import DecontamConfig
from medsbench.ins import decontam
from medsbench.ins.decontam import overlap
from medsbench.records.folder import RunFolder
from medsbench.tasks.format import Instance, write_task
from test_runs import CountingBackend, make_workspace

WORDS = [f"w{i:04d}" for i in range(6000)]
HAN = [chr(0x4E00 + i) for i in range(3000)]
KANA = [chr(0x3041 + i) for i in range(80)]


def latin(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def han(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(HAN) for _ in range(n))


def japanese(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(KANA if i % 2 else HAN) for i in range(n))


def planted(rng: random.Random) -> tuple[list[Item], list[str], set[str], list[str]]:
    """(items, corpus texts, ids planted in the corpus, clean control texts)."""
    items = [Item("task57", f"en{i}", latin(rng, 40)) for i in range(30)]
    items += [Item("task58", f"zh{i}", han(rng, 60)) for i in range(10)]
    items += [Item("task59", f"ja{i}", japanese(rng, 70)) for i in range(10)]
    items.append(Item("task57", "short", "w0001 w0002 w0003"))  # under 13 tokens: only an exact copy counts
    items.append(Item("task57", "near12", latin(rng, 12)))  # 12 words: no 13-gram, a near-duplicate can count
    text = {it.id: it.text for it in items}
    words = {k: v.split() for k, v in text.items() if k.startswith("en")}
    corpus = [
        latin(rng, 30) + " " + " ".join(words["en0"][5:18]) + " " + latin(rng, 10),  # one 13-gram
        "  " + text["en1"].upper().replace(" ", "\n  ") + " ",  # the same text, case and spacing changed
        " ".join(words["en2"][:20] + ["zzz"] + words["en2"][21:]),  # one word edited: n-grams and near
        han(rng, 30) + text["zh0"][10:31] + han(rng, 5),  # 21 Han characters (the Han size is 20)
        text["ja0"][3:35],  # 32 characters of Japanese (the kana size is 30)
        han(rng, 40) + " " + " ".join(words["en3"][:14]),  # an English passage inside a Chinese text
        "W0001   w0002 w0003",  # the short item, exactly
        text["near12"] + " w5999",  # one word more: Jaccard 8/9 of the 5-word shingles
    ]
    controls = [
        han(rng, 20) + text["zh1"][0:15] + han(rng, 20),  # 15 Han characters: under the Han size
        text["ja1"][0:25],  # 25 Japanese characters: under the kana size
        " ".join(words["en4"][:12]) + " " + latin(rng, 20),  # 12 words: under 13
        "w0001 w0002 w0003 w0004",  # the short item plus a word: not equal
        *(latin(rng, 50) for _ in range(40)), *(han(rng, 60) for _ in range(20)),
    ]
    return items, corpus, {"en0", "en1", "en2", "zh0", "ja0", "en3", "short", "near12"}, controls


@pytest.fixture(scope="module")
def world():
    return planted(random.Random(7))


def write_lines(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(t.replace("\n", " ") + "\n" for t in texts), encoding="utf-8")
    return path


def test_planted_overlaps_found_exactly_and_false_positives_counted_on_controls(tmp_path, world):
    items, corpus, plants, controls = world
    cfg = DecontamConfig(max_ngram_test_freq=None)
    both = write_lines(tmp_path / "corpus.txt", corpus + controls)
    flags, rule = flag_items(items, [open_corpus(both)], cfg)
    assert {f.id for f in flags} == plants  # no false negative, no false positive
    by_id = {f.id: f for f in flags}
    assert by_id["short"].reasons == ["exact_input", "near"] and by_id["en0"].reasons == ["ngram"]
    assert by_id["en1"].reasons == ["exact_input", "ngram", "near"] and by_id["en2"].reasons == ["ngram"]
    assert by_id["near12"].reasons == ["near"] and by_id["zh0"].reasons == ["ngram"] and by_id["ja0"].reasons == ["ngram"] and by_id["en3"].reasons == ["ngram"]
    assert [by_id[k].first.record for k in ("en0", "en1", "short")] == [1, 2, 7]  # line numbers
    # the clean controls alone: false positives counted (none)
    only = write_lines(tmp_path / "controls.txt", controls)
    false_positives = flag_items(items, [open_corpus(only)], cfg)[0]
    assert len(false_positives) == 0 and len(controls) == 64
    # the flags are the rule applied to every (corpus text, item) pair (``overlap``: one item's index, one text)
    pairs = [(it.id, decontam.TestIndex.from_texts([("t", it.text)], cfg)) for it in items]
    assert overlap(corpus[0], items[0].text, cfg) == "ngram"
    truth = {i for i, index in pairs for text in corpus + controls if index.contaminated(text.replace("\n", " "))}
    assert truth == plants
    assert rule.ngram == 13 and rule.ngram_han == 20 and rule.ngram_kana == 30 and rule.near


def test_an_ngram_shared_by_several_items_flags_every_one_and_boilerplate_is_cut(tmp_path):
    rng = random.Random(3)
    template = "w5990 w5991 w5992 w5993 w5994 w5995 w5996 w5997 w5998 w5999 w5989 w5988 w5987"
    items = [Item("task57", f"t{i}", f"{latin(rng, 10)} {template} {latin(rng, 10)}") for i in range(8)]
    corpus = write_lines(tmp_path / "c.txt", [latin(rng, 5) + " " + template])
    # 8 items share the 13-gram: above the default cut of 5 it is boilerplate and proves nothing
    assert flag_items(items, [open_corpus(corpus)], DecontamConfig())[0] == []
    flags, rule = flag_items(items, [open_corpus(corpus)], DecontamConfig(max_ngram_test_freq=8))
    assert {f.id for f in flags} == {f"t{i}" for i in range(8)} and rule.ignored_ngrams == 0
    assert flag_items(items, [open_corpus(corpus)], DecontamConfig())[1].ignored_ngrams == 1


def test_every_corpus_format_is_read_with_its_files_and_record_numbers(tmp_path, world):
    import pyarrow as pa
    import pyarrow.parquet as pq

    items, corpus, _, controls = world
    text = {it.id: it.text for it in items}
    mix = tmp_path / "mix" / "data"
    mix.mkdir(parents=True)
    msgs = [[{"role": "user", "content": f"Answer.\n\nInput:\n{t}"}, {"role": "assistant", "content": "B"}]
            for t in (controls[5], text["en0"], controls[6])]
    pq.write_table(pa.table({"messages": msgs, "task_id": ["x"] * 3}), mix / "train-00001-of-00001.parquet")
    task = tmp_path / "t.train.json"
    write_task(task, {"Definition": ["d"]}, [Instance("a", controls[7], ["o"]), Instance("b", text["en1"], ["x"])])
    task_jsonl = tmp_path / "t.train.jsonl"
    write_task(task_jsonl, {"Definition": ["d"]}, [Instance("c", text["zh0"], ["o"])])
    jsonl = tmp_path / "any.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ({"text": controls[8]}, {}, {"q": text["ja0"], "n": 3})) + "\n")
    txt = write_lines(tmp_path / "p.txt", [controls[9], "", text["en3"]])
    from datasets import Dataset

    hf = tmp_path / "hf"
    Dataset.from_dict({"input": [controls[10], text["en2"]], "output": ["x", "y"]}).save_to_disk(str(hf))
    corpora = [open_corpus(p) for p in (tmp_path / "mix", task, task_jsonl, jsonl, txt, hf)]
    assert [c.kind for c in corpora] == ["mixture", "task", "task", "jsonl", "text", "hf_dataset"]
    flags, _ = flag_items(items, corpora, DecontamConfig(max_ngram_test_freq=None))
    got = {f.id: (f.first.corpus, Path(f.first.file).name, f.first.record) for f in flags}
    assert got == {"en0": (0, "train-00001-of-00001.parquet", 2), "en1": (1, "t.train.json", 2),
                   "zh0": (2, "t.train.jsonl", 1), "ja0": (3, "any.jsonl", 3), "en3": (4, "p.txt", 3),
                   "en2": (5, got["en2"][1], 2)}
    assert got["en2"][1].endswith(".arrow")
    described = [c.describe() for c in corpora]
    assert described[0].files[0].records == 3 and described[0].files[0].texts == 6  # each message on its own
    assert described[1].files[0].texts == 6  # input, output and their join
    assert all(len(f.sha256) == 64 for d in described for f in d.files)
    assert record_texts({"input": "a", "output": ["b", "c"]}) == ["a", "b", "c", "a\nb\nc"]
    assert record_texts({"messages": [{"content": "a"}, {"content": "b"}]}) == ["a", "b"]
    assert record_texts({"q": "a", "n": 3, "r": " "}) == ["a"]
    for bad, message in ((tmp_path / "nope", "corpus not found"), (tmp_path / "x.csv", "unknown corpus file type")):
        if bad.suffix:
            bad.write_text("a,b\n")
        with pytest.raises(MedsbenchError, match=message):
            open_corpus(bad)


def make_run(tmp_path: Path) -> Path:
    """A run of the fake model on 8 MCQA items (odd ones answered right) and 6 NER items."""
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    run = tmp_path / "run"
    evaluate(CountingBackend(), "task57,task126", workspace=ws, out=run, progress=False)
    return run


def test_check_run_writes_the_report_and_scores_clean_and_contaminated_items_apart(tmp_path):
    run = make_run(tmp_path)
    rows = RunFolder(run).predictions()
    right = [r for r in rows if r.task_id == "task57" and "[A]" in (r.input or "")]
    assert len(right) == 4
    corpus = write_lines(tmp_path / "c.txt", [r.input for r in right] + ["Sentence 0 with aspirin."])
    report = check_run(run, [corpus], ContamOptions(bootstrap=200))
    again = RunFolder(run).contamination()
    assert again == report and (run / "contamination.json").is_file()
    assert report.n_items == 14 and report.n_contaminated == 5
    assert report.predictions_sha256 == RunFolder(run).predictions_sha256()
    assert report.corpora[0].files[0].records == 5 and report.rule.text == "input"
    t = report.tasks["task57"]
    assert (t.n_items, t.n_contaminated, t.clean.n, t.contaminated.n) == (8, 4, 4, 4)
    assert t.contaminated.metrics["accuracy"] == 100.0 and t.clean.metrics["accuracy"] == 0.0
    # the official script compares the first character only: the fake model's wrong "ans-..." counts as "A"
    assert t.contaminated.reference["accuracy"] == 100.0 and t.clean.reference["accuracy"] == 100.0
    assert t.difference.metrics["accuracy"] == -100.0 and t.difference.ci["accuracy"] == (-100.0, -100.0)
    ner = report.tasks["task126"]
    assert ner.n_contaminated == 1 and ner.clean.n == 5 and ner.difference is not None
    assert report.categories["mcqa"].metrics["accuracy"] == 0.0 and report.categories["mcqa"].tasks == ["task57"]
    # with the gold answers: a short input whose gold answer is copied with it counts only then
    gold = write_lines(tmp_path / "g.txt", ["Sentence 1 with aspirin. aspirin"])
    assert check_run(run, [gold], ContamOptions(bootstrap=0)).n_contaminated == 0
    assert check_run(run, [gold], ContamOptions(text="input+gold", bootstrap=0)).n_contaminated == 1
    (tmp_path / "g.jsonl").write_text(json.dumps({"input": "Sentence 1 with aspirin.", "output": "aspirin"}) + "\n")
    with_gold = check_run(run, [tmp_path / "g.jsonl"], ContamOptions(text="input+gold", bootstrap=0))
    assert [(f.id, f.reasons) for f in with_gold.items] == [("t1", ["exact_input", "near"])]
    # input+gold adds the joined texts: what the inputs alone match is still flagged, counted once per item
    both = write_lines(tmp_path / "b.txt", ["Sentence 3 with aspirin.", "Sentence 1 with aspirin. aspirin"])
    only_input = check_run(run, [both], ContamOptions(bootstrap=0))
    joined = check_run(run, [both], ContamOptions(text="input+gold", bootstrap=0))
    assert [f.id for f in only_input.items] == ["t3"] and sorted(f.id for f in joined.items) == ["t1", "t3"]
    assert joined.n_items == 14 and joined.corpora[0].files[0].records == 2 and joined.rule.ignored_ngrams_with_gold == 0


def test_cli_contam_and_a_tampered_report(tmp_path):
    run = make_run(tmp_path)
    corpus = write_lines(tmp_path / "c.txt", ["Sentence 2 with aspirin."])
    cmd = [sys.executable, "-m", "medsbench.cli", "contam", str(run), "--against", str(corpus), "--bootstrap", "100"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 of 14 items contaminated" in done.stdout and "task126" in done.stdout
    bad = subprocess.run([*cmd[:5], "--against", str(tmp_path / "missing")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error:") and "corpus not found" in bad.stderr
    assert "Traceback" not in bad.stderr
    data = json.loads((run / "contamination.json").read_text())
    data["items"][0]["id"] = "bad\nid"
    (run / "contamination.json").write_text(json.dumps(data))
    with pytest.raises(MedsbenchError, match="contamination.json"):
        RunFolder(run).contamination()


REAL = ("igakuqa", "headqa", "frenchmedmcqa", "pubmedqa")


@pytest.fixture(scope="module")
def real_splits(tmp_path_factory):
    from medsbench.sources import convert
    from medsbench.tasks import find_task_files

    if not RAW.is_dir():
        missing(f"{RAW} not present")
    out = tmp_path_factory.mktemp("real") / "tasks"
    for name in REAL:
        convert(name, RAW / name, out)
    return {tid: splits for tid, splits in find_task_files(out).items() if "train" in splits and "test" in splits}


def test_real_splits_no_false_negative_and_every_flag_has_its_evidence(real_splits):
    """Test items of the real splits against their own train splits (the first 400 test items per task)."""
    from medsbench.tasks import iter_instances

    items = []
    for tid, splits in sorted(real_splits.items()):
        for i, inst in enumerate(iter_instances(splits["test"])):
            if i == 400:
                break
            items.append(Item(tid, inst.id, inst.input))
    cfg = DecontamConfig()
    corpora = [open_corpus(s["train"]) for _, s in sorted(real_splits.items())]
    flags, _ = flag_items(items, corpora, cfg)
    flagged = {(f.task_id, f.id) for f in flags}
    assert flags, "the real train splits share text with their test splits"
    # no false negative: every train text the rule finds contaminated by the items is contaminated by the flagged ones
    full = decontam.TestIndex.from_texts([(it.task_id, it.text) for it in items], cfg)
    subset = decontam.TestIndex.from_texts([(it.task_id, it.text) for it in items if (it.task_id, it.id) in flagged], cfg)
    texts = [t for c in corpora for _, _, record in c.records() for t in record]
    dirty = [t for t, r in zip(texts, full.check_texts(texts)[0]) if r >= 0]
    assert dirty and bool(np.all(subset.check_texts(dirty)[0] >= 0))
    # evidence: each flag's first record overlaps its item under the pairwise rule
    records = {(str(f), n): record for c in corpora for f, n, record in c.records()}
    text = {(it.task_id, it.id): it.text for it in items}
    for flag in flags[:60]:
        record = records[(flag.first.file, flag.first.record)]
        assert any(overlap(t, text[(flag.task_id, flag.id)], cfg) for t in record), flag
