"""Runs you can trust: failed items are missing (not zeros), resume cannot change what is measured,
one writer per run folder, validation and writability checks before the model loads, file modes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_runs import TESTS, CountingBackend, make_workspace, rows_of, without_timing

from medsbench.errors import MedsbenchError
from medsbench.models.base import Response

CLI = [sys.executable, "-m", "medsbench.cli"]


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout,
                          check=False)


class FlakyBackend(CountingBackend):
    """Fails every prompt that contains one of ``fail_on`` (as a server error would), answers the rest."""

    def __init__(self, fail_on: tuple[str, ...] = (), **kw):
        super().__init__(**kw)
        self.fail_on = fail_on

    def generate(self, requests):
        out = super().generate(requests)
        return [
            Response(r.id, "", None, None, 0.01, "HTTP 503 from http://user:sk-canary-77@api.example/v1: unavailable")
            if any(f in q.prompt for f in self.fail_on) else r
            for q, r in zip(requests, out)
        ]


class NoCalls(CountingBackend):
    def generate(self, requests):
        raise AssertionError(f"the model was called for {len(requests)} item(s)")


# -- failed items ---------------------------------------------------------------------------

def test_failed_items_are_missing_and_resume_retries_only_them(tmp_path):
    from medsbench.records import read_predictions
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder
    from medsbench.commands.render import failure_lines

    ws = make_workspace(tmp_path / "ws")
    run = tmp_path / "run"
    flaky = FlakyBackend(fail_on=("Question 3?", "Sentence 1 "))
    res = evaluate(flaky, "task57,task126", workspace=ws, out=run, progress=False)
    rows = read_predictions(run / "predictions.jsonl")
    failed = [r for r in rows if r.failed]
    assert [(r.task_id, r.id) for r in failed] == [("task57", "q3"), ("task126", "t1")]
    assert all(r.output is None and "unavailable" in r.error for r in failed)
    assert all("sk-canary-77" not in r.error for r in failed)  # credentials in error messages are redacted
    raw = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert all(r["output"] is None for r in raw if r["error"])  # JSON null, never ""
    assert res.n_failed == 2 and res.per_task["task57"]["failed"] == 1 and res.per_task["task126"]["failed"] == 1
    manifest = RunFolder(run).manifest()
    assert manifest.status == "failed" and manifest.counts["failed"] == 2 and manifest.counts["written"] == 14
    assert (run / "results.json").is_file()  # results, predictions and manifest are all written
    lines = failure_lines(res)
    assert lines[0].startswith("2 of 14 items failed (task57: 1, task126: 1)")
    assert any("HTTP 503" in line and "sk-canary" not in line for line in lines)
    assert lines[-1] == f"retry the failed items with: medsbench eval --resume --out {run}"

    # --resume needs only the run folder, and re-sends exactly the failed items (errors are never cached).
    again = CountingBackend()
    res2 = evaluate(again, None, out=run, resume=True, progress=False)
    assert sorted(again.prompts) == sorted(r.prompt for r in failed)
    assert res2.n_failed == 0 and RunFolder(run).manifest().status == "finished" and failure_lines(res2) == []
    assert not any(r.failed for r in read_predictions(run / "predictions.jsonl"))


def test_a_limited_run_is_a_sample_not_a_failure(tmp_path):
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder
    from medsbench.commands.render import failure_lines, title

    ws = make_workspace(tmp_path / "ws")
    res = evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "r", limit=3, progress=False)
    assert res.n_items == 3 and res.n_failed == 0 and failure_lines(res) == []
    assert RunFolder(tmp_path / "r").manifest().status == "finished"
    assert "sample: first 3 per task" in title(res)
    with pytest.raises(MedsbenchError, match="--limit: must be a whole number of items"):
        evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "r0", limit=0, progress=False)
    proc = cli("eval", "-w", str(ws), "--limit", "0")
    assert proc.returncode == 1 and "--limit: must be a whole number of items (at least 1)" in proc.stderr


def test_cli_run_against_a_dead_server_exits_1_and_keeps_credentials_out(tmp_path):
    pytest.importorskip("openai")
    ws = make_workspace(tmp_path / "ws", n_mcqa=3, n_ner=0)
    run = tmp_path / "run"
    canary = "sk-canary-4f1c"
    spec = f"openai:gpt-4,base_url=http://user:{canary}@127.0.0.1:9/v1,max_attempts=1"
    proc = cli("eval", "--model", spec, "--tasks", "task57", "-w", str(ws), "--out", str(run), "--no-progress",
               env={"OPENAI_API_KEY": "sk-test-key"})
    assert proc.returncode == 1, proc.stderr
    assert "3 of 3 items failed (task57: 3); they are missing from the scores, not zeros" in proc.stderr
    assert f"medsbench eval --resume --out {run}" in proc.stderr
    rows = rows_of(run)
    assert len(rows) == 3 and all(r["output"] is None and r["error"] for r in rows)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["counts"]["failed"] == 3
    assert manifest["config"]["model"] == "openai:gpt-4,base_url=http://127.0.0.1:9/v1,max_attempts=1"
    assert manifest["config"]["model_complete"] is False  # the userinfo was dropped: a resume asks for the spec again
    everything = "".join(p.read_text(errors="replace") for p in run.iterdir() if p.is_file()) + proc.stderr + proc.stdout
    assert canary not in everything and "sk-test-key" not in everything


# -- resume cannot change what is measured --------------------------------------------------

def _interrupted_run(tmp_path: Path, **kw) -> tuple[Path, Path, CountingBackend]:
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    run = tmp_path / "run"
    broken = CountingBackend(chunk_size=1, interrupt_after=4)
    with pytest.raises(KeyboardInterrupt):
        evaluate(broken, "all", workspace=ws, out=run, progress=False, **kw)
    return ws, run, broken


def test_resume_takes_everything_from_the_manifest(tmp_path, monkeypatch):
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    ws, run, broken = _interrupted_run(tmp_path, limit=5, seed=3, cache=tmp_path / "c" / "cache.sqlite")
    manifest = RunFolder(run).manifest()
    assert manifest.workspace == str(ws.resolve()) and manifest.cache == str((tmp_path / "c" / "cache.sqlite").resolve())
    assert manifest.config.limit == 5 and manifest.config.seed == 3 and manifest.protocol == "medsbench"
    assert all(len(f.sha256) == 64 and Path(f.path).is_absolute() for t in manifest.tasks.values() for f in t.files.values())
    # Another ./medsbench-work/tasks in the current folder must not be picked up.
    other = make_workspace(tmp_path / "elsewhere" / "medsbench-work", n_mcqa=2, n_ner=2)
    monkeypatch.chdir(other.parent)
    rest = CountingBackend()
    res = evaluate(rest, None, out=run, resume=True, progress=False)
    assert res.n_items == 10 and len(rest.prompts) == 10 - 4 and not set(rest.prompts) & set(broken.prompts)
    assert RunFolder(run).manifest().status == "finished" and RunFolder(run).manifest().started == manifest.started
    assert not (other / "cache.sqlite").exists() and (tmp_path / "c" / "cache.sqlite").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"limit": 6}, "--limit 6 conflicts with the run's 5"),
        ({"seed": 1}, "--seed 1 conflicts"),
        ({"tasks": "task57"}, "--tasks task57 conflicts with the run's 'all'"),
        ({"protocol": "official"}, "--protocol official conflicts"),
        ({"workspace": "somewhere/else"}, "--workspace somewhere/else conflicts"),
        ({"model": "hf:/m/other"}, "--model hf:/m/other conflicts"),
        ({"build_from": "raw"}, "--build-from cannot be used"),
    ],
)
def test_resume_refuses_a_conflicting_flag_in_one_line(tmp_path, flags, message):
    from medsbench.pipeline import evaluate

    ws, run, _ = _interrupted_run(tmp_path, limit=5)
    with pytest.raises(MedsbenchError, match=message.replace("(", r"\(")) as err:
        evaluate(flags.pop("model", CountingBackend()), flags.pop("tasks", None), out=run, resume=True,
                 progress=False, **flags)
    assert "\n" not in str(err.value)
    # The same values as recorded are fine, and so is another source of the API key.
    evaluate(CountingBackend(), "all", workspace=ws, out=run, resume=True, limit=5, seed=0, progress=False)


def test_resume_refuses_a_changed_or_missing_task_file(tmp_path):
    from medsbench.pipeline import evaluate

    ws, run, _ = _interrupted_run(tmp_path)
    test_file = ws / "tasks" / "task57_medqa_en.test.json"
    data = json.loads(test_file.read_text())
    data["Instances"][0]["output"] = "B"
    test_file.write_text(json.dumps(data))
    with pytest.raises(MedsbenchError, match=rf"task file changed since the run started: {test_file.resolve()} \(sha256 \w+\.\.\. != \w+\.\.\.\)"):
        evaluate(NoCalls(), None, out=run, resume=True, progress=False)
    (ws / "tasks" / "task126_bc5cdr_chem.train.json").unlink()
    test_file.unlink()
    with pytest.raises(MedsbenchError, match="task file changed since the run started: .*(missing)"):
        evaluate(NoCalls(), None, out=run, resume=True, progress=False)


def test_resume_refuses_another_model(tmp_path):
    from medsbench.pipeline import evaluate

    _, run, _ = _interrupted_run(tmp_path)

    class Retrained(CountingBackend):
        def identity(self):
            return {"backend": "fake", "version": 2}

    with pytest.raises(MedsbenchError, match=r"the model changed since the run started \(version differ\)"):
        evaluate(Retrained(), None, out=run, resume=True, progress=False)


KILL_WHILE_SCORING = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import medsbench.pipeline
from test_runs import CountingBackend
from medsbench.pipeline import evaluate
def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
medsbench.pipeline.score_predictions = die
evaluate(CountingBackend(), "all", workspace={ws!r}, out={out!r}, progress=False)
"""


