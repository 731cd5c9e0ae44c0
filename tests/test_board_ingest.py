"""Ingest and store: hostile run folders never write outside the site folder and never reach a page
unescaped; rows must match their manifest's plan; a half-made store (a kill during the first add) opens;
two writers at once are serialized; the board's modules keep one direction (no import circle).

Run folders are real ones (the runner's, or written through the record classes and scored by the real
scorer); hostile variants are edited copies re-scored with ``medsbench score``, as an attacker would.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_board_support import HOSTILE_MODEL, board_ws, record_run, run_rows, site_items  # noqa: F401
from test_board_integrity import _rows

from medsbench.board.publish import add_run

from medsbench.board.site import build_site

from medsbench.board.store import Store
from medsbench.board.names import unique_slug
from medsbench.board.store import SCHEMA_VERSION
from medsbench.errors import MedsbenchError
from medsbench.ids import inside
from medsbench.records import write_predictions
from medsbench.records.folder import RunFolder
from medsbench.tasks.format import Instance, iter_instances, read_meta, write_task

BOARD = Path(__file__).resolve().parents[1] / "src" / "medsbench" / "board"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medsbench.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False, cwd=cwd)


def _tree(root: Path, skip: Path) -> dict[str, int]:
    """Every file under ``root`` outside ``skip`` (path -> size)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")
            if p.is_file() and skip not in p.parents and p != skip}


def _hostile_copy(board_ws, tmp_path: Path, name: str, task_id: str) -> Path:
    """The real run with every task57 row renamed to ``task_id`` (the file edited as text), re-scored with
    `medsbench score`; where the scorer's reader already refuses the id, results.json is edited the same way."""
    run = tmp_path / "runs" / name
    shutil.copytree(board_ws["runs"][0], run)
    lines = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    for row in lines:
        if row["task_id"] == "task57":
            row["task_id"] = task_id
    (run / "predictions.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in lines))
    res = _cli("score", str(run / "predictions.jsonl"), "--bootstrap", "50")
    results = json.loads((run / "results.json").read_text())
    if res.returncode == 0:
        assert task_id in results["tasks"]  # the scorer took it
    else:
        results["tasks"][task_id] = results["tasks"].pop("task57")
        results["categories"]["mcqa"]["tasks"] = [task_id]
        (run / "results.json").write_text(json.dumps(results))
    return run


@pytest.mark.parametrize("task_id", ["../../escaped", "../../../../tmp/x/escaped", "<script>alert(1)</script>",
                                     "task57/../../../escaped", "/abs/escaped", "task57\u2028x"])
def test_hostile_task_ids_are_refused_where_the_file_is_read(tmp_path, board_ws, task_id):
    run = _hostile_copy(board_ws, tmp_path, "evil", task_id)
    ws = tmp_path / "ws"
    before = _tree(tmp_path, ws)
    res = _cli("board", "add", str(run), "--workspace", str(ws))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    [line] = res.stderr.strip().splitlines()
    assert "predictions.jsonl:" in line and "task" in line and "not a valid" in line
    assert _cli("board", "build", "--workspace", str(ws)).returncode == 0
    with Store(ws / "board.sqlite") as store:
        assert "evil" not in {r.name for r in store.runs(include_pending=True)}
    assert _tree(tmp_path, ws) == before  # nothing written outside the workspace
    assert not Path("/tmp/x/escaped.html").exists()
    for page in (ws / "site").rglob("*"):
        if page.is_file():
            assert b"<script>alert(1)" not in page.read_bytes()


def test_hostile_ids_in_other_files_are_refused(tmp_path, board_ws):
    """A task id only in results.json or manifest.json, a judge name in judgements.jsonl, a run folder name."""
    base = board_ws["runs"][0]
    cases = {}
    run = tmp_path / "a" / "results-only"
    shutil.copytree(base, run)
    data = json.loads((run / "results.json").read_text())
    data["categories"]["mcqa"]["tasks"] = ["../../escaped"]
    (run / "results.json").write_text(json.dumps(data))
    cases[run] = "results.json: task id '../../escaped' is not a valid name"
    run = tmp_path / "b" / "manifest-only"
    shutil.copytree(base, run)
    data = json.loads((run / "manifest.json").read_text())
    data["tasks"]["<b>x</b>"] = data["tasks"]["task57"]
    (run / "manifest.json").write_text(json.dumps(data))
    cases[run] = "manifest.json: task id '<b>x</b>' is not a valid name"
    run = tmp_path / "c" / "<script>run"
    shutil.copytree(base, run)
    cases[run] = "run name '<script>run' is not a valid name"
    with Store(tmp_path / "b.sqlite") as store:
        for folder, message in cases.items():
            with pytest.raises(MedsbenchError, match=None) as err:
                add_run(store, folder)
            assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
        with pytest.raises(MedsbenchError, match="run name '../x' is not a valid name"):
            add_run(store, base, run_name="../x")
        with pytest.raises(MedsbenchError, match="kept for published numbers"):
            add_run(store, base, run_name="reported-GPT-4")
        assert {r.kind for r in store.runs()} == {"reported"}


def test_hostile_item_ids_and_texts_are_data_escaped_everywhere(tmp_path, board_ws):
    """Instance ids are data (never a path): markup and '../' in them are accepted from a task file, kept out of
    every path, and escaped on every page and in every shard."""
    files = dict(board_ws["files"])
    evil_ids = ["<img src=x onerror=alert(7)>", "../../escaped", "a&b\"c'd", "</script><script>alert(8)</script>",
                "x" * 500, "\u00e9\u4e2d"]
    src = board_ws["files"]["task57"]
    files["task57"] = tmp_path / "tasks" / src.name
    files["task57"].parent.mkdir(parents=True)
    insts = list(iter_instances(src))
    write_task(files["task57"], read_meta(src), [Instance(id=i, input=x.input, output=x.output)
                                                 for i, x in zip(evil_ids, insts)])
    rows = _rows(files)
    for r in rows:
        if r.task_id == "task57":
            r.output = f"{r.output} <iframe src=//evil.example></iframe>"
    run = record_run(tmp_path / "runs" / "evil-items", files, rows, spec="hf:/models/evil")
    site = tmp_path / "site"
    before = _tree(tmp_path, site)
    with Store(tmp_path / "b.sqlite") as store:
        assert add_run(store, run, model_name=HOSTILE_MODEL, description="<b>desc</b>") == "added"
        build_site(store, site)
    after = _tree(tmp_path, site)
    assert set(after) - set(before) <= {"b.sqlite", "b.sqlite.lock", "b.sqlite-wal", "b.sqlite-shm"}
    assert all(after[k] == v for k, v in before.items())
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "escaped.html").exists()
    _, items = site_items(site, "evil-items")
    assert [it[1] for it in items if it[0] == "task57"] == evil_ids
    for path in site.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".js"):
            text = path.read_text()
            for bad in ("<img src=x", "<script>alert", "<iframe", "<b>desc", HOSTILE_MODEL):
                assert bad not in text, (path, bad)
    page = (site / "runs" / f"{unique_slug('evil-items')}.html").read_text()
    assert "&lt;b&gt;" not in page  # the description is on the model page, escaped
    model = (site / "models" / f"{unique_slug(HOSTILE_MODEL)}.html").read_text()
    assert "&lt;b&gt;desc&lt;/b&gt;" in model


