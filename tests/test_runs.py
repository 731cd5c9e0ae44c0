"""Evaluation runs: run folder contents, demo determinism, truncation, cache, resume after crashes and Ctrl-C."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medsbench.errors import MedsbenchError
from medsbench.models.base import BaseBackend, Rendered, Request, Response
from medsbench.prompts import Prompt
from medsbench.tasks.format import Instance, write_task

TESTS = Path(__file__).resolve().parent


class CountingBackend(BaseBackend):
    """Deterministic fake model: the answer is a hash of the prompt; every request is counted (and logged)."""

    name = "fake"

    def __init__(self, *, chunk_size: int = 2, context: int | None = None, sleep: float = 0.0,
                 log: str | None = None, interrupt_after: int | None = None):
        self.chunk_size = chunk_size
        self.context = context
        self.sleep = sleep
        self.log = log
        self.interrupt_after = interrupt_after
        self.prompts: list[str] = []

    def identity(self):
        return {"backend": "fake", "version": 1}

    def render(self, prompt: Prompt) -> Rendered:
        text = prompt.plain()
        return Rendered(text, prompt=text)

    def count_tokens(self, prompt: Prompt) -> int:
        return len(prompt.plain().split())

    @property
    def context_length(self):
        return self.context

    def generate(self, requests: list[Request]) -> list[Response]:
        out = []
        for r in requests:
            if self.interrupt_after is not None and len(self.prompts) >= self.interrupt_after:
                raise KeyboardInterrupt
            self.prompts.append(r.prompt)
            if self.log:
                with open(self.log, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(r.prompt) + "\n")
            time.sleep(self.sleep)
            answer = "A" if "[A]" in r.prompt else "ans-" + hashlib.sha256(r.prompt.encode()).hexdigest()[:8]
            out.append(Response(r.id, answer, len(r.prompt.split()), 1, 0.001, None))
        return out


def make_workspace(root: Path, n_mcqa: int = 8, n_ner: int = 6) -> Path:
    tasks = root / "tasks"
    write_task(
        tasks / "task57_medqa_en.test.json",
        {"Definition": ["Given a question and a list of options, select the correct answer from the options directly."],
         "Categories": ["Question Answering"]},
        [Instance(f"q{i}", f"Question {i}? [A]\nA. yes\nB. no" if i % 2 else f"Question {i}?\nA. yes\nB. no", ["A"])
         for i in range(n_mcqa)],
    )
    ner_meta = {"Definition": ["Given a sentence, recognize the chemicals."], "Categories": ["Named Entity Recognition"]}
    write_task(tasks / "task126_bc5cdr_chem.test.json", ner_meta,
               [Instance(f"t{i}", f"Sentence {i} with aspirin.", ["aspirin"]) for i in range(n_ner)])
    write_task(tasks / "task126_bc5cdr_chem.train.json", ner_meta,
               [Instance(f"tr{i}", f"Train sentence {i} with cisplatin {'words ' * i}", ["cisplatin"]) for i in range(10)])
    return root


def rows_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_run_folder_contents(tmp_path):
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    ws = make_workspace(tmp_path / "ws")
    res = evaluate(CountingBackend(), "task57,ner", workspace=ws, out=tmp_path / "run", progress=False)
    run = tmp_path / "run"
    rows = rows_of(run)
    assert [r["task_id"] for r in rows] == ["task57"] * 8 + ["task126"] * 6
    need = {"task_id", "id", "category", "language", "input", "output", "reference", "references", "prompt",
            "demo_ids", "prompt_tokens", "output_tokens", "seconds", "truncated", "error"}
    assert all(need <= set(r) for r in rows)
    mcqa, ner = rows[0], rows[8]
    assert mcqa["demo_ids"] == [] and len(ner["demo_ids"]) == 3 and all(d.startswith("tr") for d in ner["demo_ids"])
    assert ner["prompt"].endswith("\nInput:\nSentence 0 with aspirin.\nOutput:\n")
    assert mcqa["category"] == "mcqa" and ner["category"] == "ner" and mcqa["language"] == "en"
    with open(run / "predictions.csv", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["task_id", "input", "GT", "output"] and len(table) == 15
    assert table[2] == ["task57", rows[1]["prompt"], "A", "A"]
    manifest = RunFolder(run).manifest()
    assert manifest.status == "finished" and manifest.counts["generated"] == 14
    assert set(manifest.tasks) == {"task57", "task126"}
    assert len(manifest.tasks["task126"].files["train"].sha256) == 64
    assert manifest.backend == {"backend": "fake", "version": 1} and manifest.prompt_template_sha256
    results = json.loads((run / "results.json").read_text())
    assert results["tasks"]["task57"]["n"] == 8
    assert results["tasks"]["task57"]["metrics"]["accuracy"] == pytest.approx(50.0)  # odd items answer "A"
    assert res.n_items == 14


def test_demos_do_not_depend_on_batch_size_or_limit(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    evaluate(CountingBackend(chunk_size=1), "task126", workspace=ws, out=tmp_path / "a", progress=False, cache=tmp_path / "c1.sqlite")
    evaluate(CountingBackend(chunk_size=5), "task126", workspace=ws, out=tmp_path / "b", progress=False, limit=3,
             cache=tmp_path / "c2.sqlite")
    a, b = rows_of(tmp_path / "a"), rows_of(tmp_path / "b")
    assert without_timing(a[:3]) == without_timing(b)
    assert len({tuple(r["demo_ids"]) for r in a}) > 1
    # Another seed: other demos.
    evaluate(CountingBackend(), "task126", workspace=ws, out=tmp_path / "c", progress=False, seed=7, cache=tmp_path / "c3.sqlite")
    assert [r["demo_ids"] for r in rows_of(tmp_path / "c")] != [r["demo_ids"] for r in a]


def test_demos_come_from_test_split_without_the_item_when_no_train(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    (ws / "tasks" / "task126_bc5cdr_chem.train.json").unlink()
    evaluate(CountingBackend(), "task126", workspace=ws, out=tmp_path / "r", progress=False)
    for r in rows_of(tmp_path / "r"):
        assert len(r["demo_ids"]) == 3 and r["id"] not in r["demo_ids"]
        assert all(d.startswith("t") for d in r["demo_ids"])


def test_truncation_is_counted_and_keeps_the_query(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    res = evaluate(CountingBackend(context=60), "task126", workspace=ws, out=tmp_path / "r", progress=False,
                   max_new_tokens=20)
    rows = rows_of(tmp_path / "r")
    assert res.n_truncated == sum(r["truncated"] for r in rows) > 0
    for r in rows:
        assert r["prompt"].endswith(f"Input:\n{r['input']}\nOutput:\n")
        assert len(r["prompt"].split()) <= 40
        if r["truncated"]:
            assert len(r["demo_ids"]) < 3


def test_rerun_uses_the_cache_with_zero_calls(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    first = CountingBackend()
    evaluate(first, "all", workspace=ws, out=tmp_path / "r", progress=False)
    before = (tmp_path / "r" / "predictions.jsonl").read_bytes()
    again = CountingBackend()
    res = evaluate(again, "all", workspace=ws, out=tmp_path / "r", progress=False)
    assert again.prompts == [] and res.n_cached == 14 and len(first.prompts) == 14
    assert (tmp_path / "r" / "predictions.jsonl").read_bytes() == before


def test_ctrl_c_stops_cleanly_and_resume_finishes_without_repeats(tmp_path, caplog):
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    ws = make_workspace(tmp_path / "ws")
    evaluate(CountingBackend(), "all", workspace=ws, out=tmp_path / "whole", progress=False, cache=tmp_path / "other.sqlite")
    broken = CountingBackend(chunk_size=1, interrupt_after=5)
    with pytest.raises(KeyboardInterrupt):
        evaluate(broken, "all", workspace=ws, out=tmp_path / "r", progress=False, limit=None)
    assert "medsbench eval --resume --out" in caplog.text
    assert RunFolder(tmp_path / "r").manifest().status == "interrupted" and len(rows_of(tmp_path / "r")) == 5
    rest = CountingBackend()
    evaluate(rest, None, workspace=ws, out=tmp_path / "r", progress=False, resume=True)
    assert not set(rest.prompts) & set(broken.prompts) and len(rest.prompts) == 14 - 5
    assert without_timing(rows_of(tmp_path / "r")) == without_timing(rows_of(tmp_path / "whole"))


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_runs import CountingBackend
from medsbench.pipeline import evaluate
evaluate(CountingBackend(chunk_size=1, sleep=0.03, log={log!r}), "all", workspace={ws!r}, out={out!r}, progress=False)
"""


