"""MedS-Ins builder: end-to-end builds on realistic task files, planted contamination, determinism."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from conftest import RAW, missing, need_module

from medsbench.ins import InsConfig, build_mixture
from medsbench.ins.stats import check_shards
from medsbench.prompts import build_query
from medsbench.sources.registry import TaskSpec, task_meta
from medsbench.tasks.catalog import catalog
from medsbench.tasks.format import write_task

SIDECAR = RAW / "meds_ins_definitions" / "RewriteDefinitions.json"
MCQA_DEF = "Given a question and a list of options, select the correct answer from the options directly."
NER_DEF = "Given a sentence, you need to recognize the name of the chemical. If it does not exist, output 'There is no related entity.'."

_AGES = list(range(18, 91))
_CONDS = ["community-acquired pneumonia", "acute myocardial infarction", "poorly controlled type 2 diabetes",
          "decompensated heart failure", "urosepsis", "a pulmonary embolism", "a COPD exacerbation", "lower-leg cellulitis",
          "acute pancreatitis", "diabetic ketoacidosis", "an ischemic stroke", "new-onset atrial fibrillation"]
_SYMS = ["fever", "dyspnea", "pleuritic chest pain", "a productive cough", "fatigue", "nausea", "bilateral leg edema",
         "palpitations", "a brief syncope", "a throbbing headache", "confusion", "abdominal pain", "night sweats"]
_DRUGS = ["aspirin", "metformin", "lisinopril", "atorvastatin", "amoxicillin", "warfarin", "heparin", "insulin glargine",
          "furosemide", "ceftriaxone", "apixaban", "metoprolol", "prednisone", "vancomycin", "alteplase"]
_ASKS = ["Which is the most appropriate next step?", "What should be given now?", "Which drug is indicated?",
         "What is the best initial treatment?", "Which therapy should be started first?"]
_PLACES = ["the emergency department", "a rural clinic", "her primary care office", "urgent care", "the cardiology ward"]


def vignette(seed: int) -> str:
    """A realistic MCQA stem; every item draws its own words, so unrelated items share no 13-gram."""
    r = random.Random(seed)
    s = r.sample(_SYMS, 3)
    return (
        f"A {r.choice(['man', 'woman'])} aged {r.choice(_AGES)} with {r.choice(_CONDS)} (case {r.randint(100, 999)}) comes to {r.choice(_PLACES)} "
        f"with {s[0]} for {r.randint(1, 14)} days (temperature {r.randint(360, 405)}), {s[1]} since {r.choice(['yesterday', 'last week', 'the morning'])} "
        f"and {s[2]}. Pulse {r.randint(48, 150)}/min, sodium {r.randint(118, 160)} mmol/L, glucose "
        f"{r.randint(60, 600)} mg/dL, platelets {r.randint(20, 900)}000/uL. "
        f"Item {r.randint(100, 999)}: {r.choice(_ASKS)} A. {r.choice(_DRUGS)} B. {r.choice(_DRUGS)} C. {r.choice(_DRUGS)} D. {r.choice(_DRUGS)}"
    )


def sentence(seed: int) -> tuple[str, str]:
    r = random.Random(seed)
    drug = r.choice(_DRUGS)
    if r.random() < 0.3:
        return f"Patients with {r.choice(_CONDS)} had {r.choice(_SYMS)} in {r.randint(2, 60)}% of cases.", "There is no related entity."
    return f"Treatment with {drug} {r.randint(5, 500)} mg was associated with {r.choice(_SYMS)} in {r.randint(2, 60)} patients.", drug


def _grams(text: str, n: int = 13) -> set[tuple[str, ...]]:
    w = re.findall(r"\w+", text.lower())
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def _meta(task_id: str, split: str, definition: str, license: str = "MIT"):
    entry = catalog().get(task_id)
    spec = TaskSpec(task_id=task_id, slug="t", definition=definition, source=task_id.upper(), url="https://example.org",
                    license=license, entry=entry)
    return task_meta(spec, split, "official")


@pytest.fixture()
def workspace(tmp_path: Path) -> dict:
    """Train/test MCQA and NER tasks plus an official-format MedS-Ins file, with planted problems."""
    tasks = tmp_path / "tasks"
    mcqa_test = [{"id": f"t{i}", "input": vignette(10_000 + i), "output": "A"} for i in range(40)]
    # Chance 13-gram overlaps of the generator are filtered out (independently of the builder), so the
    # planted items below are the only contamination.
    test_grams = set().union(*(_grams(x["input"]) for x in mcqa_test))
    clean = [i for i in range(400) if not _grams(vignette(i)) & test_grams][:200]
    mcqa_train = [{"id": i, "input": vignette(i), "output": random.Random(i).choice("ABCD")} for i in clean]
    # Planted contamination: a test stem inside a longer training input (shares 13-grams, not equal).
    mcqa_train.append({"id": "planted-ngram", "input": "Board review item 7. " + mcqa_test[3]["input"], "output": "B"})
    # Planted exact duplicate (same input/output, other id, different spacing and case).
    mcqa_train.append({"id": "planted-exact", "input": "  " + mcqa_train[5]["input"].upper(), "output": mcqa_train[5]["output"]})
    # Planted near-duplicate of a training item: the last word changed.
    near = mcqa_train[7]["input"].rsplit(" ", 1)[0] + " labetalol"
    mcqa_train.append({"id": "planted-near", "input": near, "output": mcqa_train[7]["output"]})
    write_task(tasks / "task57_medqa_en.train.json", _meta("task57", "train", MCQA_DEF), mcqa_train)
    write_task(tasks / "task57_medqa_en.test.json", _meta("task57", "test", MCQA_DEF), mcqa_test)
    ner_test = [dict(zip(("input", "output"), sentence(50_000 + i)), id=i) for i in range(30)]
    ner_test.append({"id": "short", "input": "Cisplatin caused severe nephrotoxicity in two elderly patients.", "output": "Cisplatin"})
    ner_grams = set().union(*(_grams(x["input"]) for x in ner_test))
    ner = [dict(zip(("input", "output"), sentence(i)), id=i) for i in range(200) if not _grams(sentence(i)[0]) & ner_grams][:120]
    # Planted near-duplicate of a short test sentence: same words, other punctuation (no 13-gram, not equal).
    ner.append({"id": "planted-neartest", "input": "Cisplatin caused severe nephrotoxicity; in two elderly patients", "output": "Cisplatin"})
    write_task(tasks / "task126_bc5cdr_chem.train.jsonl", _meta("task126", "train", NER_DEF, "CC BY 4.0"), ner)
    write_task(tasks / "task126_bc5cdr_chem.test.json", _meta("task126", "test", NER_DEF, "CC BY 4.0"), ner_test)
    # An official MedS-Ins file the user brings: no medsbench block, list outputs, id from the file name.
    official = tmp_path / "official"
    meta = {k: v for k, v in _meta("task999", "train", "Explain the medical term.").items() if k != "medsbench"}
    meta["Categories"] = ["Explanation"]
    terms = [("tachycardia", "A heart rate above 100 beats per minute."), ("hyperkalemia", "A high potassium level in the blood."),
             ("dyspnea", "Difficult or labored breathing."), ("anuria", "Absence of urine production."),
             ("bradycardia", "A resting heart rate below 60 beats per minute.")]
    write_task(official / "task131_term_explanation.json", meta, [{"id": i, "input": t, "output": [d]} for i, (t, d) in enumerate(terms)])
    return {"tasks": tasks, "official": official, "root": tmp_path}


def _rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows = []
    for p in sorted((out / "data").glob("*.parquet")):
        rows.extend(pq.read_table(p).to_pylist())
    return rows


NATURAL = {"balance.cap": None, "balance.temperature": 1.0, "balance.max_repeats": 1}  # every clean instance once


def test_build_end_to_end(workspace, tmp_path):
    out = tmp_path / "mix"
    cfg = InsConfig(seed=3).updated(**{"export.shard_rows": 100, **NATURAL})
    stats = build_mixture([workspace["tasks"]], out, cfg, ins_files=[workspace["official"]], bench_tasks=[workspace["tasks"]])
    t57, t126, t131 = (stats["tasks"][k] for k in ("task57", "task126", "task131"))
    # Planted problems dropped and reported with their reason.
    assert t57["exact_duplicate"] == 1 and t57["near_duplicate"] == 1
    assert t57["contamination"]["reasons"] == {"ngram": 1}
    assert [e["id"] for e in t57["contamination"]["examples"]] == ["planted-ngram"]
    assert t126["contamination"]["reasons"] == {"near": 1}
    assert t126["contamination"]["examples"][0]["id"] == "planted-neartest"
    rows = _rows(out)
    ids = {r["id"] for r in rows}
    assert not {"task57:planted-ngram", "task57:planted-exact", "task57:planted-near", "task126:planted-neartest"} & ids
    # Counts: card numbers match the shards (3 shards of <= 100 rows).
    assert len(rows) == stats["totals"]["examples"] == 200 + 120 + 5
    assert check_shards(out, stats) == len(rows) and len(stats["shard_files"]) == 4
    assert sorted(p.name for p in (out / "data").iterdir())[0] == "train-00000-of-00004.parquet"
    # No example's input appears in any benchmark test instance.
    test_grams = set().union(*(_grams(vignette(10_000 + i)) for i in range(40)))
    assert not any(_grams(r["messages"][1]["content"]) & test_grams for r in rows)
    # Official file: task id from file name, category from Categories, licence reported unknown.
    assert t131["category"] == "Explanation" and t131["emitted"] == 5
    assert "CC BY 4.0" in stats["licenses"] and "MIT" in stats["licenses"]
    card = (out / "card.md").read_text()
    assert "planted-ngram: ngram -> task57" in card and "| task126 |" in card
    for png in ("tasks.png", "categories.png", "lengths.png"):
        assert (out / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prompt_format_matches_evaluation(workspace, tmp_path):
    out = tmp_path / "mix"
    cfg = InsConfig(seed=1).updated(**{"shots.probs": {0: 0.5, 2: 0.5}})
    build_mixture([workspace["tasks"]], out, cfg, bench_tasks=[workspace["tasks"]])
    rows = _rows(out)
    by_id = {f"task57:{i}": vignette(i) for i in range(400)}
    zero = [r for r in rows if r["shots"] == 0 and r["task_id"] == "task57"]
    few = [r for r in rows if r["shots"] == 2 and r["task_id"] == "task57"]
    assert zero and few
    for r in zero:
        assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]
        assert r["messages"][0]["content"] == MCQA_DEF  # no sidecar: the task's own definition
        assert r["messages"][1]["content"] == build_query(by_id[r["id"]])
        assert r["category"] == "Question Answering" and r["language"] == "en" and r["source"] == "TASK57"
    for r in few:
        system = r["messages"][0]["content"]
        assert system.count("Input:\n") == 2 and system.endswith("Please learn from the few-shot cases to see what content you have to output.")
        assert by_id[r["id"]] not in system  # never the example itself as a demo


def test_deterministic_bytes(workspace, tmp_path):
    cfg = InsConfig(seed=11).updated(**{"export.shard_rows": 150, "export.jsonl": True, "balance.temperature": 2.0})
    a, b = tmp_path / "a", tmp_path / "b"
    build_mixture([workspace["tasks"]], a, cfg, ins_files=[workspace["official"]], bench_tasks=[workspace["tasks"]])
    build_mixture([workspace["tasks"]], b, cfg, ins_files=[workspace["official"]], bench_tasks=[workspace["tasks"]])
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "stats.json")
    assert any(str(f).startswith("jsonl/") for f in files)
    for f in files:
        other = (b / f).read_bytes()
        if f.name == "card.md":  # titled with the folder name
            other = other.replace(b"mixture `b`", b"mixture `a`")
        assert (a / f).read_bytes() == other, f
    c = tmp_path / "c"
    build_mixture([workspace["tasks"]], c, cfg.updated(seed=12), ins_files=[workspace["official"]], bench_tasks=[workspace["tasks"]])
    assert (a / "data" / "train-00000-of-00003.parquet").read_bytes() != (c / "data" / "train-00000-of-00003.parquet").read_bytes()


def test_datasets_loads_shards(workspace, tmp_path, monkeypatch):
    datasets = need_module("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    out = tmp_path / "mix"
    stats = build_mixture([workspace["tasks"]], out, InsConfig().updated(**{"export.shard_rows": 64}), bench_tasks=[workspace["tasks"]])
    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), cache_dir=str(tmp_path / "hf-cache"))["train"]
    assert ds.num_rows == stats["totals"]["examples"]
    assert set(ds.column_names) >= {"messages", "task_id", "category", "source", "language", "shots", "id"}
    assert ds[0]["messages"][2]["role"] == "assistant"


def test_sidecar_paraphrases(workspace, tmp_path):
    if not SIDECAR.exists():
        missing("RewriteDefinitions.json not present")
    import orjson

    official = orjson.loads(SIDECAR.read_bytes())["task57"]
    out = tmp_path / "mix"
    cfg = InsConfig().updated(**{"instructions.sidecars": [SIDECAR], "instructions.paraphrase_prob": 0.7, "shots.probs": {0: 1.0}})
    stats = build_mixture([workspace["tasks"]], out, cfg, bench_tasks=[workspace["tasks"]])
    systems = [r["messages"][0]["content"] for r in _rows(out) if r["task_id"] == "task57"]
    para = set(official["auto_rewrite_def"])
    n_para = sum(s in para for s in systems)
    assert sum(s == official["original_def"] for s in systems) + n_para == len(systems)
    assert 0.55 < n_para / len(systems) < 0.85 and len(set(systems)) > 50
    assert stats["tasks"]["task57"]["paraphrases"] > 100


def test_fail_on_contamination_cli(workspace, tmp_path, capsys):
    from medsbench.cli import main

    out = tmp_path / "mix"
    with pytest.raises(SystemExit) as exc:
        main(["ins", "build", "--tasks", str(workspace["tasks"]), "--bench-tasks", str(workspace["tasks"]),
              "--out", str(out), "--fail-on-contamination"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: 2 training example(s) overlap benchmark test instances")
    assert (out / "contamination.json").exists() and not (out / "data").exists()


def test_cli_build_and_stats(workspace, tmp_path, capsys):
    from medsbench.cli import main

    out = tmp_path / "mix"
    cfg = tmp_path / "ins.toml"
    cfg.write_text('seed = 5\n[shots.probs]\n"0" = 1.0\n[balance]\ncap = 50\n')
    with pytest.raises(SystemExit) as exc:
        main(["ins", "build", "--tasks", str(workspace["tasks"]), "--bench-tasks", str(workspace["tasks"]),
              "--out", str(out), "--config", str(cfg), "--no-near-dup"])
    assert exc.value.code == 0
    assert "100 examples from 2 task(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["ins", "stats", str(out)])
    assert exc.value.code == 0
    assert "examples" in capsys.readouterr().out


@pytest.mark.parametrize(
    "case",
    ["bad_task", "missing_sidecar", "unknown_key", "negative_prob"],
)
def test_bad_input_one_line(workspace, tmp_path, capsys, case):
    from medsbench.cli import main

    args = ["ins", "build", "--tasks", str(workspace["tasks"]), "--bench-tasks", str(workspace["tasks"]), "--out", str(tmp_path / "m")]
    if case == "bad_task":
        write_task(workspace["tasks"] / "task58_bad.train.json", _meta("task58", "train", MCQA_DEF), [{"id": 1, "input": "q?", "output": 3}])
        expect = "task58_bad.train.json"
    elif case == "missing_sidecar":
        args += ["--instructions", str(tmp_path / "nope.json")]
        expect = "nope.json: instruction sidecar not found"
    else:
        cfg = tmp_path / "ins.yaml"
        cfg.write_text("shots:\n  probs: {0: 0.5, 3: -0.1}\n" if case == "negative_prob" else "shots:\n  prob: {0: 1}\n")
        args += ["--config", str(cfg)]
        expect = "shots.probs: Value error, probability of 3-shot must be >= 0" if case == "negative_prob" else "shots.prob: unknown key"
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and expect in errors[0], err
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "m").exists()  # a failed build leaves no folder (nor its lock file) behind


def test_real_train_splits(tmp_path):
    """Converted real train splits (the source converters) build into a valid mixture."""
    from medsbench.sources import convert_all

    if not RAW.is_dir():
        missing(f"{RAW} not present")
    tasks = tmp_path / "tasks"
    report = convert_all(RAW, tasks)  # incomplete sources (DDXPlus without patients) are skipped with a reason
    assert report.files and any(tasks.glob("*.train.*")), "the real sources must yield train splits"
    cfg = InsConfig().updated(**{"balance.cap": 300, "dedupe.near": False, "decontam.near": False})
    out = tmp_path / "mix"
    stats = build_mixture([tasks], out, cfg, bench_tasks=[tasks])
    assert check_shards(out, stats) == stats["totals"]["examples"] > 0
    assert stats["decontamination"]["test_instances"] > 0