def test_item_ids_must_be_instances_of_the_planned_file(tmp_path, board_ws):
    run = tmp_path / "runs" / "ids"
    shutil.copytree(board_ws["runs"][0], run)
    rows = run_rows(run)
    rows[0].id = "999"
    write_predictions(run / "predictions.jsonl", rows)
    scored = _cli("score", str(run / "predictions.jsonl"), "--bootstrap", "50")  # the plan's instance ids differ
    assert scored.returncode == 1 and "the rows' instance ids are not the ones manifest.json planned" in scored.stderr
    # A manifest from before planned ids were recorded: the test file itself is the check.
    manifest = RunFolder(run).manifest()
    for t in manifest.tasks.values():
        t.items_sha256 = None
    RunFolder(run).save_manifest(manifest)
    assert _cli("score", str(run / "predictions.jsonl"), "--bootstrap", "50").returncode == 0
    with Store(tmp_path / "b.sqlite") as store, pytest.raises(MedsbenchError) as err:
        add_run(store, run)
    assert "task57 item '999' is not an instance of the test file the run planned" in str(err.value)
    assert str(run / "predictions.jsonl") + ":1" in str(err.value)


@pytest.mark.parametrize("edit, message", [
    # (the wording of medsbench.records' plan check is accepted too: the lead moves this check there)
    ("duplicate", r"duplicated? row: task57 item '0'"),
    ("unplanned", r"task58.* never planned"),
    ("fewer", r"task57:? (has )?5 row\(s\), manifest.json planned 6"),
    ("more", r"task57:? (has )?6 row\(s\), manifest.json planned 5"),
])
def test_rows_must_match_the_manifest_plan(tmp_path, board_ws, edit, message):
    run = tmp_path / "runs" / "plan"
    shutil.copytree(board_ws["runs"][0], run)
    rows = run_rows(run)
    manifest = RunFolder(run).manifest()
    if edit == "duplicate":
        rows[1].id = rows[0].id
    elif edit == "unplanned":
        rows[0].task_id = "task58"
    elif edit == "fewer":
        rows = rows[1:]
    else:
        manifest.tasks["task57"].n = 5
        RunFolder(run).save_manifest(manifest)
    write_predictions(run / "predictions.jsonl", rows)
    scored = _cli("score", str(run / "predictions.jsonl"), "--bootstrap", "50")  # re-scoring refuses them too
    assert scored.returncode == 1 and re.search(message, scored.stderr), scored.stderr
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match=message) as err:
            add_run(store, run)
        assert "\n" not in str(err.value)
        assert "plan" not in {r.name for r in store.runs(include_pending=True)}


