"""Submission validation: each bad case is rejected with the exact rows and reasons; a valid file is
scored by the real scoring engine and appears on the site only after approve."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from test_board_support import HOSTILE_MODEL, board_ws  # noqa: F401

from medsbench.board.site import build_site

from medsbench.board.store import Store

from medsbench.board.submit import validate_submission
from medsbench.board.names import unique_slug as slugify
from medsbench.board.submit import SubmissionRejected, submit
from medsbench.errors import MedsbenchError
from medsbench.fileio import iter_jsonl, write_jsonl


def _rows(board_ws) -> list[list[str]]:
    """The official CSV rows of the first real run (task_id, input, GT, output)."""
    with open(board_ws["runs"][0] / "predictions.csv", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _write(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


@pytest.fixture()
def rows(board_ws):
    return _rows(board_ws)


def _tasks(board_ws) -> Path:
    return board_ws["root"] / "tasks"


def test_valid_csv_passes_with_full_coverage(tmp_path, board_ws, rows):
    rep = validate_submission(_write(tmp_path / "ok.csv", rows), _tasks(board_ws))
    assert rep.ok, rep.describe()
    assert rep.rows == 10 and rep.coverage == {"task57": (6, 6), "task114": (4, 4)}
    assert [p.id for p in rep.predictions if p.task_id == "task114"] == ["m0", "m1", "m2", "m3"]


def test_plain_inputs_and_full_prompts_both_match(tmp_path, board_ws, rows):
    """`input` may be the item input or the rendered prompt ending in the paper's query block."""
    assert rows[1][1].startswith("<|im_start|>system")  # the runner writes prompts into the CSV
    plain = _rows({"runs": [board_ws["runs"][1]]})  # our helper wrote plain item inputs
    assert plain[1][1].startswith("A 45-year-old")
    for name, data in (("prompts.csv", rows), ("plain.csv", plain)):
        rep = validate_submission(_write(tmp_path / name, data), _tasks(board_ws))
        assert rep.ok and rep.coverage == {"task57": (6, 6), "task114": (4, 4)}, rep.describe()


def test_valid_jsonl_passes(board_ws):
    path = board_ws["runs"][0] / "predictions.jsonl"
    rep = validate_submission(path, _tasks(board_ws))
    assert rep.ok and rep.format == "jsonl" and rep.rows == 10


def test_wrong_columns(tmp_path, board_ws, rows):
    rows[0] = ["task_id", "question", "GT", "output"]
    with pytest.raises(MedsbenchError, match=r"must have columns task_id,input,GT,output; missing input") as exc:
        validate_submission(_write(tmp_path / "cols.csv", rows), _tasks(board_ws))
    assert "cols.csv:1" in str(exc.value)


def test_unknown_task_id_names_the_line(tmp_path, board_ws, rows):
    rows[3][0] = "task9999"
    rep = validate_submission(_write(tmp_path / "unk.csv", rows), _tasks(board_ws), allow_partial=True)
    assert [(p.row, p.task_id, p.reason) for p in rep.problems] == [(3, "task9999", "unknown task id 'task9999'")]
    # The reported line is the physical line where that record starts (cells span lines).
    assert Path(rep.path).read_text().splitlines()[rep.problems[0].line - 1].startswith("task9999,")


def test_gt_mismatch_is_rejected(tmp_path, board_ws, rows):
    rows[2][2] = "D. metformin"  # tampered reference for task57 item 1 (croup)
    rep = validate_submission(_write(tmp_path / "gt.csv", rows), _tasks(board_ws))
    gt = [p for p in rep.problems if p.row == 2]
    assert len(gt) == 1 and gt[0].reason.startswith("GT differs from the benchmark reference")
    assert "'D. metformin'" in gt[0].reason and "'B. croup'" in gt[0].reason
    # The tampered row matched nothing, so task57 is also short of one item.
    assert any(p.line is None and "partial coverage: 5 of 6" in p.reason for p in rep.problems)