def test_kill_during_scoring_leaves_a_run_resume_completes_without_the_model(tmp_path):
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    ws = make_workspace(tmp_path / "ws")
    run = tmp_path / "run"
    code = KILL_WHILE_SCORING.format(tests=str(TESTS), ws=str(ws), out=str(run))
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                          timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert RunFolder(run).manifest().status == "scoring" and not (run / "results.json").exists()
    before = (run / "predictions.jsonl").read_bytes()
    stale = run / ".results.json.k3j2.tmp"
    stale.write_text("{half")  # what a kill inside atomic_write leaves
    res = evaluate(NoCalls(), None, out=run, resume=True, progress=False)
    assert res.rescored_only and not stale.exists()
    assert (run / "results.json").is_file() and RunFolder(run).manifest().status == "finished"
    assert (run / "predictions.jsonl").read_bytes() == before


def test_resume_reuses_answers_written_before_a_kill_even_without_the_cache(tmp_path):
    from medsbench.pipeline import evaluate

    ws, run, broken = _interrupted_run(tmp_path)
    whole = tmp_path / "whole"
    evaluate(CountingBackend(), "all", workspace=ws, out=whole, progress=False, cache=tmp_path / "other.sqlite")
    (ws / "cache.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (ws / f"cache.sqlite{suffix}").unlink(missing_ok=True)
    with open(run / "predictions.jsonl", "ab") as fh:  # a line torn by the kill
        fh.write(b'{"task_id": "task126", "id": "t5", "out')
    rest = CountingBackend()
    evaluate(rest, None, out=run, resume=True, progress=False)
    assert len(rest.prompts) == 14 - 4 and not set(rest.prompts) & set(broken.prompts)
    assert without_timing(rows_of(run)) == without_timing(rows_of(whole))


# -- one writer per run folder --------------------------------------------------------------

SLOW_RUN = """
import sys
sys.path.insert(0, {tests!r})
from test_runs import CountingBackend
from medsbench.pipeline import evaluate
evaluate(CountingBackend(chunk_size=1, sleep=0.4, log={log!r}), "all", workspace={ws!r}, out={out!r}, progress=False)
"""


def test_second_eval_on_the_same_run_folder_exits_1_naming_the_holder(tmp_path):
    ws = make_workspace(tmp_path / "ws", n_mcqa=6, n_ner=0)
    run = tmp_path / "run"
    log = tmp_path / "calls.log"
    log.write_text("")
    code = SLOW_RUN.format(tests=str(TESTS), log=str(log), ws=str(ws), out=str(run))
    first = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        deadline = time.time() + 60
        while not log.read_text() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second one started"
        second = cli("eval", "--model", "default", "--tasks", "task57", "-w", str(ws), "--out", str(run))
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0] == (
            f"error: {run}: run folder is in use by another medsbench process (pid {first.pid}); wait for it or stop it"
        )
        assert first.poll() is None  # the holder is untouched
    finally:
        assert first.wait(timeout=120) == 0
    rows = rows_of(run)
    assert len(rows) == 6 and all(r["error"] is None for r in rows)
    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"


