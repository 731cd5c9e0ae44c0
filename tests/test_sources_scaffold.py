"""`medsbench data new-task`: the scaffolded task file validates, the converter stub runs on a tiny raw
file and writes valid, selectable task files, and its generated test passes; every validation problem
says how to fix it."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from medsbench.cli import app
from medsbench.sources import registry
from medsbench.tasks.validate import validate_file

runner = CliRunner()


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def registered():
    """Converter names registered by a test, removed afterwards (the registry is process-wide)."""
    names: list[str] = []
    yield names
    for name in names:
        registry._REGISTRY.pop(name, None)


@pytest.mark.parametrize("split", ["hash", "official"])
def test_scaffold_validates_and_stub_converts(tmp_path, registered, split):
    name = f"contrib_{split}"
    out = tmp_path / "new"
    res = runner.invoke(app, ["data", "new-task", name, "--category", "summarization", "--split", split,
                              "--license", "CC BY 4.0", "--source", "Example corpus", "--out", str(out)])
    assert res.exit_code == 0, res.output
    task_file, stub, test_stub = out / f"{name}_{name}.test.json", out / f"{name}.py", out / f"test_{name}.py"
    assert all(p.is_file() for p in (task_file, stub, test_stub))
    problems = validate_file(task_file)
    assert [p for p in problems if p.level == "error"] == []
    assert any("TODO(new-task)" in p.message and p.field == "Definition" for p in problems)  # placeholders are flagged
    meta = json.loads(task_file.read_text())
    assert meta["medsbench"]["license"] == "CC BY 4.0" and meta["Source"] == ["Example corpus"]
    assert meta["Categories"] == ["Text Summarization"] and meta["medsbench"]["bench_category"] == "summarization"
    assert meta["Positive Examples"] and meta["Negative Examples"]
    assert ("hash" if split == "hash" else "official split") in meta["medsbench"]["split_method"]
    valid = runner.invoke(app, ["data", "validate", str(task_file)])
    assert valid.exit_code == 0 and "0 error(s)" in valid.output

    # The stub registers itself and converts a tiny raw release into valid task files.
    load_module(stub, f"medsbench_contrib_{name}")
    registered.append(name)
    raw = tmp_path / "raw" / name
    raw.mkdir(parents=True)
    rows = [{"id": f"q{i}", "input": f"Long consumer question number {i} about drug {i % 7}?", "output": f"Drug {i % 7}?"}
            for i in range(60)]
    rows.append(dict(rows[0], id="dup"))  # a repeated input is dropped, not written twice
    files = {"test.jsonl": rows[:20], "train.jsonl": rows[20:]} if split == "official" else {f"{name}.jsonl": rows}
    for fname, part in files.items():
        (raw / fname).write_text("".join(json.dumps(r) + "\n" for r in part))
    tasks = tmp_path / "ws" / "tasks"
    written = registry.convert(name, raw, tasks)
    assert sorted(p.name for p in written) == [f"{name}_{name}.test.json", f"{name}_{name}.train.json"]
    n = 0
    for path in written:
        assert [str(p) for p in validate_file(path) if p.level == "error"] == []
        n += len(json.loads(path.read_text())["Instances"])
    assert n == 60
    if split == "official":
        assert len(json.loads(written[0].read_text())["Instances"]) == 20
    # The new task is selectable by id like a catalog task (its category names its scorer).
    from medsbench.export import export_tasks
    from medsbench.export.items import ExportSettings
    from medsbench.records.config import EvalConfig
    from medsbench.workspace import Workspace

    (exported,) = export_tasks(ExportSettings(EvalConfig.from_flags(tasks=name, limit=2), Workspace(tmp_path / "ws")))
    assert exported.category == "summarization" and exported.metrics == ("bleu1", "rougeL") and exported.shots == 3

    # Its generated test passes against the registered converter.
    test_module = load_module(test_stub, f"test_contrib_{name}")
    (tmp_path / "t").mkdir()
    getattr(test_module, f"test_{name}_converter")(tmp_path / "t")


def test_scaffold_refuses_bad_input_and_overwrite(tmp_path):
    out = tmp_path / "new"
    assert runner.invoke(app, ["data", "new-task", "x1", "-c", "mcqa", "--out", str(out)]).exit_code == 0
    again = runner.invoke(app, ["data", "new-task", "x1", "-c", "mcqa", "--out", str(out)])
    assert again.exit_code != 0 and "refusing to overwrite" in str(again.exception or again.output)
    for args, message in ((["y", "-c", "poetry"], "unknown category 'poetry'"), (["y", "-c", "ner", "--split", "x"], "unknown split rule"),
                          (["z", "-c", "ner", "--task-id", "task57"], "catalog task already"), (["9bad", "-c", "ner"], "Python module")):
        res = runner.invoke(app, ["data", "new-task", *args, "--out", str(tmp_path / "o")])
        assert res.exit_code != 0 and message in str(res.exception), (args, res.exception)


def test_every_validation_problem_says_how_to_fix_it(tmp_path):
    task = {
        "Contributors": 5, "Source": ["s"], "URL": ["u"], "Categories": ["named entity recognition"], "Reasoning": "x",
        "Definition": [" "], "Input_language": ["en"], "Output_language": ["english"], "Instruction_language": ["Klingon"],
        "Domains": 5, "Positive Examples": [{"input": "a", "output": "b"}], "Negative Examples": [],
        "Instances": [{"id": "1", "input": "a", "output": "b"}, {"id": "1", "input": "  ", "output": []},
                      {"id": "2", "input": ["x"], "output": "c"}, {"id": "3", "input": "d", "output": [5]},
                      {"id": "4", "input": "d", "output": " "}],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(task))
    problems = validate_file(path)
    fields = {p.field for p in problems}
    assert {"Contributors", "Categories", "Reasoning", "Definition", "Input_language", "Output_language", "Domains",
            "id", "input", "output", "Instances"} <= fields
    assert all(p.fix and str(p).endswith(")") and "(fix: " in str(p) for p in problems), [str(p) for p in problems if not p.fix]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert all(p.fix for p in validate_file(broken))