def test_duplicate_rows_point_at_the_first(tmp_path, board_ws, rows):
    rows.append(list(rows[1]))
    rep = validate_submission(_write(tmp_path / "dup.csv", rows), _tasks(board_ws))
    assert [(p.row, p.reason) for p in rep.problems] == [(11, "duplicate row: this item was already given in row 1 (line 2)")]
    assert Path(rep.path).read_text().splitlines()[rep.problems[0].line - 1].startswith('task57,"')


def test_partial_coverage_lists_missing_ids(tmp_path, board_ws, rows):
    kept = [r for r in rows if not (r[0] == "task114" and r[2].startswith(("What are the treatments", "Can ibuprofen")))]
    path = _write(tmp_path / "part.csv", kept)
    rep = validate_submission(path, _tasks(board_ws))
    assert [str(p) for p in rep.problems] == [
        "file [task114]: partial coverage: 2 of 4 items (missing ids: m1, m2); submit every item of a task"]
    assert rep.coverage["task114"] == (2, 4) and rep.coverage["task57"] == (6, 6)
    assert validate_submission(path, _tasks(board_ws), allow_partial=True).ok


def test_input_not_in_benchmark(tmp_path, board_ws, rows):
    rows[1][1] = rows[1][1].replace("crushing chest pain", "crushing chest pain (edited)")
    rep = validate_submission(_write(tmp_path / "inp.csv", rows), _tasks(board_ws), allow_partial=True)
    assert [(p.row, p.reason.split(":")[0]) for p in rep.problems] == [(1, "input matches no benchmark item of task57")]


def test_oversized_file(tmp_path, board_ws, rows):
    path = _write(tmp_path / "big.csv", rows)
    with pytest.raises(MedsbenchError, match=r"over the 1000-byte submission limit"):
        validate_submission(path, _tasks(board_ws), max_bytes=1000)


@pytest.mark.parametrize("name", ["../../etc/passwd.csv", "sub/../../x.csv", "..\\evil.csv"])
def test_path_traversal_names(tmp_path, board_ws, name):
    with pytest.raises(MedsbenchError, match="path traversal"):
        validate_submission(name, _tasks(board_ws))


@pytest.mark.parametrize("name", ["evil name;rm.csv", ".hidden.csv", "preds.exe", "x.csv\n"])
def test_unsafe_file_names(tmp_path, board_ws, name):
    with pytest.raises(MedsbenchError, match="file name must be"):
        validate_submission(str(tmp_path / name), _tasks(board_ws))


def test_symlink_and_inbox(tmp_path, board_ws, rows):
    real = _write(tmp_path / "real.csv", rows)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with pytest.raises(MedsbenchError, match="symbolic link"):
        validate_submission(link, _tasks(board_ws))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with pytest.raises(MedsbenchError, match="outside the inbox"):
        validate_submission(real, _tasks(board_ws), inbox=inbox)
    shutil.copy(real, inbox / "real.csv")
    assert validate_submission(inbox / "real.csv", _tasks(board_ws), inbox=inbox).ok


def test_not_utf8_and_broken_rows(tmp_path, board_ws, rows):
    bad = tmp_path / "latin.csv"
    bad.write_bytes("task_id,input,GT,output\ntask57,caf\xe9,A,A\n".encode("latin-1"))
    with pytest.raises(MedsbenchError, match=r"latin.csv:2: not UTF-8"):
        validate_submission(bad, _tasks(board_ws))
    short = _write(tmp_path / "short.csv", [rows[0], ["task57", "only two"]])
    with pytest.raises(MedsbenchError, match=r"short.csv:2: expected 4 fields, got 2"):
        validate_submission(short, _tasks(board_ws))


def test_model_names_are_checked(tmp_path, board_ws, rows):
    path = _write(tmp_path / "ok.csv", rows)
    with Store(tmp_path / "b.sqlite") as store:
        for bad in ("../../../tmp/pwn", "a/b", "x\x00y", "", "x" * 101):
            with pytest.raises(MedsbenchError, match="model name"):
                submit(path, model_name=bad, workspace=board_ws["root"], store=store)