# -- validate before spending compute -------------------------------------------------------

@pytest.mark.parametrize(
    "instances, meta, message",
    [
        ([{"id": "a", "output": "A"}], {"Definition": ["Answer."]}, ":0: input: must be a string, got NoneType"),
        ([{"id": "a", "input": "Q?", "output": "A"}, {"id": "b", "input": "Q2?"}], {"Definition": ["Answer."]},
         ":1: output: must be a non-empty string or list of strings"),
        ([{"id": "a", "input": "Q?", "output": "A"}], {}, ": Definition: missing required key"),
        ([{"id": "a", "input": "Q?", "output": "A"}], {"Definition": ["  "]}, ": Definition: empty definition"),
    ],
)
def test_bad_task_files_are_refused_before_the_model_loads(tmp_path, monkeypatch, instances, meta, message):
    import medsbench.models
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    path = ws / "tasks" / "task57_medqa_en.test.json"
    path.write_text(json.dumps({**meta, "Instances": instances}))

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(medsbench.models, "load_backend", no_load)
    with pytest.raises(MedsbenchError) as err:
        evaluate("default", "task57", workspace=ws, out=tmp_path / "r", progress=False)
    assert str(err.value).startswith(f"{path}{message}") and "\n" not in str(err.value)
    assert not (tmp_path / "r" / "predictions.jsonl").exists()


