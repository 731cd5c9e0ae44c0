"""`ins build`: decontamination by default, atomic rebuilds, workers, and the decontamination rule as a function."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import RAW, missing, need_module, run_cli

from medsbench.ins import InsConfig, build_mixture
from medsbench.ins import decontam
from medsbench.ins.decontam import overlap
from medsbench.ins.stats import check_shards
from medsbench.tasks.format import iter_instances, read_meta, write_task

REPO = Path(__file__).resolve().parents[1]




def _rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for p in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def _tree(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (the lock file aside)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".medsbench.lock"}


@pytest.fixture(scope="module")
def medqa_test(tmp_path_factory) -> Path:
    """The real MedQA (USMLE) test split, converted from ../shared/data/raw."""
    if not (RAW / "medqa_usmle").is_dir():
        missing("raw medqa_usmle not present")
    from medsbench.sources import convert

    out = tmp_path_factory.mktemp("medqa")
    written = convert("medqa_usmle", RAW / "medqa_usmle", out)
    return next(p for p in written if p.name.endswith(".test.json"))


def _planted(root: Path, medqa_test: Path, n_planted: int = 200) -> Path:
    """OTHER/tasks: MedQA's test split and a train split holding ``n_planted`` copies of its test items."""
    tasks = root / "OTHER" / "tasks"
    tasks.mkdir(parents=True)
    test = list(iter_instances(medqa_test))
    (tasks / medqa_test.name).write_bytes(medqa_test.read_bytes())
    meta = read_meta(medqa_test)
    meta["medsbench"] = {**meta["medsbench"], "split": "train"}
    clean = [{"id": f"clean-{i}", "input": f"Question: which drug number {i} treats condition {i * 7919 % 1000}? Options: A. x{i} B. y{i}",
              "output": "The right answer is A: x."} for i in range(300)]
    copies = [{"id": f"planted-{i}", "input": t.input, "output": t.output} for i, t in enumerate(test[:n_planted])]
    write_task(tasks / medqa_test.name.replace(".test.", ".train."), meta, clean + copies)
    return tasks


# --- decontamination is never skipped silently ------------------------------------------------------


def test_default_decontaminates_against_the_test_splits_beside_the_train_splits(tmp_path, medqa_test, capsys, monkeypatch):
    """`ins build --tasks OTHER/tasks` (no --bench-tasks, no medsbench-work here) drops all 200 planted test copies."""
    tasks = _planted(tmp_path, medqa_test)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "mix"
    code, _, err = run_cli(capsys, "ins", "build", "--tasks", str(tasks), "--out", str(out), "--no-near-dup", "--workers", "1")
    assert code == 0, err
    assert "decontamination: 0 test instance" not in err
    stats = json.loads((out / "stats.json").read_text())
    dec = stats["decontamination"]
    assert dec["enabled"] and dec["folders"] == [str(tasks)] and dec["test_instances"] == len(list(iter_instances(medqa_test)))
    assert dec["test_file_sha256"] == [hashlib.sha256(medqa_test.read_bytes()).hexdigest()]
    assert stats["tasks"]["task57"]["contaminated"] == 200
    assert not [r for r in _rows(out) if "planted" in r["id"]]
    card = (out / "card.md").read_text()
    assert f"found in `{tasks}`" in card and dec["test_set_sha256"] in card
    # --fail-on-contamination now fails instead of passing a contaminated mixture
    code, _, err = run_cli(capsys, "ins", "build", "--tasks", str(tasks), "--out", str(tmp_path / "mix2"),
                           "--no-near-dup", "--fail-on-contamination", "--workers", "1")
    assert code == 1 and "200 training example(s) overlap benchmark test instances" in err