def test_rejection_message_lists_rows(tmp_path, board_ws, rows):
    rows[3][0] = "task9999"
    rows.append(list(rows[1]))
    with Store(tmp_path / "b.sqlite") as store, pytest.raises(SubmissionRejected) as exc:
        submit(_write(tmp_path / "bad.csv", rows), model_name="m", workspace=tmp_path / "ws", store=store,
               tasks_dir=_tasks(board_ws))
    text = str(exc.value)
    assert "row 3 (line " in text and "[task9999]: unknown task id 'task9999'" in text
    assert "row 11 (line " in text and "[task57]: duplicate row: this item was already given in row 1 (line 2)" in text
    assert "file [task57]: partial coverage: 5 of 6 items (missing ids: 2)" in text
    assert not (tmp_path / "ws" / "runs").exists()  # nothing written for a rejected file


def test_valid_submission_is_scored_and_published_after_approve(tmp_path, board_ws, rows):
    ws = tmp_path / "ws"
    shutil.copytree(_tasks(board_ws), ws / "tasks")
    path = _write(tmp_path / "hostile-sub.csv", rows)
    with Store(ws / "board.sqlite") as store:
        run, report = submit(path, model_name=HOSTILE_MODEL, description="a <b>bold</b> claim", workspace=ws, store=store)
        assert report.ok and run == f"submission-{slugify(HOSTILE_MODEL)}"
        results = json.loads((ws / "runs" / run / "results.json").read_text())
        assert set(results["tasks"]) == {"task57", "task114"}
        # Scored from the submitted CSV: the same numbers as scoring the original run's predictions.
        original = json.loads((board_ws["runs"][0] / "results.json").read_text())
        for tid in ("task57", "task114"):
            assert results["tasks"][tid]["reference"] == original["tasks"][tid]["reference"]
            assert results["tasks"][tid]["metrics"] == original["tasks"][tid]["metrics"]
        pending = [r for r in store.runs(include_pending=True) if r.name == run]
        assert pending[0].status == "pending" and pending[0].kind == "submission"
        site = ws / "site"
        build_site(store, site)
        assert not (site / "runs" / f"{slugify(run)}.html").exists()
        assert "&lt;img" not in (site / "index.html").read_text()
        assert store.approve(run) == [run]
        build_site(store, site)
        index = (site / "index.html").read_text()
        assert "&lt;img src=x onerror=alert(1)&gt;" in index and "badge-submission" in index
        run_page = (site / "runs" / f"{slugify(run)}.html").read_text()
        assert "a &lt;b&gt;bold&lt;/b&gt; claim" in (site / "models" / f"{slugify(HOSTILE_MODEL)}.html").read_text()
        assert "submitted_sha256" in run_page
    stored = [r for _, r in iter_jsonl(ws / "runs" / run / "predictions.jsonl")]
    assert len(stored) == 10 and all(r["prompt"] is None for r in stored)


def test_cli_submit_and_approve(tmp_path, board_ws, rows):
    from typer.testing import CliRunner

    from medsbench.cli import app

    ws = tmp_path / "ws"
    shutil.copytree(_tasks(board_ws), ws / "tasks")
    runner = CliRunner()
    bad = list(rows) + [list(rows[1])]
    res = runner.invoke(app, ["board", "submit", str(_write(tmp_path / "dup.csv", bad)), "--model-name", "cli-sub",
                              "--workspace", str(ws)])
    assert res.exit_code == 1 and "duplicate row" in str(res.exception)
    res = runner.invoke(app, ["board", "submit", str(_write(tmp_path / "ok.csv", rows)), "--model-name", "cli-sub",
                              "--workspace", str(ws)])
    assert res.exit_code == 0, res.output
    assert "pending" in res.output and "coverage task57: 6/6" in res.output
    res = runner.invoke(app, ["board", "list", "--pending", "--workspace", str(ws)])
    assert "cli-sub" in res.output and "GPT-4" not in res.output
    res = runner.invoke(app, ["board", "approve", "cli-sub", "--workspace", str(ws)])
    assert res.exit_code == 0 and "approved submission-" in res.output
    # Same file again: idempotent, nothing to approve.
    res = runner.invoke(app, ["board", "submit", str(tmp_path / "ok.csv"), "--model-name", "cli-sub", "--workspace", str(ws)])
    assert res.exit_code == 0
    with Store(ws / "board.sqlite") as store:
        assert [r.status for r in store.runs(include_pending=True) if r.model == "cli-sub"] == ["approved"]