def _cached_keys(db: Path) -> set[str]:
    if not db.exists():
        return set()
    with sqlite3.connect(db) as con:
        return {k for (k,) in con.execute("SELECT key FROM results")}


def test_sigkill_at_any_moment_resumes_to_identical_predictions(tmp_path):
    """Kill a real run with SIGKILL repeatedly; each restart never re-sends a finished item; the end result matches."""
    from medsbench.prompts.protocols import get_protocol
    from medsbench.pipeline import evaluate
    from medsbench.runs.cache import cache_key
    from medsbench.runs.run import generation_config

    ws = make_workspace(tmp_path / "ws", n_mcqa=12, n_ner=8)
    evaluate(CountingBackend(), "all", workspace=ws, out=tmp_path / "whole", progress=False, cache=tmp_path / "other.sqlite")
    db = ws / "cache.sqlite"
    identity = CountingBackend().identity()
    log = tmp_path / "calls.log"
    kills = 0
    computed: set[str] = set()
    for delay in (0.4, 0.25, 0.55, 0.3, 0.45, 0.35):
        before = _cached_keys(db)
        log.write_text("")
        code = SCRIPT.format(tests=str(TESTS), log=str(log), ws=str(ws), out=str(tmp_path / "r"))
        proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        # Wait until the child is generating (or done), then kill it hard.
        deadline = time.time() + 60
        while not log.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        called = [json.loads(line) for line in log.read_text().splitlines()]
        for prompt in called:
            key = cache_key(identity, prompt, generation_config(_max_new(prompt), get_protocol("medsbench").stop))
            assert key not in before, "a finished item was sent to the model again"
            computed.add(key)
        if len(_cached_keys(db)) == 20:
            break
    assert kills >= 2
    before = _cached_keys(db)
    assert computed and computed <= before  # the keys above are the runner's keys (the check is not vacuous)
    final = CountingBackend()
    evaluate(final, "all", workspace=ws, out=tmp_path / "r", progress=False)
    assert len(final.prompts) == 20 - len(before)  # only unfinished items are generated
    assert len(_cached_keys(db)) == 20
    assert without_timing(rows_of(tmp_path / "r")) == without_timing(rows_of(tmp_path / "whole"))