def test_an_unfinished_run_may_have_fewer_rows_with_allow_partial(tmp_path, board_ws):
    files = board_ws["files"]
    rows = [r for r in _rows(files) if r.id not in ("4", "5")]  # task57 stopped after 4 of 6 planned items
    run = record_run(tmp_path / "runs" / "stopped", files, rows, status="interrupted")
    manifest = RunFolder(run).manifest()
    manifest.tasks["task57"].n = 6
    manifest.tasks["task57"].items_sha256 = None
    RunFolder(run).save_manifest(manifest)
    with Store(tmp_path / "b.sqlite") as store:
        with pytest.raises(MedsbenchError, match=r"task57 has 4 row\(s\), manifest.json planned 6 .*--allow-partial"):
            add_run(store, run)
        assert add_run(store, run, allow_partial=True) == "added"
        [info] = [i for i in store.task_info("stopped") if i["task_id"] == "task57"]
        assert info["n"] == 4 and info["n_failed"] == 2 and info["coverage"] == pytest.approx(4 / 6, abs=1e-4)


def test_store_identifiers_are_checked_when_read_back(tmp_path, board_ws):
    """A store edited behind the board's back (or written by an older medsbench) cannot make the site builder
    write outside its folder: the bad id stops the build in one line, and the old site stays."""
    path = tmp_path / "b.sqlite"
    with Store(path) as store:
        add_run(store, board_ws["runs"][0], model_name="tiny")
        build_site(store, tmp_path / "site")
    first = _tree(tmp_path / "site", tmp_path / "none")
    for table, column, value in (("task_info", "task_id", "../../escaped"), ("runs", "name", "../../escaped"),
                                 ("predictions", "item_id", "bad\x00id"), ("task_scores", "task_id", "<b>t</b>")):
        shutil.copy(path, tmp_path / "edited.sqlite")
        con = sqlite3.connect(tmp_path / "edited.sqlite")
        con.execute("PRAGMA foreign_keys = OFF")
        con.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = (SELECT MIN(rowid) FROM {table} WHERE "
                    f"{'run' if table != 'runs' else 'name'} = 'tiny-llama')", (value,))
        con.commit()
        con.close()
        with Store(tmp_path / "edited.sqlite") as store, pytest.raises(MedsbenchError, match="is not (a )?valid") as err:
            build_site(store, tmp_path / "site")
        assert "edited.sqlite" in str(err.value) and "\n" not in str(err.value)
        assert _tree(tmp_path / "site", tmp_path / "none") == first
        assert not (tmp_path / "escaped.html").exists() and not (tmp_path / "escaped").exists()


def test_every_site_path_is_checked_inside_the_root(tmp_path):
    (tmp_path / "site").mkdir()
    assert inside(tmp_path / "site", "runs", "x.html") == (tmp_path / "site" / "runs" / "x.html").resolve()
    for parts in (("..", "x.html"), ("runs", "../../x"), ("/etc/passwd",)):
        with pytest.raises(MedsbenchError, match="refusing to write outside"):
            inside(tmp_path / "site", *parts)
    (tmp_path / "site" / "link").symlink_to(tmp_path)
    with pytest.raises(MedsbenchError, match="refusing to write outside"):
        inside(tmp_path / "site", "link", "x.html")
    source = (BOARD / "site.py").read_text()
    assert source.count("inside(tmp, ") == 1 and "write_bytes" in source  # the one writer of the site's files


# -- a half-made store ------------------------------------------------------------------------------


def _partial_schema(path: Path, state: str) -> None:
    """The states a kill during the first `board add` could leave with the old (non-transactional) code."""
    from medsbench.board.store import _TABLES

    con = sqlite3.connect(path)
    if state == "tables, no meta":
        for ddl in _TABLES[1:5]:
            con.execute(ddl)
    elif state == "meta, no version":
        con.execute(_TABLES[0])
    elif state == "every table, no version":
        for ddl in _TABLES:
            con.execute(ddl)
        con.execute("INSERT INTO meta VALUES ('last_update', '2026-01-01')")
    elif state == "old schema 3, half migrated":
        for ddl in _TABLES:
            if "judgements" not in ddl and "task_files" not in ddl:
                con.execute(ddl.replace(", ci_method TEXT", ""))
        con.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    con.commit()
    con.close()


