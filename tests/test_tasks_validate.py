"""`medsbench data validate|stats|catalog` and the validation rules."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from medsbench.cli import app
from medsbench.tasks import catalog, validate_file

runner = CliRunner()


def good_task(n: int = 30) -> dict:
    return {
        "Contributors": ["test"], "Source": ["synthetic"], "URL": ["-"],
        "Categories": ["Named Entity Recognition"], "Reasoning": [],
        "Definition": ["Recognise chemicals."],
        "Input_language": ["English"], "Output_language": ["English"], "Instruction_language": ["English"],
        "Domains": ["Medicine"], "Positive Examples": [], "Negative Examples": [],
        "Instances": [{"id": str(i), "input": f"Sentence {i} mentions aspirin.", "output": [f"aspirin {i % 7}."]} for i in range(n)],
    }


def write(tmp_path, obj, name="task126_x.test.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def errors(path):
    return [str(p) for p in validate_file(path) if p.level == "error"]


def test_good_task_has_no_problems(tmp_path):
    assert validate_file(write(tmp_path, good_task())) == []


@pytest.mark.parametrize("mutate,expected", [
    (lambda t: t.pop("Definition"), ": Definition: missing required key"),
    (lambda t: t.update(Definition=[" "]), ": Definition: empty definition"),
    (lambda t: t.update(Categories="NER"), "'NER' is not one of the 19 MedS-Ins categories"),
    (lambda t: t.update(Categories=["named entity recognition"]), "did you mean 'Named Entity Recognition'"),
    (lambda t: t.update(Input_language=["en"]), "Input_language: 'en' looks like a language code"),
    (lambda t: t.update(Output_language=["english"]), "'english' should be written 'English'"),
    (lambda t: t.update(Domains=5), "Domains: must be a list of strings, got int"),
    (lambda t: t.update(Reasoning="x"), "Reasoning: must be a list"),
    (lambda t: t["Instances"][3].update(id="0"), ":3: id: duplicate id (first at instance 0)"),
    (lambda t: t["Instances"][4].update(input=t["Instances"][1]["input"]), ":4: input: duplicate input (same as instance 1)"),
    (lambda t: t["Instances"][5].update(output=5), ":5: output: must be a non-empty string or list of strings"),
    (lambda t: t["Instances"][6].update(output=[]), ":6: output: must be a non-empty string or list of strings"),
    (lambda t: t["Instances"][7].update(input=["x"]), ":7: input: must be a string, got list"),
    (lambda t: t["Instances"][8].update(input="  "), ":8: input: empty input"),
    (lambda t: t.update({"Positive Examples": [{"input": t["Instances"][2]["input"], "output": "x"}]}),
     ":2: input: a positive example reappears as an instance"),
])
def test_each_rule_reports_file_index_field(tmp_path, mutate, expected):
    task = good_task()
    mutate(task)
    path = write(tmp_path, task)
    errs = errors(path)
    assert any(expected in e for e in errs), errs
    assert all(e.startswith(str(path)) for e in errs)


def test_warnings_do_not_fail(tmp_path):
    task = good_task(10)
    path = write(tmp_path, task)
    probs = validate_file(path)
    assert [p.level for p in probs] == ["warning"] and "fewer than 25" in str(probs[0])
    skewed = good_task(100)
    for i, inst in enumerate(skewed["Instances"]):
        inst["output"] = "yes" if i < 98 else "no"
    probs = validate_file(write(tmp_path, skewed, "skew.json"))
    assert any("low label entropy" in str(p) and p.level == "warning" for p in probs)
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 0, result.output


def test_cli_validate_exit_codes_and_lines(tmp_path):
    good = write(tmp_path, good_task(), "good.json")
    bad = good_task()
    bad["Instances"][1]["id"] = "0"
    badp = write(tmp_path, bad, "bad.json")
    ok = runner.invoke(app, ["data", "validate", str(good)])
    assert ok.exit_code == 0 and "0 error(s)" in ok.output
    res = runner.invoke(app, ["data", "validate", str(tmp_path)])
    assert res.exit_code == 1
    assert f"error: {badp}:1: id: duplicate id (first at instance 0)" in res.output


@pytest.mark.parametrize("content,expected", [
    ('{"Definition": ["d"], "Instances": [', "trunc.json:1: file: invalid JSON"),
    ("", "trunc.json:1: file: invalid JSON"),
])
def test_cli_validate_truncated_json(tmp_path, content, expected):
    path = write(tmp_path, content, "trunc.json")
    res = runner.invoke(app, ["data", "validate", str(path)])
    assert res.exit_code == 1
    assert expected in res.output
    assert "Traceback" not in res.output


def test_cli_empty_folder_and_missing_path(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    from medsbench.cli import main

    for args, _expected in ((["data", "validate", str(empty)], "no task files"),
                           (["data", "validate", str(tmp_path / "nope")], "no such file"),
                           (["data", "stats", str(empty)], "no task files")):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 1


def test_cli_main_prints_one_line_error(tmp_path, capsys):
    from medsbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["data", "validate", str(tmp_path / "nope.json")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'nope.json'}: no such file or folder"


def test_stats_json(tmp_path):
    write(tmp_path, good_task(), "task126_bc5cdr_chem.test.json")
    res = runner.invoke(app, ["data", "stats", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert rows[0]["task_id"] == "task126" and rows[0]["category"] == "ner" and rows[0]["instances"] == 30
    assert rows[0]["split"] == "test" and rows[0]["mean_input_chars"] > 20


def test_catalog_covers_the_benchmark_task_ids_and_selects():
    cat = catalog()
    for tid in ["task57", "task58", "task59", "task60", "task61", "task122", "task123", "task129", "task78", "task110",
                "task112", "task114", "task1", "task2", "task3", "task29", "task74", "task18", "task46", "task50",
                "task51", "task56", "task125", "task126", "task127", "task128", "task130", "task131", "task117",
                "task118", "task119", "task106", "task12", "task16", "task100", "task41", "task42"]:
        assert tid in cat
    assert all(f"task{i}" in cat for i in range(83, 95))
    assert cat["task57"].shots == 0 and cat["task126"].shots == 3
    assert cat["task100"].scorer == "ebms" and cat["task42"].scorer == "text"
    assert [t.id for t in cat.select("task58,ner")] == ["task58", "task125", "task126", "task127", "task128"]
    assert {t.availability for t in cat.tasks.values()} == {"public-here", "public-elsewhere", "credentialed"}
    res = runner.invoke(app, ["data", "catalog", "--json"])
    assert res.exit_code == 0 and len(json.loads(res.output)) == len(cat.tasks)
    # The table names each task by its name too (what --tasks takes beside the id).
    res = runner.invoke(app, ["data", "catalog", "--category", "mcqa"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    row = next(line for line in res.output.splitlines() if "task123" in line)
    assert row.split("│")[2].strip() == "pubmedqa"


def test_unknown_selection_is_one_line():
    from medsbench.errors import MedsbenchError

    with pytest.raises(MedsbenchError, match="unknown task or category 'task999'"):
        catalog().select("task999")


def test_an_input_far_beyond_any_context_is_a_warning_naming_file_and_index(tmp_path):
    from medsbench.tasks.validate import HUGE_INPUT_CHARS

    task = good_task(30)
    task["Instances"][7]["input"] = "aspirin " * (HUGE_INPUT_CHARS // 8 + 1)
    task["Instances"][9]["input"] = "x" * HUGE_INPUT_CHARS  # exactly at the bound: fine
    path = write(tmp_path, task)
    probs = validate_file(path)
    assert [(p.level, p.index, p.field) for p in probs] == [("warning", 7, "input")]
    assert str(probs[0]).startswith(f"{path}:7: input: {HUGE_INPUT_CHARS + 8} characters: far beyond")
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 0 and f"{path}:7: input:" in result.output, result.output