def _max_new(prompt: str) -> int:
    from medsbench.tasks.catalog import catalog

    return catalog()["task57" if "select the correct answer" in prompt else "task126"].max_new_tokens


def test_bad_inputs_are_one_clear_line(tmp_path, monkeypatch):
    from medsbench.pipeline import evaluate

    empty = tmp_path / "empty"
    with pytest.raises(MedsbenchError, match=r"no task files in .*medsbench data convert --all --raw ../shared/data/raw"):
        evaluate(CountingBackend(), "task57", workspace=empty, progress=False)
    ws = make_workspace(tmp_path / "ws")
    with pytest.raises(MedsbenchError, match="unknown task or category 'task9999'"):
        evaluate(CountingBackend(), "task9999", workspace=ws, progress=False)
    with pytest.raises(MedsbenchError, match="task58 .* has no test file"):
        evaluate(CountingBackend(), "task58", workspace=ws, progress=False)
    with pytest.raises(MedsbenchError, match="nothing to resume"):
        evaluate(CountingBackend(), None, workspace=ws, out=tmp_path / "nope", resume=True, progress=False)
    with pytest.raises(MedsbenchError, match="model folder not found"):
        evaluate("hf:/no/such/path", "task57", workspace=ws, progress=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MedsbenchError, match="API key"):
        evaluate("openai:gpt-4o", "task57", workspace=ws, progress=False)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tasks", "task9999"], "error: unknown task or category 'task9999'"),
        (["--model", "hf:/no/such/path"], "error: /no/such/path: model folder not found"),
        (["--model", "openai:gpt-4o"], "error: openai backend needs an API key in $OPENAI_API_KEY"),
        (["--model", "tpu:x"], "error: unknown model spec 'tpu:x'"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    ws = make_workspace(tmp_path / "ws")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "medsbench.cli", "eval", "-w", str(ws), *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr


def test_cli_empty_workspace_names_the_build_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "medsbench.cli", "eval", "-w", str(tmp_path / "nothing")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert "medsbench data convert --all --raw ../shared/data/raw --out" in proc.stderr and "--build-from" in proc.stderr


def test_definitions_file_gives_the_papers_wording(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    defs = tmp_path / "RewriteDefinitions.json"
    defs.write_text(json.dumps({"task57": {"original_def": ["The paper's own words."], "auto_rewrite_def": ["x"]}}))
    evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "r", progress=False, definitions=defs, limit=1)
    assert rows_of(tmp_path / "r")[0]["prompt"].startswith("The paper's own words.\nInput:\n")


def test_query_longer_than_the_context_fails_explicitly_without_a_call(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    write_task(ws / "tasks" / "task57_medqa_en.test.json", {"Definition": ["Answer."]},
               [Instance("short", "Q?", ["A"]), Instance("long", "word " * 80, ["A"]), Instance("mid", "word " * 25, ["A"])])
    backend = CountingBackend(context=40)
    evaluate(backend, "task57", workspace=ws, out=tmp_path / "r", progress=False, max_new_tokens=20)
    rows = {r["id"]: r for r in rows_of(tmp_path / "r")}
    assert "does not fit the model context of 40" in rows["long"]["error"] and rows["long"]["output"] is None
    assert rows["short"]["error"] is None and rows["mid"]["error"] is None and rows["mid"]["truncated"]
    assert len(backend.prompts) == 2 and all("word " * 80 not in p for p in backend.prompts)


def test_one_request_stream_crosses_task_boundaries(tmp_path):
    """A run hands the backend every item of every task in one request stream (so a backend can batch
    across tasks); cached and journalled items are not in it."""
    from medsbench.pipeline import evaluate

    class StreamBackend(CountingBackend):
        def __init__(self):
            super().__init__(chunk_size=64)
            self.streams: list[list[str]] = []

        def iter_generate(self, requests):
            self.streams.append([r.prompt for r in requests])
            yield from super().iter_generate(requests)

    ws = make_workspace(tmp_path / "ws")
    backend = StreamBackend()
    evaluate(backend, "task57,task126", workspace=ws, out=tmp_path / "r", progress=False, cache=tmp_path / "c.sqlite")
    assert len(backend.streams) == 1
    stream = backend.streams[0]
    assert any("aspirin" in p for p in stream) and any("Question" in p for p in stream)  # both tasks in it
    again = StreamBackend()
    evaluate(again, "task57,task126", workspace=ws, out=tmp_path / "r2", progress=False, cache=tmp_path / "c.sqlite")
    assert again.streams in ([], [[]])  # everything from the cache: nothing asked