def test_jsonl_missing_reference_is_a_clear_error(tmp_path, board_ws):
    rows = [r for _, r in iter_jsonl(board_ws["runs"][0] / "predictions.jsonl")]
    for r in rows:
        r.pop("reference")
        r.pop("references")
    path = tmp_path / "noref.jsonl"
    write_jsonl(path, rows)
    with pytest.raises(MedsbenchError, match=r"noref.jsonl:1: not a medsbench prediction row: .*missing 'reference'"):
        validate_submission(path, _tasks(board_ws))


# -- suspicious submissions -------------------------------------------------------------------------


def _flags(rep) -> dict[tuple[str, str], tuple[int, int]]:
    return {(f.task_id, f.kind): (f.count, f.eligible) for f in rep.flags}


def test_honest_runs_raise_no_flags(tmp_path, board_ws):
    for run in board_ws["runs"]:
        rep = validate_submission(run / "predictions.jsonl", _tasks(board_ws))
        assert rep.ok and rep.flags == [], rep.describe()


def test_outputs_copied_from_the_references_are_flagged(tmp_path, board_ws, rows):
    """GT pasted into the output column (whitespace and case changed): flagged on both tasks, not rejected."""
    copied = [rows[0]] + [[r[0], r[1], r[2], "  " + r[2].upper() + " "] for r in rows[1:]]
    rep = validate_submission(_write(tmp_path / "copy.csv", copied), _tasks(board_ws))
    assert rep.ok  # a flag is for the approver, never a rejection
    n57 = sum(1 for r in rows[1:] if r[0] == "task57")
    n114 = sum(1 for r in rows[1:] if r[0] == "task114" and len(r[2].split()) >= 4)
    assert _flags(rep) == {("task57", "verbatim_closed"): (n57, n57), ("task114", "copies_reference"): (n114, n114)}
    text = rep.describe()
    assert f"FLAG [task114] {n114} of {n114} outputs are the reference verbatim (100%)" in text
    assert "majority baseline" in text and "before `medsbench board approve`" in text


