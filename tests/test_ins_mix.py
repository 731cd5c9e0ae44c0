"""MedS-Ins defaults on real data: balanced mix, the paper's paraphrases by path, script-aware decontamination, lock."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import RAW

from medsbench.ins import InsConfig, build_mixture, decontam
from medsbench.ins.config import BalanceConfig, DecontamConfig
from medsbench.ins.dedupe import HAN, KANA, LATIN, Signer, script_class, tokens
from medsbench.ins.instructions import load_sidecar
from medsbench.ins.mixer import allocate
from medsbench.tasks.format import iter_instances

# Holds fileio.exclusive_lock on argv[1] until killed.
HOLD = ("import sys, time\nfrom medsbench.fileio import exclusive_lock\n"
        "with exclusive_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n")
DEFINITIONS = RAW / "meds_ins_definitions" / "RewriteDefinitions.json"
BEFORE = DecontamConfig(ngram_han=13, ngram_kana=13)  # the pre-CJK behaviour: 13-grams over single characters


def _convert(tmp: Path, *names: str) -> Path:
    from medsbench.errors import MedsbenchError
    from medsbench.sources import convert, sources

    specs = sources()
    out = tmp / "tasks"
    for name in names:
        spec = specs.get(name)
        if spec is None or not (RAW / spec.raw_folder).is_dir():
            pytest.skip(f"raw source {name} not available")
        try:
            convert(name, RAW / spec.raw_folder, out)
        except MedsbenchError as exc:  # pragma: no cover - depends on the checkout's data
            pytest.skip(f"{name}: {exc}")
    return out


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert found, f"no {pattern} in {folder}"
    return found[0]


# --- balance ----------------------------------------------------------------------------------


def test_default_allocation_never_exceeds_the_cap():
    """With T >= 1 and the default total, no task gets more than ``cap`` examples (random size mixes)."""
    bal = BalanceConfig()
    assert bal.cap is not None and bal.temperature > 1 and bal.max_repeats > 1
    rng = random.Random(7)
    for _ in range(300):
        sizes = {f"t{i}": rng.choice([rng.randint(1, 300), rng.randint(300, 20_000), rng.randint(20_000, 300_000)])
                 for i in range(rng.randint(1, 30))}
        got = allocate(sizes, bal)
        assert max(got.values()) <= bal.cap
        assert sum(got.values()) == sum(min(n, bal.cap) for n in sizes.values())
        # small tasks are upsampled (never above max_repeats times their size), large ones are not
        assert all(got[t] <= n * bal.max_repeats for t, n in sizes.items())


def test_balanced_default_on_real_splits_with_paraphrases(tmp_path):
    """ICD-10-CM dominates the natural mix of real train splits; the default caps it and uses the paraphrases."""
    if not DEFINITIONS.is_file():
        pytest.skip("RewriteDefinitions.json not present")
    tasks = _convert(tmp_path, "icd10cm", "medicationqa", "pubmedqa", "igakuqa", "hoc")
    cfg = InsConfig().updated(**{"instructions.definitions": DEFINITIONS, "dedupe.near": False, "decontam.near": False,
                                 "shots.probs": {0: 1.0}})
    out = tmp_path / "mix"
    stats = build_mixture([tasks], out, cfg, bench_tasks=[tasks])
    cap = cfg.balance.cap
    before = stats["shares_before_balancing"]["task"]
    after = stats["shares"]["task"]
    assert before["task115"]["share"] > 0.9  # the natural mix is almost all ICD-10-CM code explanation
    for tid, r in stats["tasks"].items():
        assert r["emitted"] <= cap, tid
    assert 0 < after["task115"]["n"] <= cap and after["task115"]["share"] < 0.5
    assert stats["shares_before_balancing"]["source"] and stats["shares"]["source"]
    # Paraphrases from the file are used: several distinct instructions per task that has them.
    defs = load_sidecar(DEFINITIONS)
    import pyarrow.parquet as pq

    rows = [r for p in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    instructions: dict[str, Counter] = {}
    for r in rows:
        instructions.setdefault(r["task_id"], Counter())[r["messages"][0]["content"]] += 1
    for tid in ("task115", "task65", "task106"):
        v = defs[tid]
        used = instructions[tid]
        assert len(used) > 1 and stats["tasks"][tid]["paraphrases_used"] > 1
        assert any(p in used for p in v.paraphrases) and v.original in used
        assert set(used) <= {v.original, *v.paraphrases}
    assert stats["instructions"]["paraphrase"] > 0 and stats["instructions"]["definitions"] == str(DEFINITIONS)
    card = (out / "card.md").read_text(encoding="utf-8")
    assert "| category | before: clean | share | after: examples | share |" in card
    assert "| source | before: clean | share | after: examples | share |" in card
    assert str(DEFINITIONS) in card


def test_definitions_cli_and_config(tmp_path, capsys):
    """`instructions.definitions` resolves against the config's folder; a missing `--definitions` file is one line."""
    from medsbench.cli import main
    from medsbench.ins import load_ins_config

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("instructions:\n  definitions: defs/RewriteDefinitions.json\n")
    assert load_ins_config(cfg_file).instructions.definitions == tmp_path / "defs" / "RewriteDefinitions.json"
    tasks = _tiny_tasks(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["ins", "build", "--tasks", str(tasks), "--bench-tasks", str(tasks), "--out", str(tmp_path / "m"),
              "--definitions", str(tmp_path / "nope.json")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and "nope.json: instruction sidecar not found" in errors[0], err


def _tiny_tasks(tmp_path: Path) -> Path:
    from medsbench.sources.registry import TaskSpec, task_meta
    from medsbench.tasks.format import write_task

    tasks = tmp_path / "tasks"
    spec = TaskSpec(task_id="task9001", slug="s", definition="Answer the question.", source="S", url="-", license="CC0",
                    category="Question Answering", language="en")
    meta = task_meta(spec, "train", "synthetic")
    write_task(tasks / "task9001_s.train.json", meta, [{"id": i, "input": f"Question number {i} about aspirin?", "output": "yes"} for i in range(5)])
    return tasks


# --- script-aware decontamination ------------------------------------------------------------


def test_script_classes():
    assert script_class("A 45-year-old man with chest pain.", tokens("A 45-year-old man with chest pain.")) == LATIN
    zh = "Question: 最易引起输血后肝炎的病毒是（　　）。\nOptions:\nA. HBV\nB. HAV"
    ja = "Question: 高アンモニア血症をきたす疾患はどれか。\nOptions:\nA. Gaucher病"
    assert script_class(zh, tokens(zh)) == HAN and script_class(ja, tokens(ja)) == KANA
    mixed = "Aspirin (阿司匹林) is used for secondary prevention of myocardial infarction and stroke."
    assert script_class(mixed, tokens(mixed)) == LATIN


def _reasons(test_files: list[Path], cfg: DecontamConfig, texts: list[str]) -> list[str | None]:
    index = decontam.TestIndex.build(test_files, cfg, Signer(num_perm=128, shingle=5) if cfg.near else None)
    reason, _ = index.check_texts(texts)
    return [decontam.REASONS[r] if r >= 0 else None for r in reason]


def _stem_and_options(text: str) -> tuple[str, list[str]]:
    stem, _, opts = text.partition("\nOptions:\n")
    return stem.removeprefix("Question: "), [line.split(". ", 1)[1] for line in opts.splitlines() if ". " in line]


def test_cjk_decontamination_real_ja(tmp_path):
    """IgakuQA: a test question re-asked with other options is caught; a generic exam sentence is not."""
    tasks = _convert(tmp_path, "igakuqa")
    test = _one(tasks, "task59_*.test.json")
    train = [i.input for i in iter_instances(_one(tasks, "task59_*.train.json"))]
    items = [i.input for i in iter_instances(test)]
    # True overlaps: the stem of a test question with its options reversed and relettered, after a lead-in.
    true = []
    for text in items:
        stem, opts = _stem_and_options(text)
        if len(stem) >= 60 and len(opts) >= 3:
            lines = "\n".join(f"{'ABCDE'[k]}. {o}" for k, o in enumerate(reversed(opts[:5])))
            true.append(f"Question: 次の問題に答えよ。{stem}\nOptions:\n{lines}")
        if len(true) == 10:
            break
    # A generic item: a real training question that no setting flags, plus a standard exam sentence that
    # also occurs in test vignettes (e.g. "conjunctivae normal").
    phrase = "眼瞼結膜と眼球結膜とに異常を認めない。"
    assert 1 <= sum(phrase in t for t in items) <= 5
    clean = [t for t, r, s in zip(train, _reasons([test], BEFORE, train), _reasons([test], DecontamConfig(), train)) if r is None and s is None]
    stem, opts = _stem_and_options(clean[0])
    generic = f"Question: {stem.rstrip('。')}。{phrase}正しいのはどれか。\nOptions:\n" + "\n".join(f"{'ABCDE'[k]}. {o}" for k, o in enumerate(opts))
    assert script_class(generic, tokens(generic)) == KANA
    before = _reasons([test], BEFORE, [*true, generic])
    after = _reasons([test], DecontamConfig(), [*true, generic])
    assert len(true) == 10 and all(r is not None for r in after[:-1]), after
    assert before[-1] == "ngram" and after[-1] is None  # the old 13-character n-grams flagged the generic sentence
    # The flagged share of real training items falls from about half to a few percent.
    rate_before = sum(r is not None for r in _reasons([test], BEFORE, train)) / len(train)
    rate_after = sum(r is not None for r in _reasons([test], DecontamConfig(), train)) / len(train)
    assert rate_before > 0.3 and rate_after < 0.1


def test_cjk_decontamination_real_zh(tmp_path):
    """MedQA-MCMLE: the 5-option release of a 4-option test question is caught; a standard finding is not."""
    tasks = _convert(tmp_path, "medqa_mcmle_zh")
    test = _one(tasks, "task58_*.test.json")
    raw = [json.loads(line) for line in (RAW / "medqa_mcmle_zh" / "medqa_zh.jsonl").read_text(encoding="utf-8").splitlines()]
    five = []
    for q in raw:
        if len(q["problem_text"]) >= 25 and len(q["choices"]) == 5:
            lines = "\n".join(f"{'ABCDE'[k]}. {c}" for k, c in enumerate(q["choices"]))
            five.append(f"Question: {q['problem_text']}\nOptions:\n{lines}")
        if len(five) == 30:
            break
    items = [i.input for i in iter_instances(test)]
    phrase = "双肺呼吸音清，未闻及干湿啰音"  # "both lungs clear, no rales": a standard auscultation finding
    assert 1 <= sum(phrase in t for t in items) <= 5
    generic = ("Question: 患者，男，52岁。反复上腹部隐痛2年，餐后加重，伴反酸、嗳气。查体：" + phrase
               + "，上腹部轻压痛。为明确诊断首选的检查是（　　）。\nOptions:\nA. 胃镜\nB. 腹部B超\nC. 血常规\nD. 腹部CT")
    assert script_class(generic, tokens(generic)) == HAN
    before = _reasons([test], BEFORE, [*five, generic])
    after = _reasons([test], DecontamConfig(), [*five, generic])
    assert len(five) == 30 and all(r is not None for r in after[:-1]), after
    assert before[-1] == "ngram" and after[-1] is None


def test_english_decontamination_unchanged(tmp_path):
    """Latin-script inputs are checked exactly as before: the CJK sizes never change an English verdict."""
    tasks = _convert(tmp_path, "bc5cdr_chem", "pubmedqa", "headqa", "igakuqa")
    tests = sorted(tasks.glob("*.test.json"))
    latin = [i.input for p in sorted(tasks.glob("*.train.json")) for i in iter_instances(p)]
    latin = [t for t in latin if script_class(t, tokens(t)) == LATIN]
    configs = [DecontamConfig(near=False, **sizes) for sizes in ({"ngram_han": 13, "ngram_kana": 13}, {}, {"ngram_han": 50, "ngram_kana": 7})]
    verdicts = [_reasons(tests, cfg, latin) for cfg in configs]
    assert verdicts[0] == verdicts[1] == verdicts[2]
    # ... and they equal an independent 13-gram set check of the same rules (exact input, then 13-gram).
    test_inputs = [i.input for p in tests for i in iter_instances(p)]
    grams: Counter = Counter()
    for t in test_inputs:
        tk = tokens(t)
        grams.update({tuple(tk[k : k + 13]) for k in range(len(tk) - 12)})
    keep = {g for g, c in grams.items() if c <= configs[0].max_ngram_test_freq}
    norm = {" ".join(t.casefold().split()) for t in test_inputs}
    expect = []
    for text in latin:
        tk = tokens(text)
        expect.append("exact_input" if " ".join(text.casefold().split()) in norm else
                      "ngram" if any(tuple(tk[k : k + 13]) in keep for k in range(len(tk) - 12)) else None)
    assert verdicts[1] == expect
    assert Counter(expect)["ngram"] > 0  # the comparison is not vacuous


# --- one writer per mixture folder ----------------------------------------------------------------


def test_second_ins_build_on_locked_folder_fails(tmp_path):
    """While a process holds the mixture folder's lock, `ins build` exits 1 with one line naming its pid."""
    tasks = _tiny_tasks(tmp_path)
    out = tmp_path / "mix"
    cli = [sys.executable, "-c", "import sys\nfrom medsbench.cli import main\nmain(sys.argv[1:])"]
    build = [*cli, "ins", "build", "--tasks", str(tasks), "--out", str(out), "--no-decontamination", "--no-near-dup"]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = subprocess.run(build, capture_output=True, text=True, timeout=300, check=False)
        assert res.returncode == 1
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and f"pid {holder.pid}" in lines[0], res.stderr
        assert str(out) in lines[0] and not (out / "data").exists()
    finally:
        holder.kill()
        holder.wait()
    # Once the holder is gone (killed: the OS released its lock) the same build succeeds.
    res = subprocess.run(build, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert (out / "stats.json").is_file()


def test_tune_on_locked_folder_fails_before_loading_anything(tmp_path):
    """`tune.train` takes the same lock on its output folder, before any model or data is read."""
    from medsbench.errors import MedsbenchError
    from medsbench.tune.train import train

    out = tmp_path / "model"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MedsbenchError, match=f"pid {holder.pid}"):
            train("no-such-model", tmp_path / "no-such-mixture", out)
    finally:
        holder.kill()
        holder.wait()