@pytest.mark.parametrize("state", ["empty file", "tables, no meta", "meta, no version", "every table, no version",
                                   "old schema 3, half migrated"])
def test_a_half_made_store_opens_and_works(tmp_path, board_ws, state):
    path = tmp_path / "board.sqlite"
    path.touch()
    _partial_schema(path, state)
    with Store(path) as store:  # the bug: "store schema 0 is not supported (expected 3)", forever
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert add_run(store, board_ws["runs"][0], model_name="tiny") == "added"
        assert {r.kind for r in store.runs()} == {"reported", "measured"}
        build_site(store, tmp_path / "site")
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()


def test_schema_and_version_are_one_transaction(tmp_path, monkeypatch):
    """A failure while the schema is being made leaves no half-made store behind (everything rolls back)."""
    import medsbench.board.store as store_mod

    real = store_mod._ensure_tables

    def dying(db):
        real(db)
        raise KeyboardInterrupt  # killed after the tables, before the version

    monkeypatch.setattr(store_mod, "_ensure_tables", dying)
    with pytest.raises(KeyboardInterrupt):
        Store(tmp_path / "board.sqlite")
    con = sqlite3.connect(tmp_path / "board.sqlite")
    assert con.execute("SELECT name FROM sqlite_master").fetchall() == []
    con.close()
    monkeypatch.setattr(store_mod, "_ensure_tables", real)
    with Store(tmp_path / "board.sqlite") as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)


def test_a_store_with_runs_but_no_version_is_refused(tmp_path):
    path = tmp_path / "board.sqlite"
    with Store(path):
        pass
    con = sqlite3.connect(path)
    con.execute("DELETE FROM meta WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(MedsbenchError, match="holds runs but no schema version"):
        Store(path)


# -- two writers ------------------------------------------------------------------------------------

_WRITER = """
import sys
from medsbench.board.publish import add_run
from medsbench.board.store import Store
with Store(sys.argv[1]) as store:
    for i in range(int(sys.argv[3])):
        add_run(store, sys.argv[2], model_name=sys.argv[4], run_name=f"{sys.argv[4]}-{i}")
"""


def test_two_concurrent_adds_do_not_corrupt_the_store(tmp_path, board_ws):
    """Two processes adding runs to one store at the same time (no CLI folder lock): the store's own lock
    serializes them; every run is stored whole and the file stays consistent."""
    path = tmp_path / "board.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(run), "3", name], env=env,
                              stderr=subprocess.PIPE, text=True)
             for run, name in ((board_ws["runs"][0], "alpha"), (board_ws["runs"][1], "beta"))]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    with Store(path) as store:
        runs = {r.name for r in store.runs() if r.kind == "measured"}
        assert runs == {f"{n}-{i}" for n in ("alpha", "beta") for i in range(3)}
        for name in runs:
            assert store.prediction_count(name) == 10 and len(store.task_info(name)) == 2
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()


# -- structure --------------------------------------------------------------------------------------


def test_store_is_sql_only_and_there_is_no_import_circle():
    """Importing the store loads no ingest/submit/site code (the old circle store <-> submit is gone: submit
    may use the store, never the reverse); data flows run folder -> ingest -> publish -> store."""
    code = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
            "print(sorted(m for m in sys.modules if m.startswith('medsbench.board.')))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}

    def loaded(module: str) -> set[str]:
        out = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True, env=env, check=True)
        return set(ast.literal_eval(out.stdout.strip()))

    assert loaded("medsbench.board.store") <= {"medsbench.board.store", "medsbench.board.names"}
    assert "medsbench.board.submit" not in loaded("medsbench.board.store")  # submit -> store only (tests/test_code_shape.py)
    assert not loaded("medsbench.board.ingest") & {"medsbench.board.store", "medsbench.board.site",
                                                    "medsbench.board.publish", "medsbench.board.submit"}
    # Every read of a run folder's files goes through RunFolder, in ingest.read_run_folder only.
    tree = ast.parse((BOARD / "ingest.py").read_text())
    funcs = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    start, end = funcs["read_run_folder"].lineno, funcs["read_run_folder"].end_lineno
    reads = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", ""))
             in ("load", "read_predictions", "iter_jsonl", "manifest", "predictions", "results", "judged", "judgements")]
    assert reads and all(start <= line <= end for line in reads), reads
    for path in BOARD.glob("*.py"):
        for f in ast.walk(ast.parse(path.read_text())):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n_args = len(f.args.args) + len(f.args.kwonlyargs) + len(f.args.posonlyargs)
                assert f.end_lineno - f.lineno < 100 and n_args <= 8, (path.name, f.name)