def test_no_test_file_is_refused_unless_no_decontamination(tmp_path, medqa_test, capsys, monkeypatch):
    tasks = _planted(tmp_path, medqa_test)
    (tasks / medqa_test.name).unlink()  # only the train split is left
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "mix"
    code, _, err = run_cli(capsys, "ins", "build", "--tasks", str(tasks), "--out", str(out), "--no-near-dup")
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(lines) == 1 and "no benchmark test file" in lines[0] and "--no-decontamination" in lines[0]
    assert not out.exists()
    # the workspace's test splits are the other default place
    ws = tmp_path / "ws"
    (ws / "tasks").mkdir(parents=True)
    (ws / "tasks" / medqa_test.name).write_bytes(medqa_test.read_bytes())
    code, _, err = run_cli(capsys, "ins", "build", "--tasks", str(tasks), "--out", str(out), "--no-near-dup", "--workspace", str(ws))
    assert code == 0, err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["decontamination"]["folders"] == [str(tasks), str(ws / "tasks")]
    assert stats["decontamination"]["test_files"] == [str(ws / "tasks" / medqa_test.name)] and stats["tasks"]["task57"]["contaminated"] == 200
    # saying so explicitly builds without it, and the card says nothing was checked
    code, _, err = run_cli(capsys, "ins", "build", "--tasks", str(tasks), "--out", str(tmp_path / "raw-mix"), "--no-near-dup",
                           "--no-decontamination")
    assert code == 0, err
    stats = json.loads((tmp_path / "raw-mix" / "stats.json").read_text())
    assert stats["decontamination"]["enabled"] is False and stats["tasks"]["task57"]["contaminated"] == 0
    assert "Decontamination was switched off" in (tmp_path / "raw-mix" / "card.md").read_text()


# --- a rebuild replaces the mixture whole, or not at all -------------------------------------------------

# Builds like the CLI, but stops before writing the card (data and stats of the new seed are written).
STOP_BEFORE_CARD = """
import sys, time
import medsbench.ins.build as build
def stop(out, stats):
    print("card", flush=True)
    time.sleep(600)
build.write_card = stop
from medsbench.cli import main
main(sys.argv[1:])
"""


def _small_tasks(root: Path) -> Path:
    tasks = root / "tasks"
    from medsbench.sources.registry import TaskSpec, task_meta

    def meta(split: str) -> dict:
        spec = TaskSpec(task_id="task900", slug="synthetic", definition="Answer the question.", source="Synthetic", url="-",
                        license="CC0", category="Question Answering", language="en")
        return task_meta(spec, split, "synthetic")

    write_task(tasks / "task900_synthetic.train.json", meta("train"),
               [{"id": i, "input": f"Synthetic question {i} about dose {i * 37 % 101} mg of drug {i % 13}?", "output": f"answer {i % 5}"}
                for i in range(400)])
    write_task(tasks / "task900_synthetic.test.json", meta("test"),
               [{"id": i, "input": f"Held-out question {i} on a different topic entirely, number {i}.", "output": "x"} for i in range(20)])
    return tasks