def test_a_strong_honest_model_on_closed_labels_is_not_flagged(tmp_path, board_ws, rows):
    """Every MCQA answer right, as a bare letter (what a strong model says): not a copy of the gold text."""
    letters = [rows[0]] + [[r[0], r[1], r[2], r[2][0] if r[0] == "task57" else r[3]] for r in rows[1:]]
    rep = validate_submission(_write(tmp_path / "letters.csv", letters), _tasks(board_ws))
    assert rep.ok and rep.flags == []
    # Half the free-text outputs copied: at the 50% threshold the task is flagged.
    summ = [i for i, r in enumerate(letters) if r[0] == "task114"]
    half = [list(r) for r in letters]
    for i in summ[: len(summ) // 2]:
        half[i][3] = half[i][2]
    rep = validate_submission(_write(tmp_path / "half.csv", half), _tasks(board_ws))
    assert _flags(rep) == {("task114", "copies_reference"): (len(summ) // 2, len(summ))}


def test_outputs_copying_the_input_are_flagged(tmp_path, board_ws):
    from medsbench.records import read_predictions, write_predictions

    preds = read_predictions(board_ws["runs"][1] / "predictions.jsonl")  # plain item inputs
    for p in preds:
        p.output = p.input
    path = tmp_path / "echo.jsonl"
    write_predictions(path, preds)
    rep = validate_submission(path, _tasks(board_ws))
    assert _flags(rep) == {("task57", "copies_input"): (6, 6), ("task114", "copies_input"): (4, 4)}


def test_flags_reach_the_pending_list_and_approval_stays_manual(tmp_path, board_ws, rows):
    ws = tmp_path / "ws"
    shutil.copytree(_tasks(board_ws), ws / "tasks")
    copied = [rows[0]] + [[r[0], r[1], r[2], r[2]] for r in rows[1:]]
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "medsbench.cli", "board", *args, "--workspace", str(ws)],
                              capture_output=True, text=True, timeout=300, check=False, env={**__import__("os").environ, "COLUMNS": "80"})

    res = cli("submit", str(_write(tmp_path / "copied.csv", copied)), "--model-name", "Totally Honest Model 9000")
    assert res.returncode == 0, res.stderr
    assert "FLAG [task114]" in res.stdout and "(pending)" in res.stdout
    res = cli("list", "--pending")
    lines = res.stdout.splitlines()
    run = f"submission-{slugify('Totally Honest Model 9000')}"
    assert run in lines  # the full name, on its own line, at 80 columns
    flags = [ln.strip() for ln in lines if ln.strip().startswith("FLAG")]
    assert any("[task57]" in f and "closed answers are the reference verbatim" in f for f in flags)
    assert any("[task114]" in f and "outputs are the reference verbatim" in f for f in flags)
    with Store(ws / "board.sqlite") as store:
        [pending] = [r for r in store.runs(include_pending=True) if r.name == run]
        assert pending.status == "pending" and {f["kind"] for f in pending.flags} == {"verbatim_closed", "copies_reference"}
    assert cli("approve", run).returncode == 0  # a person decides
    assert cli("build").returncode == 0
    page = (ws / "site" / "runs" / f"{slugify(run)}.html").read_text()
    assert "Suspicion flags from validation" in page and "outputs are the reference verbatim" in page


def test_failed_rows_are_not_answers(tmp_path, board_ws):
    from medsbench.records import read_predictions, write_predictions

    preds = read_predictions(board_ws["runs"][0] / "predictions.jsonl")
    preds[0].output, preds[0].error = None, "APIConnectionError: Connection refused"
    path = tmp_path / "failed.jsonl"
    write_predictions(path, preds)
    rep = validate_submission(path, _tasks(board_ws))
    assert [(p.row, p.reason.split(" (")[0]) for p in rep.problems if p.row] == [(1, "failed item")]
    rep = validate_submission(path, _tasks(board_ws), allow_partial=True)
    assert rep.ok and rep.coverage["task57"] == (5, 6) and len(rep.predictions) == 9


def test_pandas_index_column_is_ignored(tmp_path, board_ws, rows):
    indexed = [["", *rows[0]]] + [[str(i), *r] for i, r in enumerate(rows[1:])]
    rep = validate_submission(_write(tmp_path / "indexed.csv", indexed), _tasks(board_ws))
    assert rep.ok and rep.rows == len(rows) - 1, rep.describe()


def test_jsonl_rows_are_matched_by_their_id_and_an_unknown_id_is_refused(tmp_path, board_ws):
    """A row that names its item is that item: an id not in the test file, or an id whose input differs, is a
    problem, never matched to another item by its input text."""
    import json

    src = board_ws["runs"][0] / "predictions.jsonl"
    rows = [json.loads(line) for line in src.read_text().splitlines()]
    rows[0]["id"] = "no-such-item"
    rows[1]["id"], rows[2]["id"] = rows[2]["id"], rows[1]["id"]  # two rows claim each other's items
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rep = validate_submission(path, _tasks(board_ws), allow_partial=True)
    reasons = {p.row: p.reason for p in rep.problems}
    assert reasons[1] == f"unknown instance id 'no-such-item': not an item of {rows[0]['task_id']}'s test file"
    if rows[1]["task_id"] == rows[2]["task_id"] and rows[1]["input"] != rows[2]["input"]:
        assert reasons[2].startswith(f"the input of item {rows[1]['id']!r} differs from the benchmark's")
    assert not rep.ok
