"""Input mutators and the CLI harness shared by tests/test_fuzz.py and bench/fuzz_bench.py.

Every user-facing reader must answer a broken file with one ``error: ...`` line and a non-zero
exit, never a traceback. ``run_cli`` calls the real console entry point in-process and reports
any exception that escapes it (that is the bug the fuzzers look for).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from pathlib import Path
from typing import Any

VALID_TASK = {
    "Contributors": ["synthetic fuzz seed"],
    "Source": ["synthetic"],
    "URL": [],
    "Categories": ["Question Answering"],
    "Reasoning": [],
    "Definition": ["Answer the question with one of the options."],
    "Input_language": ["English"],
    "Output_language": ["English"],
    "Instruction_language": ["English"],
    "Domains": ["Medicine"],
    "Positive Examples": [],
    "Negative Examples": [],
    "Instances": [
        {"id": f"q{i}", "input": f"Question {i}? A. yes B. no", "output": ["A. yes" if i % 2 else "B. no"]}
        for i in range(6)
    ],
}

VALID_PRED_ROWS = [
    {"task_id": "task57", "id": f"q{i}", "input": f"Q{i}", "output": "The answer is A.", "reference": "A. aspirin"}
    for i in range(4)
] + [
    {"task_id": "task127", "id": "n1", "input": "Aspirin helps.", "output": "aspirin", "reference": "aspirin"},
    {"task_id": "task106", "id": "h1", "input": "Tumor growth.", "output": "sustaining proliferative signaling",
     "reference": "sustaining proliferative signaling"},
]


def task_json_text() -> str:
    return json.dumps(VALID_TASK, indent=1)


def task_jsonl_text() -> str:
    meta = {k: v for k, v in VALID_TASK.items() if k != "Instances"}
    lines = [json.dumps({"__meta__": meta})] + [json.dumps(i) for i in VALID_TASK["Instances"]]
    return "\n".join(lines) + "\n"


def pred_jsonl_text() -> str:
    return "\n".join(json.dumps(r) for r in VALID_PRED_ROWS) + "\n"


def pred_csv_text() -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["task_id", "input", "GT", "output"])
    for r in VALID_PRED_ROWS:
        w.writerow([r["task_id"], r["input"], r["reference"], r["output"]])
    return buf.getvalue()


SEEDS = {
    "task.json": task_json_text,
    "task.jsonl": task_jsonl_text,
    "predictions.jsonl": pred_jsonl_text,
    "predictions.csv": pred_csv_text,
}

_JUNK = ['"', "{", "}", "[", "]", ",", ":", "\n", "\\", "\x00", "null", "1e999", "-0", "\ufeff", "\udcff", "é", "NaN",
         '"output":', '"input": 3', '"Instances": {}', '"task_id": ""', "\r\n", ",,,", '""']


def mutate_text(text: str, rng: random.Random, n_edits: int = 3) -> str:
    """A few random text edits: delete a span, duplicate a span, insert junk, swap a character."""
    s = text
    for _ in range(n_edits):
        if not s:
            s = rng.choice(_JUNK)
            continue
        i = rng.randrange(len(s))
        j = min(len(s), i + rng.randrange(1, 40))
        op = rng.randrange(5)
        if op == 0:
            s = s[:i] + s[j:]
        elif op == 1:
            s = s[:i] + s[i:j] + s[i:]
        elif op == 2:
            s = s[:i] + rng.choice(_JUNK) + s[i:]
        elif op == 3:
            s = s[:i] + chr(rng.randrange(0x20, 0x3000)) + s[i + 1 :]
        else:
            s = s[:i]  # truncation
    return s


def mutate_json_value(value, rng: random.Random, depth: int = 0):
    """Structural mutation of a parsed JSON value: wrong types, missing keys, odd values."""
    odd = [None, 0, -1, 1.5, True, "", " ", [], {}, "x" * 300, [None], {"a": 1}]
    if isinstance(value, dict) and value and rng.random() < 0.9:
        out = dict(value)
        key = rng.choice(list(out))
        r = rng.random()
        if r < 0.3:
            del out[key]
        elif r < 0.6 or depth > 3:
            out[key] = rng.choice(odd)
        else:
            out[key] = mutate_json_value(out[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value and rng.random() < 0.9:
        out = list(value)
        i = rng.randrange(len(out))
        out[i] = mutate_json_value(out[i], rng, depth + 1) if rng.random() < 0.6 else rng.choice(odd)
        return out
    return rng.choice(odd)


def mutate_file_text(name: str, rng: random.Random) -> str:
    """A mutated version of the valid seed file ``name`` (text or structure)."""
    text = SEEDS[name]()
    if rng.random() < 0.5:
        return mutate_text(text, rng, rng.randrange(1, 6))
    if name == "task.json":
        return json.dumps(mutate_json_value(json.loads(text), rng))
    if name.endswith(".jsonl"):
        lines = text.splitlines()
        i = rng.randrange(len(lines))
        lines[i] = json.dumps(mutate_json_value(json.loads(lines[i]), rng))
        return "\n".join(lines) + "\n"
    rows = list(csv.reader(io.StringIO(text)))
    i = rng.randrange(len(rows))
    rows[i] = [c if rng.random() < 0.7 else rng.choice(["", "nan", "task9999", "\x00", "a,b", '"']) for c in rows[i]]
    if rng.random() < 0.3:
        rows[i] = rows[i][: rng.randrange(len(rows[i]) + 1)]
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def write_bench_tasks(work: Path) -> Path:
    """Benchmark test files matching the seed predictions, so submissions are read and checked."""
    tasks = work / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    by_task: dict[str, list[dict]] = {}
    for r in VALID_PRED_ROWS:
        by_task.setdefault(r["task_id"], []).append({"id": r["id"], "input": r["input"], "output": [r["reference"]]})
    from medsbench.tasks.catalog import catalog

    for tid, instances in by_task.items():
        task = dict(VALID_TASK, Instances=instances)
        (tasks / f"{tid}_{catalog().tasks[tid].slug}.test.json").write_text(json.dumps(task))
    return tasks


def commands_for(name: str, path: Path, work: Path) -> list[list[str]]:
    """CLI calls that read a file of this kind (``work`` holds tasks/ from write_bench_tasks)."""
    if name.startswith("task"):
        return [["data", "validate", str(path)], ["data", "stats", str(path.parent)]]
    return [
        ["score", str(path), "--bootstrap", "0", "--out", str(work / "results.json")],
        ["board", "submit", str(path), "--model-name", "fuzz", "--workspace", str(work), "--tasks", str(work / "tasks")],
    ]


def run_cli(argv: list[str]) -> tuple[int, str]:
    """Run ``medsbench ARGV`` in-process: (exit code, stderr). Any escaping exception propagates."""
    import contextlib

    from medsbench.cli import main

    err = io.StringIO()
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, err.getvalue()


def check_clean_failure(code: int, stderr: str, argv: list[str]) -> None:
    """A failure is one ``error: ...`` line (typer usage errors aside), never a traceback."""
    assert "Traceback" not in stderr, f"traceback from {argv}:\n{stderr}"
    if code not in (0, 2):  # 2: a typer usage error, already one clear message
        lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
        assert lines, f"exit {code} without an 'error:' line from {argv}:\n{stderr[-2000:]}"


# --------------------------------------------------------------------------- hostile run folders

MARK = "fuzzescape"


def hostile_strings(outside: Path) -> list[str]:
    """Identifiers an attacker would try; the ``..`` ones aim at ``outside`` (which must stay empty)."""
    return [
        f"../../../../../../{outside}/{MARK}", f"{outside}/{MARK}-abs", f"../{MARK}", "..", ".", "",
        f"task57\x00{MARK}", f"<script>alert('{MARK}')</script>", f'"><img src=x onerror=alert(1)>{MARK}',
        "task57/../../" + MARK, "task57\n" + MARK, "x" * 10_000_000, "TASK 57", "task57;rm -rf /",
    ]


def make_run(root: Path) -> Path:
    """A finished, scored run of the fake model on the bench task files (tests/test_runs.py helpers)."""
    from medsbench.pipeline import evaluate
    from test_runs import CountingBackend, make_workspace  # the tests folder is on sys.path (bench: inserted)

    ws = make_workspace(root / "seed-ws", n_mcqa=6, n_ner=4)
    run = root / "seed-run"
    evaluate(CountingBackend(), "task57,task126", workspace=ws, out=run, progress=False)
    judged = {  # a small valid judged.json (the judge's record), so its fields can be mutated too
        "run": str(run), "model": json.loads((run / "manifest.json").read_text())["config"]["model"],
        "created": "2026-01-01T00:00:00+00:00", "template": "t@1", "rubrics": {"r": "r@1"},
        "judges": [{"name": "j1", "spec": "openai:x", "identity": {}}],
        "tasks": {}, "categories": {},
    }
    (run / "judged.json").write_text(json.dumps(judged))
    return run


def mutate(run: Path, rng: random.Random, strings: list[str]) -> str:
    """Change one file of ``run`` in place; returns a description."""
    name = rng.choice(["manifest.json", "predictions.jsonl", "results.json", "judged.json"])
    path = run / name
    value = rng.choice(strings)
    if name == "predictions.jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        how = rng.choice(["task_id", "id", "output", "duplicate", "unplanned", "truncate"])
        if how == "duplicate":
            rows.append(rows[0])
        elif how == "unplanned":
            rows.append({**rows[0], "task_id": "task58", "id": "zz"})
        elif how == "truncate":
            path.write_text(path.read_text()[: rng.randrange(1, 200)])
            return f"{name}: truncated"
        else:
            rows[rng.randrange(len(rows))][how] = value
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return f"{name}: {how}={value[:40]!r}"
    data: Any = json.loads(path.read_text())
    if name == "manifest.json":
        target = rng.choice(["task key", "model", "test path", "workspace"])
        if target == "task key":
            data["tasks"][value] = data["tasks"].pop("task57")
        elif target == "model":
            data["config"]["model"] = value
        elif target == "test path":
            data["tasks"]["task57"]["files"]["test"]["path"] = value
        else:
            data["workspace"] = value
    elif name == "results.json":
        target = rng.choice(["task key", "category key"])
        if target == "task key" and data.get("tasks"):
            data["tasks"][value] = data["tasks"].pop(next(iter(data["tasks"])))
        elif data.get("categories"):
            data["categories"][value] = data["categories"].pop(next(iter(data["categories"])))
    else:
        target = rng.choice(["judge", "run"])
        if target == "judge":
            data["judges"][0]["name"] = value
        else:
            data["run"] = value
    path.write_text(json.dumps(data))
    return f"{name}: {target}={value[:40]!r}"


def escaped(root: Path, allowed: list[Path]) -> list[Path]:
    """Files under ``root`` outside every allowed folder, and any file carrying the marker."""
    out = []
    for path in root.rglob("*"):
        if path.is_file() and (not any(a in path.parents for a in allowed) or MARK in str(path.relative_to(root))):
            out.append(path)
    return out


def fuzz_run_folders(root: Path, n: int, seed: int) -> dict[str, Any]:
    """``n`` mutated copies of one finished run through score, board add, board build and judge --report,
    run from a working folder under ``root`` (so a relative path that escapes lands where it is seen)."""
    rng = random.Random(seed)
    result: dict[str, Any] = {"codes": {}, "bad": [], "outside": [], "calls": 0}
    seed_run = make_run(root)
    strings = hostile_strings(root / "outside")
    here = os.getcwd()
    cwd = root / "cwd" / "a" / "b"  # relative hostile paths resolve in here, under root, where they are seen
    cwd.mkdir(parents=True)
    os.chdir(cwd)
    try:
        _fuzz_cases(root, n, rng, strings, seed_run, result)
    finally:
        os.chdir(here)
    return result


def _fuzz_cases(root: Path, n: int, rng: random.Random, strings: list[str], seed_run: Path,
                result: dict[str, Any]) -> None:
    import shutil

    for k in range(n):
        case = root / f"case{k}"
        run, ws = case / "runs" / "fuzzed", case / "ws"
        shutil.copytree(seed_run, run)
        what = mutate(run, rng, strings)
        for argv in (["score", str(run), "--bootstrap", "20"], ["board", "add", str(run), "-w", str(ws)],
                     ["board", "build", "-w", str(ws), "--out", str(case / "site")], ["judge", str(run), "--report"]):
            result["calls"] += 1
            try:
                code, err = run_cli(argv)
                result["codes"][code] = result["codes"].get(code, 0) + 1
                check_clean_failure(code, err, argv)
            except BaseException as exc:  # noqa: BLE001 - every escape is a finding
                result["bad"].append(f"{what} | {argv[0]} {argv[1]}: {type(exc).__name__}: {str(exc)[:160]}")
        allowed = [seed_run, root / "seed-ws", run, ws, case / "site", case / ".site.lock"]  # the build's lock: beside the site
        result["outside"] += [str(p) for p in escaped(root, allowed)]
        shutil.rmtree(case)