def test_killed_rebuild_leaves_the_previous_mixture_whole(tmp_path):
    tasks = _small_tasks(tmp_path)
    out = tmp_path / "mix"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    base = ["ins", "build", "--tasks", str(tasks), "--out", str(out), "--no-near-dup", "--workers", "1"]
    done = subprocess.run([sys.executable, "-m", "medsbench.cli", *base, "--seed", "1"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    before = _tree(out)
    proc = subprocess.Popen([sys.executable, "-c", STOP_BEFORE_CARD, *base, "--seed", "2"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "card"
        stages = sorted(tmp_path.glob(".mix.build-*"))
        assert len(stages) == 1 and json.loads((stages[0] / "stats.json").read_text())["seed"] == 2  # the new seed, half-written
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _tree(out) == before  # data, stats, card and plots of seed 1, every byte
    stats = json.loads((out / "stats.json").read_text())
    assert stats["seed"] == 1 and check_shards(out, stats) == stats["totals"]["examples"]
    # the next build removes the dead build's staging folder and swaps its own mixture in
    done = subprocess.run([sys.executable, "-m", "medsbench.cli", *base, "--seed", "3"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob(".mix.build-*"))
    assert json.loads((out / "stats.json").read_text())["seed"] == 3 and "with seed 3" in (out / "card.md").read_text()


def test_failed_rebuild_leaves_the_previous_mixture_and_no_staging(tmp_path, monkeypatch):
    tasks = _small_tasks(tmp_path)
    out = tmp_path / "mix"
    cfg = InsConfig(seed=1).updated(**{"dedupe.near": False, "decontam.near": False})
    build_mixture([tasks], out, cfg, workers=1)
    before = _tree(out)
    import medsbench.ins.export as export

    def broken(self, rec):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.ShardWriter, "add_records", broken)
    with pytest.raises(OSError, match="No space left"):
        build_mixture([tasks], out, cfg.updated(seed=2), workers=1)
    assert _tree(out) == before and not list(tmp_path.glob(".mix.build-*"))


# --- workers -------------------------------------------------------------------------------------------


def test_one_and_two_workers_write_the_same_bytes(tmp_path):
    """Real converted train/test splits (BC5CDR chemical NER), near dedupe on, JSONL too: 1 and 2 workers agree."""
    if not (RAW / "bc5cdr").is_dir():
        missing("raw bc5cdr not present")
    from medsbench.sources import convert

    tasks = tmp_path / "tasks"
    convert("bc5cdr_chem", RAW / "bc5cdr", tasks)
    cfg = InsConfig(seed=5).updated(**{"export.jsonl": True, "export.shard_rows": 3000, "export.row_group_rows": 700})
    a, b = tmp_path / "one" / "mix", tmp_path / "two" / "mix"
    sa = build_mixture([tasks], a, cfg, workers=1)
    build_mixture([tasks], b, cfg, workers=2)
    assert sa["totals"]["examples"] > 3000 and sa["totals"]["shards"] >= 2
    assert _tree(a) == _tree(b)


# --- the decontamination rule as a function ----------------------------------------------------------------


def test_overlap_rule_is_the_builders_rule(medqa_test):
    test = [i.input for i in iter_instances(medqa_test)][:50]
    stem = test[3]
    assert overlap(stem, stem) == "exact_input"
    assert overlap("Board review: " + stem + " Explain.", stem) == "ngram"
    assert overlap("An unrelated sentence about the weather in spring.", stem) is None
    from medsbench.ins.dedupe import tokens

    words = tokens(stem)
    assert overlap("x " + " ".join(words[:12]), stem) is None  # 12 shared tokens: below the 13-gram rule
    assert overlap("x " + " ".join(words[:13]), stem) == "ngram"
    # Han script: 20-character n-grams
    zh = "患者男性，六十五岁，因胸痛三小时入院，心电图提示急性下壁心肌梗死，最适当的治疗是什么"
    chars = "".join(tokens(zh))  # CJK characters are one token each; punctuation is none
    assert overlap("请回答：" + chars[:20], zh) == "ngram" and overlap("请回答：" + chars[:19], zh) is None
    index = decontam.TestIndex.from_texts([("task57", t) for t in test])
    hit = index.contaminated("Board review: " + stem)
    assert hit is not None and (hit.reason, hit.test_task) == ("ngram", "task57")
    reason, _ = index.check_texts(test)
    assert (reason == 0).all()  # every test input is its own exact match
    assert index.contaminated("Nothing like any of them.") is None


def test_signer_equals_datasketch_also_for_texts_shorter_than_a_shingle():
    """MinHash signatures equal datasketch's MinHash over each item's shingles; items of 1-4 words sit
    between longer ones (they once received the shingles of their neighbours)."""
    datasketch = need_module("datasketch")
    from medsbench.ins.dedupe import Signer, rolling, token_hashes, tokens

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 30)))) for _ in range(300)]
    toks = [tokens(t) for t in texts]
    lengths = np.array([len(t) for t in toks])
    assert ((lengths > 0) & (lengths < 5)).sum() > 20
    th = token_hashes([w for t in toks for w in t])
    sigs, active = Signer(num_perm=64, shingle=5).signatures(th, lengths)
    hashes, owner = rolling(th, lengths, 5, short=True)
    perms = datasketch.MinHash(num_perm=64, seed=1, scheme="affine64").permutations
    for i in range(len(texts)):
        mine = hashes[owner == i]
        assert active[i] == bool(len(mine))
        if len(mine):
            m = datasketch.MinHash(num_perm=64, permutations=perms, scheme="affine64", hashfunc=int)
            m.update_batch(mine.tolist())
            assert (sigs[i] == m.hashvalues).all(), i


def test_workers_report_a_bad_file_in_one_line(tmp_path, capsys):
    tasks = _small_tasks(tmp_path)
    write_task(tasks / "task901_bad.train.json", {"Definition": ["d"], "medsbench": {"task_id": "task901", "split": "train"}},
               [{"id": 1, "input": "q?", "output": 3}])
    code, _, err = run_cli(capsys, "ins", "build", "--tasks", str(tasks), "--out", str(tmp_path / "m"), "--workers", "2")
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(lines) == 1 and "task901_bad.train.json" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.build-*"))
