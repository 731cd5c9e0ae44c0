"""Input mutators and the CLI harness shared by tests/test_fuzz.py and bench/fuzz_bench.py.

Every user-facing reader must answer a broken file with one ``error: ...`` line and a non-zero
exit, never a traceback. ``run_cli`` calls the real console entry point in-process and reports
any exception that escapes it (that is the bug the fuzzers look for).
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

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