def test_real_task_files_pass_the_eval_validation():
    import tempfile

    from conftest import raw_dir

    from medsbench.tasks.workspace import validate_selected
    from medsbench.sources import convert

    with tempfile.TemporaryDirectory() as tmp:
        files = convert("medqa_usmle", raw_dir("medqa_usmle"), Path(tmp) / "tasks")
        validate_selected(files)  # no exception: the converters' output is evaluable


# -- unwritable places ----------------------------------------------------------------------

def test_unwritable_run_folder_is_one_line_before_the_model_loads(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    proc = cli("eval", "--model", "default", "--tasks", "task57", "-w", str(ws), "--out", "/proc/foo")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: /proc/foo: run folder is not writable: No such file or directory (ENOENT)"
    ]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = cli("eval", "--model", "default", "--tasks", "task57", "-w", str(ws), "--out", str(blocker / "run"))
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"error: {blocker / 'run'}: run folder is not writable: Not a directory (ENOTDIR)"
    ]
    proc = cli("eval", "--model", "default", "--tasks", "task57", "-w", str(ws), "--out", str(tmp_path / "r"),
               "--cache", "/sys/medsbench/cache.sqlite")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: /sys/medsbench: cache folder is not writable: ")
    assert "loading model" not in proc.stderr
    # A command refused for its input leaves no empty folders behind.
    proc = cli("eval", "--model", "default", "-w", str(tmp_path / "nothing"))
    assert proc.returncode == 1 and "no task files in" in proc.stderr and not (tmp_path / "nothing").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["score", "{pred}", "--out", "/proc/foo/results.json", "--bootstrap", "0"],
        ["data", "convert", "medqa_usmle", "--raw", "{raw}", "--out", "/proc/foo"],
    ],
)
def test_os_errors_are_one_line_at_the_cli_edge(tmp_path, args):
    from conftest import raw_dir

    pred = tmp_path / "p.csv"
    pred.write_text("task_id,input,GT,output\ntask57,q,A,A\n")
    full = [a.format(pred=pred, raw=raw_dir("medqa_usmle")) for a in args]
    proc = cli(*full)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: /proc/foo") and lines[0].endswith("(ENOENT)"), proc.stderr


