"""Runs the board can trust: failed items are missing (never a 0), partial and sampled runs say so,
majority baselines / degenerate tasks / protocols are shown, credentials never reach the store or the
site, one writer at a time, and run names survive an 80-column terminal.

Runs come from the real runner where it can produce the case (a ``--limit`` sample); the failure cases
(a backend that gave up on some items) are built with the record classes, scored by the real scorer.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_board import Page
from test_board_support import board_ws, eval_run, record_run, run_rows, site_items  # noqa: F401

from medsbench.board.publish import add_run

from medsbench.board.site import build_site

from medsbench.board.store import Store
from medsbench.board.names import unique_slug as slugify
from medsbench.board.store import SCHEMA_VERSION
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
    row = next(r for r in table["rows"] if re.match(r"^(\d+ )?" + re.escape(model), r[0]))
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
                add_run(store, old, allow_partial=allow)
            with pytest.raises(MedsbenchError, match=r"no item of this run was answered \(10 failed\).*--resume"):
                add_run(store, honest, allow_partial=allow)
        assert [r for r in store.runs() if r.kind != "reported"] == []
    res = _cli("board", "add", str(honest), "--allow-partial", "--workspace", str(ws))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert _cli("board", "build", "--workspace", str(ws)).returncode == 0
    page = Page((ws / "site" / "index.html").read_text())
    rows = [r for t in page.tables for r in t["rows"]]
    assert rows and all("reported" in r[0] and "measured" not in r[0] for r in rows)
    assert not any("gpt-4" in r[0] for r in rows)
    assert not (ws / "site" / "runs").exists() or not list((ws / "site" / "runs").iterdir())


def test_a_task_with_no_answer_shows_no_score(tmp_path, board_ws):
    """task57 entirely failed, task114 answered: published with --allow-partial, task57 has no number."""
    files = board_ws["files"]
    run = record_run(tmp_path / "runs" / "half-dead", files, _rows(files, failed=lambda tid, inst: tid == "task57"),
                     spec=DOWN, status="failed")
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match=r"6 item\(s\) failed .*--resume --out .*--allow-partial"):
            add_run(store, run)
        # The spec's name is the reported row's name up to case: measured and reported must stay apart.
        with pytest.raises(MedsbenchError, match=r"'gpt-4' is \(up to case\) the reported \(seeded\) row 'GPT-4'"):
            add_run(store, run, allow_partial=True)
        assert add_run(store, run, allow_partial=True, model_name="gpt-4 (ours)") == "added"
        assert {s["task_id"] for s in store.task_scores("half-dead")} == {"task114"}
        build_site(store, tmp_path / "site")
    head, row = _overview_row(tmp_path / "site", "gpt-4")
    mcqa = row[head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))]
    assert mcqa.startswith("–") and "coverage 0% (6 failed)" in mcqa and "0.00" not in mcqa
    assert "partial run" in row[0] and not re.match(r"^\d", row[0])  # marked, and not ranked
    task57 = _run_table(tmp_path / "site", "half-dead")["task57"]
    assert task57["n"] == "0" and task57["Coverage"] == "0.0%6 failed" and task57["Official: primary"] == "–"


def test_partial_run_shows_coverage_beside_each_score(tmp_path, board_ws):
    files = board_ws["files"]
    rows = _rows(files, failed=lambda tid, inst: tid == "task57" and inst.id in ("0", "1"))
    run = record_run(tmp_path / "runs" / "flaky", files, rows, spec=DOWN, status="failed")
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match=r"2 item\(s\) failed"):
            add_run(store, run)
        add_run(store, run, allow_partial=True, model_name="gpt-4 (ours)")
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
    # Failed items are in the browser with the backend's message, no output and no verdict.
    index, items = site_items(tmp_path / "site", "flaky")
    failed = [it for it in items if it[7]]
    assert len(failed) == 2 and all(it[7] == REFUSED and it[3] is None for it in failed)
    assert all(it[5] is None and it[6] is None and it[8] is None for it in failed)
    assert [bool(flags & 4) for _, flags in index["items"]] == [it[7] is not None for it in items]


def test_a_limited_run_is_a_sample_with_its_n(tmp_path, board_ws, tiny_model_dir):
    """A real `eval --limit 3` run: not a failure, but its n is shown beside the score."""
    shutil.copytree(board_ws["root"] / "tasks", tmp_path / "tasks")
    run = eval_run(tiny_model_dir, tmp_path, "limited", limit=3)
    manifest = RunFolder(run).manifest()
    assert {t.n for t in manifest.tasks.values()} == {3} and manifest.tasks["task57"].n_total == 6
    with Store(tmp_path / "b.sqlite") as store:
        assert add_run(store, run, model_name="limited") == "added"  # a sample is not partial
        assert not next(r for r in store.runs() if r.name == "limited").partial
        build_site(store, tmp_path / "site")
    head, row = _overview_row(tmp_path / "site", "limited")
    mcqa = row[head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))]
    assert "n=3 (sample)" in mcqa and "coverage" not in mcqa
    table = _run_table(tmp_path / "site", "limited")
    assert table["task57"]["n"] == "3n=3 of 6 (sample)" and table["task114"]["n"] == "3n=3 of 4 (sample)"


# -- majority baseline, degenerate tasks, protocol --------------------------------------------------


def _degenerate_files(root: Path, files: dict[str, Path]) -> dict[str, Path]:
    """A copy of the test tasks whose task57 gold is "A" on every item (a degenerate test file)."""
    from medsbench.tasks.format import Instance, read_meta, write_task

    root.mkdir(parents=True, exist_ok=True)
    out = dict(files)
    insts = list(iter_instances(files["task57"]))
    out["task57"] = root / files["task57"].name
    write_task(out["task57"], read_meta(files["task57"]),
               [Instance(id=i.id, input=i.input, output=["A. " + i.input.split("\nA. ")[1].split("\n")[0]]) for i in insts])
    return out


def test_majority_baseline_comes_from_the_full_test_file(tmp_path, board_ws):
    """A 3-item sample claims a 99% baseline in results.json; the board shows the full file's (3 of 6 golds are
    A: 50.0), computed with the scorer's gold-label rule, and never the sample's."""
    files = board_ws["files"]

    def edit(results):
        results.tasks["task57"].majority_baseline = 99.0
        results.tasks["task57"].degenerate = True
        results.protocol = "official"

    sample = [r for r in _rows(files) if r.task_id == "task114" or r.id in ("0", "4", "5")]  # golds A, A, A
    run = record_run(tmp_path / "runs" / "official-run", files, sample, results_edit=edit, protocol="official")
    with Store(tmp_path / "b.sqlite") as store:
        add_run(store, run, model_name="audited")
        [info] = [i for i in store.task_info("official-run") if i["task_id"] == "task57"]
        assert info["majority_baseline"] == 50.0 and info["majority_label"] == "A" and not info["degenerate"]
        assert info["n_total"] == 6 and info["n"] == 3
        build_site(store, tmp_path / "site")
    head, row = _overview_row(tmp_path / "site", "audited")
    assert "protocol official" in row[0]
    mcqa = row[head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))]
    assert "majority baseline 50.0" in mcqa and "degenerate" not in mcqa and "99" not in mcqa
    summ = row[head.index(next(h for h in head if "ROUGE-L" in h))]
    assert "majority" not in summ  # no baseline beside a text-similarity score
    table = _run_table(tmp_path / "site", "official-run")
    assert table["task57"]["Majority baselinefull test file"] == "50.00"
    html = (tmp_path / "site" / "runs" / f"{slugify('official-run')}.html").read_text()
    assert '<strong class="protocol">official</strong>' in html
    task_page = (tmp_path / "site" / "tasks" / "task57.html").read_text()
    assert "6 items in the test file" in task_page and "50.0% accuracy by always answering “A”" in task_page


def test_degenerate_gold_is_flagged_from_the_full_file(tmp_path, board_ws):
    files = _degenerate_files(tmp_path / "tasks", board_ws["files"])
    run = record_run(tmp_path / "runs" / "all-a", files, _rows(files))
    with Store(tmp_path / "b.sqlite") as store:
        add_run(store, run, model_name="all-a")
        build_site(store, tmp_path / "site")
    head, row = _overview_row(tmp_path / "site", "all-a")
    mcqa = row[head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))]
    assert "majority baseline 100.0" in mcqa and "degenerate gold: task57" in mcqa
    assert _run_table(tmp_path / "site", "all-a")["task57"]["Majority baselinefull test file"] == "100.00degenerate gold"
    assert "degenerate gold" in (tmp_path / "site" / "tasks" / "task57.html").read_text()


@pytest.mark.parametrize("change", ["missing", "edited"])
def test_baseline_unknown_without_the_task_file(tmp_path, board_ws, change):
    """The task file the run recorded is gone (or changed): the baseline is unknown, never guessed from the sample."""
    files = {k: tmp_path / "tasks" / v.name for k, v in board_ws["files"].items()}
    shutil.copytree(board_ws["root"] / "tasks", tmp_path / "tasks")
    run = record_run(tmp_path / "runs" / "moved", files, _rows(files))
    if change == "missing":
        files["task57"].unlink()
    else:
        files["task57"].write_text(files["task57"].read_text().replace("aspirin", "asprin"))
    with Store(tmp_path / "b.sqlite") as store:
        add_run(store, run, model_name="moved")
        [info] = [i for i in store.task_info("moved") if i["task_id"] == "task57"]
        assert info["majority_baseline"] is None and info["file_sha256"] is not None
        build_site(store, tmp_path / "site")
    head, row = _overview_row(tmp_path / "site", "moved")
    mcqa = row[head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))]
    why = "task file not available" if change == "missing" else "the task file changed since the run"
    assert f"baseline unknown ({why}" in mcqa and "majority baseline" not in mcqa


def test_protocols_must_agree(tmp_path, board_ws):
    files = board_ws["files"]

    def edit(results):
        results.protocol = "paper"

    run = record_run(tmp_path / "runs" / "mixed", files, _rows(files), results_edit=edit, protocol="official")
    with Store(tmp_path / "b.sqlite") as store, pytest.raises(MedsbenchError, match="protocol 'paper'.*'official'"):
        add_run(store, run)


def test_old_or_foreign_results_are_refused_in_one_line(tmp_path, board_ws):
    import json

    run = tmp_path / "runs" / "foreign"
    shutil.copytree(board_ws["runs"][0], run)
    data = json.loads((run / "results.json").read_text())
    data["schema_version"] = 99
    (run / "results.json").write_text(json.dumps(data))
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match=r"results.json: results file has schema_version 99"):
            add_run(store, run)
        data["schema_version"] = 1
        data["tasks"]["task57"]["ci"] = {"strict": {"accuracy": [0, 1]}}  # a CI shape the board once guessed at
        (run / "results.json").write_text(json.dumps(data))
        with pytest.raises(MedsbenchError, match=r"results.json: not a medsbench results file: tasks.task57.ci"):
            add_run(store, run)
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
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)  # schema 1 -> 4
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
    assert long_name in lines and "reported-MMedIns-Llama-3" in lines
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
        add_run(store, run)


# -- data versions and small comparisons ------------------------------------------------------------


def test_runs_on_different_task_file_versions_are_marked(tmp_path, board_ws):
    """Two runs of task57 on two versions of its test file: never ranked in one column without a mark."""
    files = board_ws["files"]
    other = _degenerate_files(tmp_path / "tasks-v2", files)
    run_a = record_run(tmp_path / "runs" / "on-v1", files, _rows(files), spec="hf:/models/a")
    run_b = record_run(tmp_path / "runs" / "on-v2", other, _rows(other), spec="hf:/models/b")
    from medsbench.fileio import sha256_file

    v1, v2 = sha256_file(files["task57"])[:8], sha256_file(other["task57"])[:8]
    assert v1 != v2
    with Store(tmp_path / "b.sqlite") as store:
        add_run(store, run_a, model_name="model a")
        add_run(store, run_b, model_name="model b")
        versions = {r.name: r.benchmark_version for r in store.runs() if r.kind == "measured"}
        assert versions["on-v1"] != versions["on-v2"] and all(len(v) == 8 for v in versions.values())
        build_site(store, tmp_path / "site")
    page = Page((tmp_path / "site" / "index.html").read_text())
    table = next(t for t in page.tables if t["id"] == "table-reference")
    head = table["head"][0]
    col = head.index(next(h for h in head if h.startswith(catalog().categories["mcqa"].title)))
    assert "⚑ mixed data versions" in head[col]
    summ = head.index(next(h for h in head if "ROUGE-L" in h))
    assert "mixed" not in head[summ]  # task114 ran on one version
    for model, version in (("model a", v1), ("model b", v2)):
        _, row = _overview_row(tmp_path / "site", model)
        assert f"⚑ data task57 v{version}" in row[col] and f"data b{versions['on-v1' if model == 'model a' else 'on-v2']}" in row[0]
        assert "mixed data versions in 1 category" in row[1]
    task = (tmp_path / "site" / "tasks" / "task57.html").read_text()
    assert "ran on different versions of its test file" in task and f"v{v1}" in task and f"v{v2}" in task
    assert task.count("⚑ other versions on this board") == 2
    about = (tmp_path / "site" / "about.html").read_text()
    assert f"<code>v{v1}</code>" in about and f"<code>v{v2}</code>" in about and "Tasks with more than one version here: task57" in about


def test_comparisons_with_few_items_say_so(tmp_path, board_ws):
    """6 paired MCQA items: no verdict ("n too small to test"), no detectable difference."""
    with Store(tmp_path / "b.sqlite") as store:
        add_run(store, board_ws["runs"][0], model_name="base model")
        add_run(store, board_ws["runs"][1], model_name="tuned model", baseline="tiny-llama")
        build_site(store, tmp_path / "site")
    page = Page((tmp_path / "site" / "models" / f"{slugify('tuned model')}.html").read_text())
    table = next(t for t, (tag, a) in zip(page.tables, [x for x in page.tags if x[0] == "table"])
                 if "comparison" in (a.get("class") or "") and "comparison-tasks" not in (a.get("class") or ""))
    assert table["rows"] and all(r[2].startswith("n too small to test (n=") and r[4] == "–" for r in table["rows"])
