"""Runs the board can trust: failed items are missing (never a 0), partial and sampled runs say so,
majority baselines / degenerate tasks / protocols are shown, credentials never reach the store or the
site, one writer at a time, and run names survive an 80-column terminal.

Runs come from the real runner where it can produce the case (a ``--limit`` sample); the failure cases
(a backend that gave up on some items) are built with the record classes, scored by the real scorer.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_board import Page
from test_board_support import board_ws, eval_run, record_run, run_rows  # noqa: F401

from medsbench.board import Store, build_site
from medsbench.board.store import slugify
from medsbench.errors import MedsbenchError
from medsbench.fileio import exclusive_lock
from medsbench.records import PredictionRow
from medsbench.records.folder import RunFolder
from medsbench.records.results import Results
from medsbench.tasks.catalog import catalog
from medsbench.tasks.format import iter_instances

DOWN = "openai:gpt-4,base_url=http://127.0.0.1:9/v1"  # the reproduced case: the server is down
REFUSED = "APIConnectionError: Connection refused (http://127.0.0.1:9/v1)"


def _rows(files, *, failed=lambda tid, inst: False) -> list[PredictionRow]:
    """One row per item of the two test tasks: a letter answer (right on even ids) and a lead-in summary."""
    rows = []
    for tid, category in (("task57", "mcqa"), ("task114", "summarization")):
        for i, inst in enumerate(iter_instances(files[tid])):
            fail = failed(tid, inst)
            output = (inst.target[0] if i % 2 == 0 else "D") if tid == "task57" else " ".join(inst.input.split()[:6])
            rows.append(PredictionRow(task_id=tid, id=inst.id, category=category, language="en", input=inst.input,
                                      output=None if fail else output, reference=inst.target,
                                      references=list(inst.output), error=REFUSED if fail else None))
    return rows


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medsbench.cli", *args], capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, **(env or {})})


def _overview_row(out: Path, model: str, mode: str = "reference") -> tuple[list[str], list[str]]:
    page = Page((out / "index.html").read_text())
    table = next(t for t in page.tables if t["id"] == f"table-{mode}")
    row = next(r for r in table["rows"] if r[0].split("\n")[0].startswith(model))
    return table["head"][0], row


def _run_table(out: Path, run: str) -> dict[str, dict[str, str]]:
    page = Page((out / "runs" / f"{slugify(run)}.html").read_text())
    table = page.tables[0]
    head = table["head"][0]
    return {r[0].split(" ")[0]: dict(zip(head, r)) for r in table["rows"]}


# -- failed items are not scores --------------------------------------------------------------------


def test_every_item_failed_never_publishes_zero(tmp_path, board_ws):
    """The reproduced bug: every request to a dead server failed; the old scorer counted the failures
    as wrong answers and the board published "gpt-4 measured 0.00"."""
    files = board_ws["files"]
    rows = _rows(files, failed=lambda tid, inst: True)
    old = record_run(tmp_path / "runs" / "old-scorer", files, rows, spec=DOWN, status="failed")
    # results.json as the old scorer wrote it: every failed (empty) output counted as an answer scoring 0.
    zeros = Results.load(record_run(tmp_path / "runs" / "answered", files, _rows(files)) / "results.json")
    for block in [*zeros.tasks.values(), *zeros.categories.values()]:
        block.metrics = {k: 0.0 for k in block.metrics}
        block.reference = {k: 0.0 for k in block.reference}
    for t in zeros.tasks.values():
        t.ci, t.reference_ci = {}, {}
    assert zeros.tasks["task57"].n == 6 and zeros.tasks["task57"].n_failed == 0
    zeros.save(old / "results.json")
    honest = record_run(tmp_path / "runs" / "honest", files, rows, spec=DOWN, status="failed")
    assert Results.load(honest / "results.json").tasks == {}
    ws = tmp_path / "ws"
    with Store(ws / "board.sqlite") as store:
        for allow in (False, True):
            with pytest.raises(MedsbenchError, match=r"counts 4 failed item\(s\) of task114 as answers \(a failed item is missing, not a 0\)"):
                store.add_run(old, allow_partial=allow)
            with pytest.raises(MedsbenchError, match=r"no item of this run was answered \(10 failed\).*--resume"):
                store.add_run(honest, allow_partial=allow)
        assert [r for r in store.runs() if r.kind != "reported"] == []
    res = _cli("board", "add", str(honest), "--allow-partial", "--workspace", str(ws))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert _cli("board", "build", "--workspace", str(ws)).returncode == 0
    page = Page((ws / "site" / "index.html").read_text())
    rows = [r for t in page.tables for r in t["rows"]]
    assert rows and all(r[1] == "reported" for r in rows) and not any(r[0].startswith("gpt-4") for r in rows)
    assert not (ws / "site" / "runs").exists() or not list((ws / "site" / "runs").iterdir())


def test_a_task_with_no_answer_shows_no_score(tmp_path, board_ws):
    """task57 entirely failed, task114 answered: published with --allow-partial, task57 has no number."""
    files = board_ws["files"]
    run = record_run(tmp_path / "runs" / "half-dead", files, _rows(files, failed=lambda tid, inst: tid == "task57"),
                     spec=DOWN, status="failed")
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match=r"6 item\(s\) failed .*--resume --out .*--allow-partial"):
            store.add_run(run)
        # The spec's name is the reported row's name up to case: measured and reported must stay apart.
        with pytest.raises(MedsbenchError, match=r"'gpt-4' is \(up to case\) the reported \(seeded\) row 'GPT-4'"):
            store.add_run(run, allow_partial=True)
        assert store.add_run(run, allow_partial=True, model_name="gpt-4 (ours)") == "added"
        assert {s["task_id"] for s in store.task_scores("half-dead")} == {"task114"}
        build_site(store, tmp_path / "site")
    head, row = _overview_row(tmp_path / "site", "gpt-4")
    mcqa = row[head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))]
    assert mcqa.startswith("–") and "coverage 0% (6 failed)" in mcqa and "0.00" not in mcqa
    assert "partial run" in row[2]
    task57 = _run_table(tmp_path / "site", "half-dead")["task57"]
    assert task57["n"] == "0" and task57["Coverage"] == "0.0%6 failed" and task57["Official: primary"] == "–"


def test_partial_run_shows_coverage_beside_each_score(tmp_path, board_ws):
    files = board_ws["files"]
    rows = _rows(files, failed=lambda tid, inst: tid == "task57" and inst.id in ("0", "1"))
    run = record_run(tmp_path / "runs" / "flaky", files, rows, spec=DOWN, status="failed")
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match=r"2 item\(s\) failed"):
            store.add_run(run)
        store.add_run(run, allow_partial=True, model_name="gpt-4 (ours)")
        info = {i["task_id"]: i for i in store.task_info("flaky")}
        results = Results.load(run / "results.json")
        assert info["task57"]["n"] == results.tasks["task57"].n == 4 and info["task57"]["n_failed"] == 2
        build_site(store, tmp_path / "site")
    head, row = _overview_row(tmp_path / "site", "gpt-4")
    mcqa = row[head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))]
    accuracy = results.tasks["task57"].reference["accuracy"]
    assert mcqa.startswith(f"{accuracy:.2f}") and "coverage 67% (2 failed)" in mcqa
    table = _run_table(tmp_path / "site", "flaky")
    assert table["task57"]["Coverage"] == "66.7%2 failed" and table["task114"]["Coverage"] == "100.0%"
    # Failed items are in the browser with their error and no verdict.
    page = Page((tmp_path / "site" / "runs" / f"{slugify('flaky')}.html").read_text())
    import json

    items = json.loads(next(text for attrs, text in page.scripts if attrs.get("type") == "application/json"))
    failed = [it for it in items if it[7]]
    assert len(failed) == 2 and all(it[5] is None and it[6] is None and it[3] == "" for it in failed)


def test_a_limited_run_is_a_sample_with_its_n(tmp_path, board_ws, tiny_model_dir):
    """A real `eval --limit 3` run: not a failure, but its n is shown beside the score."""
    shutil.copytree(board_ws["root"] / "tasks", tmp_path / "tasks")
    run = eval_run(tiny_model_dir, tmp_path, "limited", limit=3)
    manifest = RunFolder(run).manifest()
    assert {t.n for t in manifest.tasks.values()} == {3} and manifest.tasks["task57"].n_total == 6
    with Store(tmp_path / "b.sqlite") as store:
        assert store.add_run(run, model_name="limited") == "added"  # a sample is not partial
        assert not next(r for r in store.runs() if r.name == "limited").partial
        build_site(store, tmp_path / "site")
    head, row = _overview_row(tmp_path / "site", "limited")
    mcqa = row[head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))]
    assert "n=3 (sample)" in mcqa and "coverage" not in mcqa
    table = _run_table(tmp_path / "site", "limited")
    assert table["task57"]["n"] == "3n=3 of 6 (sample)" and table["task114"]["n"] == "3n=3 of 4 (sample)"


# -- majority baseline, degenerate tasks, protocol --------------------------------------------------


def test_majority_baseline_degenerate_flag_and_protocol_are_shown(tmp_path, board_ws):
    files = board_ws["files"]

    def edit(results):
        results.tasks["task57"].majority_baseline = 50.0
        results.tasks["task57"].degenerate = True
        results.protocol = "official"

    run = record_run(tmp_path / "runs" / "official-run", files, _rows(files), results_edit=edit, protocol="official")
    with Store(tmp_path / "b.sqlite") as store:
        store.add_run(run, model_name="audited")
        build_site(store, tmp_path / "site")
    head, row = _overview_row(tmp_path / "site", "audited")
    assert row[2] == "official"
    mcqa = row[head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))]
    assert "majority baseline 50.0" in mcqa and "degenerate gold: task57" in mcqa
    summ = row[head.index(next(h for h in head if "ROUGE-L" in h))]
    assert "majority" not in summ  # no baseline beside a text-similarity score
    table = _run_table(tmp_path / "site", "official-run")
    assert table["task57"]["Majority baseline"] == "50.00degenerate gold" and table["task114"]["Majority baseline"] == "–"
    html = (tmp_path / "site" / "runs" / f"{slugify('official-run')}.html").read_text()
    assert 'Protocol: <strong class="protocol">official</strong>' in html
    task_page = Page((tmp_path / "site" / "tasks" / "task57.html").read_text())
    mine = next(r for r in task_page.tables[0]["rows"] if r[0].startswith("audited"))
    assert "official" in mine and "50.00degenerate gold" in mine


def test_protocols_must_agree(tmp_path, board_ws):
    files = board_ws["files"]

    def edit(results):
        results.protocol = "paper"

    run = record_run(tmp_path / "runs" / "mixed", files, _rows(files), results_edit=edit, protocol="official")
    with Store(tmp_path / "b.sqlite") as store, pytest.raises(MedsbenchError, match="protocol 'paper'.*'official'"):
        store.add_run(run)


def test_old_or_foreign_results_are_refused_in_one_line(tmp_path, board_ws):
    import json

    run = tmp_path / "runs" / "foreign"
    shutil.copytree(board_ws["runs"][0], run)
    data = json.loads((run / "results.json").read_text())
    data["schema_version"] = 99
    (run / "results.json").write_text(json.dumps(data))
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match=r"results.json: results file has schema_version 99"):
            store.add_run(run)
        data["schema_version"] = 1
        data["tasks"]["task57"]["ci"] = {"strict": {"accuracy": [0, 1]}}  # a CI shape the board once guessed at
        (run / "results.json").write_text(json.dumps(data))
        with pytest.raises(MedsbenchError, match=r"results.json: not a medsbench results file: tasks.task57.ci"):
            store.add_run(run)
    res = _cli("board", "add", str(run), "--workspace", str(tmp_path / "ws"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    [line] = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {run / 'results.json'}: not a medsbench results file: tasks.task57.ci")


# -- secrets ----------------------------------------------------------------------------------------


def test_canary_credentials_never_reach_the_store_or_the_site(tmp_path, board_ws):
    canary, key = "sk-CANARYc4n4ry0123456789", "CANARYkey9876543210"
    url = f"http://user:{canary}@127.0.0.1:9/v1?api_key={key}"
    spec = f"openai:gpt-4,base_url={url}"
    files = board_ws["files"]
    run = record_run(tmp_path / "runs" / "secret", files, _rows(files), spec=spec,
                     backend={"kind": "openai", "model": "gpt-4", "base_url": url, "api_key": key},
                     command=["medsbench", "eval", "--model", spec, "--api-key", key])
    assert canary in (run / "manifest.json").read_text()  # a careless writer: the board must not trust it
    ws = tmp_path / "ws"
    assert _cli("board", "add", str(run), "--model-name", "gpt-4 (ours)", "--workspace", str(ws)).returncode == 0
    assert _cli("board", "build", "--workspace", str(ws)).returncode == 0
    assert canary.encode() not in (ws / "board.sqlite").read_bytes() and key.encode() not in (ws / "board.sqlite").read_bytes()
    files_seen = 0
    for path in (ws / "site").rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert canary.encode() not in blob and key.encode() not in blob and b"user:" not in blob, path
            files_seen += 1
    assert files_seen > 10
    page = (ws / "site" / "runs" / f"{slugify('secret')}.html").read_text()
    assert "openai:gpt-4,base_url=http://127.0.0.1:9/v1" in page


def test_a_schema_1_store_is_migrated_and_redacted(tmp_path):
    import json

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE models (name TEXT PRIMARY KEY, kind TEXT NOT NULL, size TEXT, link TEXT, description TEXT, source TEXT);
    CREATE TABLE runs (name TEXT PRIMARY KEY, model TEXT NOT NULL REFERENCES models(name), kind TEXT NOT NULL,
      status TEXT NOT NULL, source TEXT, manifest TEXT NOT NULL, results_sha256 TEXT, predictions_sha256 TEXT, added TEXT NOT NULL);
    CREATE TABLE task_info (run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, category TEXT,
      language TEXT, n INTEGER, metric TEXT, parse_failure_rate REAL, empty_rate REAL, PRIMARY KEY (run, task_id));
    CREATE TABLE task_scores (run TEXT NOT NULL, task_id TEXT NOT NULL, mode TEXT NOT NULL, metric TEXT NOT NULL,
      value REAL NOT NULL, ci_lo REAL, ci_hi REAL, PRIMARY KEY (run, task_id, mode, metric));
    CREATE TABLE category_scores (run TEXT NOT NULL, category TEXT NOT NULL, mode TEXT NOT NULL, metric TEXT NOT NULL,
      value REAL NOT NULL, n_tasks INTEGER, derived INTEGER NOT NULL DEFAULT 0, ci_lo REAL, ci_hi REAL,
      PRIMARY KEY (run, category, mode, metric));
    CREATE TABLE predictions (run TEXT NOT NULL, seq INTEGER NOT NULL, task_id TEXT NOT NULL, item_id TEXT, input TEXT,
      output TEXT, reference TEXT, correct INTEGER, strict_correct INTEGER, error TEXT, PRIMARY KEY (run, seq));
    INSERT INTO meta VALUES ('schema_version', '1');
    INSERT INTO models VALUES ('m', 'measured', NULL, NULL, NULL, NULL);
    """)
    con.execute("INSERT INTO runs VALUES ('r', 'm', 'measured', 'approved', NULL, ?, 'a', 'b', 'now')",
                (json.dumps({"model": "openai:x,base_url=http://u:sk-OLDCANARY12345@h/v1"}),))
    con.commit()
    con.close()
    with Store(path) as store:
        assert store.get_meta("schema_version") == "3"  # schema 1 -> 2 -> 3
        [run] = [r for r in store.runs() if r.name == "r"]
        assert run.manifest == {"model": "openai:x,base_url=http://h/v1"} and run.flags == () and not run.partial
    assert b"OLDCANARY" not in path.read_bytes()  # overwritten, not left in a free page (secure_delete)