# -- file modes -----------------------------------------------------------------------------

def test_run_files_get_normal_modes_under_the_umask(tmp_path):
    code = f"""
import os, sys
os.umask(0o022)
sys.path.insert(0, {str(TESTS)!r})
from test_runs import CountingBackend, make_workspace
from medsbench.pipeline import evaluate
ws = make_workspace(__import__("pathlib").Path({str(tmp_path / "ws")!r}))
evaluate(CountingBackend(), "all", workspace=ws, out={str(tmp_path / "run")!r}, progress=False)
os.umask(0o027)
from medsbench import fileio
fileio._UMASK = None  # read again (the value is cached per process)
fileio.write_json({str(tmp_path / "x.json")!r}, {{"a": 1}})
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)
    run = tmp_path / "run"
    for name in ("predictions.jsonl", "predictions.csv", "manifest.json", "results.json"):
        assert mode(run / name) == 0o644, name
    assert mode(tmp_path / "ws" / "tasks" / "task57_medqa_en.test.json") == 0o644
    assert mode(tmp_path / "x.json") == 0o640


def test_cli_resume_with_only_out_from_another_folder(tmp_path, tiny_model_dir):
    """A user's path: `eval -w W --out RUN` then, elsewhere, `eval --resume --out RUN` (a decoy
    ./medsbench-work/tasks there must not be used), with a real hf model."""
    from medsbench.records.folder import RunFolder

    ws = make_workspace(tmp_path / "W", n_mcqa=3, n_ner=3)
    run = tmp_path / "RUN"
    first = cli("eval", "--model", f"hf:{tiny_model_dir}", "-w", str(ws), "--out", str(run), "--limit", "2",
                "--max-new-tokens", "4", "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    whole = rows_of(run)
    assert len(whole) == 4
    # As a Ctrl-C after the first item leaves it: one row written, status interrupted.
    (run / "predictions.jsonl").write_text(json.dumps(whole[0]) + "\n")
    (run / "results.json").unlink()
    manifest = RunFolder(run).manifest()
    manifest.status = "interrupted"
    RunFolder(run).save_manifest(manifest)
    elsewhere = tmp_path / "elsewhere"
    make_workspace(elsewhere / "medsbench-work", n_mcqa=5, n_ner=5)
    resumed = cli("eval", "--resume", "--out", str(run), "--no-progress", cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    assert "already answered, 0 to generate" in resumed.stderr  # everything else came from the recorded cache
    assert without_timing(rows_of(run)) == without_timing(whole)
    assert RunFolder(run).manifest().status == "finished" and (run / "results.json").is_file()
    assert not (elsewhere / "medsbench-work" / "runs").exists() and not (elsewhere / "medsbench-work" / "cache.sqlite").exists()
    refused = cli("eval", "--resume", "--out", str(run), "--limit", "3", cwd=elsewhere)
    expected = (f"error: --resume takes its settings from {run / 'manifest.json'}: --limit 3 conflicts with the run's 2 "
                "(drop the flag, or start a new run with another --out)")
    assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [expected]


def test_resume_asks_again_for_a_spec_whose_credentials_were_redacted(tmp_path):
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    _, run, _ = _interrupted_run(tmp_path)
    manifest = RunFolder(run).manifest()
    from medsbench.models.spec import ModelSpec

    recorded = ModelSpec.parse("openai:gpt-4,base_url=http://gw.example/v1", strict=False)  # a key was dropped
    manifest.config = manifest.config.model_copy(update={"model": recorded, "model_complete": False})
    RunFolder(run).save_manifest(manifest)
    with pytest.raises(MedsbenchError, match=r"held credentials .* --resume --out .* --model SPEC"):
        evaluate(None, None, out=run, resume=True, progress=False)
