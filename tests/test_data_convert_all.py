"""`data convert --all` on the real raw data gives valid, leak-free task files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import RAW, missing
from medsbench.cli import app
from medsbench.tasks import find_task_files, iter_instances, validate_file

runner = CliRunner()
REQUIRED = ["task57", "task58", "task59", "task60", "task61", "task122", "task123", "task129", "task114",
            "task1", "task2", "task3", "task106", "task12", "task126", "task127", "task128", "task29", "task46"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    if not RAW.is_dir():
        missing(f"{RAW} not present")
    out = tmp_path_factory.mktemp("work") / "tasks"
    result = runner.invoke(app, ["data", "convert", "--all", "--raw", str(RAW), "--out", str(out)])
    assert result.exit_code == 0, result.output
    # DDXPlus has only its definitions here: skipped with its reason, the rest still converted.
    assert "skip ddxplus" in result.output and "release_test_patients" in result.output
    return out


def test_required_tasks_present_and_valid(converted):
    found = find_task_files(converted)
    for tid in REQUIRED:
        assert "test" in found.get(tid, {}), f"{tid} missing"
    errors = [str(p) for path in converted.iterdir() for p in validate_file(path) if p.level == "error"]
    assert errors == []
    result = runner.invoke(app, ["data", "validate", str(converted)])
    assert result.exit_code == 0, result.output


def test_no_test_input_in_matching_train_file(converted):
    found = find_task_files(converted)
    checked = 0
    for tid, splits in found.items():
        if "train" not in splits or "test" not in splits:
            continue
        test_inputs = {inst.input for inst in iter_instances(splits["test"])}
        leaked = [inst.id for inst in iter_instances(splits["train"]) if inst.input in test_inputs]
        assert leaked == [], f"{tid}: train instances {leaked[:5]} repeat test inputs"
        checked += 1
    assert checked >= 12


def test_wrong_dataset_folder_is_one_line(tmp_path):
    meqsum = RAW / "meqsum"
    if not meqsum.is_dir():
        missing("meqsum raw data not present")
    from medsbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["data", "convert", "medqa_usmle", "--raw", str(meqsum), "--out", str(tmp_path)])
    assert exc.value.code == 1


def test_convert_all_on_folder_without_datasets(tmp_path):
    (tmp_path / "unrelated").mkdir()
    (tmp_path / "unrelated" / "x.txt").write_text("x")
    result = runner.invoke(app, ["data", "convert", "--all", "--raw", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "no converter found its dataset folder" in str(result.exception) + result.output