# -- one writer -------------------------------------------------------------------------------------


def test_one_writer_per_store_and_site(tmp_path, board_ws):
    ws = tmp_path / "ws"
    ws.mkdir()
    run = str(board_ws["runs"][0])
    with exclusive_lock(ws, "board store"):
        for args in (["add", run], ["build"], ["approve", "x"], ["submit", str(tmp_path / "x.csv"), "--model-name", "x"]):
            res = _cli("board", *args, "--workspace", str(ws))
            assert res.returncode == 1, (args, res.stderr)
            lines = res.stderr.strip().splitlines()
            assert len(lines) == 1 and f"board store is in use by another medsbench process (pid {os.getpid()})" in lines[0]
    with exclusive_lock(ws / ".site.lock", "site folder"):
        res = _cli("board", "build", "--workspace", str(ws))
        assert res.returncode == 1 and f"site folder is in use by another medsbench process (pid {os.getpid()})" in res.stderr
    assert _cli("board", "add", run, "--workspace", str(ws)).returncode == 0  # released: the writer gets through
    assert _cli("board", "build", "--workspace", str(ws)).returncode == 0


# -- 80 columns -------------------------------------------------------------------------------------


def test_board_list_prints_full_names_at_80_columns(tmp_path, board_ws):
    long_name = "tiny-llama-eval-on-medqa-and-meqsum-with-a-rather-long-descriptive-run-name-2026-11-27-v2"
    assert len(long_name) > 80
    run = tmp_path / "runs" / long_name
    shutil.copytree(board_ws["runs"][0], run)
    ws = tmp_path / "ws"
    assert _cli("board", "add", str(run), "--model-name", "a model name that is long enough to matter here",
                "--workspace", str(ws)).returncode == 0
    res = _cli("board", "list", "--workspace", str(ws), env={"COLUMNS": "80"})
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert long_name in lines and "reported:MMedIns-Llama 3" in lines
    detail = lines[lines.index(long_name) + 1]
    assert "model a model name that is long enough to matter here" in detail and "protocol medsbench" in detail


def test_results_scored_from_other_predictions_are_refused(tmp_path, board_ws):
    from medsbench.records import write_predictions

    run = tmp_path / "runs" / "edited"
    shutil.copytree(board_ws["runs"][0], run)  # the real runner scored its own predictions.jsonl
    assert any(Path(i.path).name == "predictions.jsonl" for i in Results.load(run / "results.json").inputs)
    rows = run_rows(run)
    rows[0].output = "A. aspirin" if rows[0].output != "A. aspirin" else "B. ibuprofen"
    write_predictions(run / "predictions.jsonl", rows)
    with Store(tmp_path / "b.sqlite") as store, pytest.raises(MedsbenchError, match="scored from another version"):
        store.add_run(run)
