"""Progress a person can read (overall count, measured rate, ETA, heartbeat in logs), the summary
table at 80 columns, and the protocol recorded in the manifest."""

from __future__ import annotations

import io
import re

import pytest
from test_runs import CountingBackend, make_workspace

from medsbench.errors import MedsbenchError


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_heartbeat_every_interval_with_rate_eta_and_task():
    from medsbench.runs.progress import RunProgress

    clock, lines = Clock(), []
    p = RunProgress(100, 80, clock=clock, interval=30, emit=lines.append)
    p.start_task("task57 medqa_en")
    p.advance(20)  # cache hits: instant, not part of the rate
    assert lines == [] and p.rate is None and p.eta is None
    p.generating()
    for _ in range(10):
        clock.t += 2.0  # one generated item every 2 s
        p.advance(generated=True)
    assert lines == []  # 20 s: no heartbeat yet
    clock.t += 10.0
    assert p.maybe_beat()
    # 10 items in 30 s = 0.33 items/s; 70 left -> 210 s
    assert lines == ["eval: 30/100 items (30%), 0.33 items/s, ETA 3m30s, now task57 medqa_en"]
    assert not p.maybe_beat()  # not again within the interval
    clock.t += 29.0
    p.advance(generated=True, failed=True)
    assert len(lines) == 1
    clock.t += 1.0
    assert p.maybe_beat() and lines[-1].startswith("eval: 31/100 items (31%), 0.18 items/s, ETA ") and "1 failed" in lines[-1]


def test_heartbeat_thread_speaks_during_a_long_batch():
    import threading

    from medsbench.runs.progress import Heartbeat, RunProgress

    clock, lines = Clock(), []
    beat = threading.Event()

    def emit(line):
        lines.append(line)
        beat.set()

    p = RunProgress(10, 10, clock=clock, interval=30, emit=emit)
    p.start_task("task126 bc5cdr_chem")
    with Heartbeat(p, tick=0.01):
        clock.t += 31  # nothing finished, but 31 s passed: the log still hears from the run
        assert beat.wait(5)
    assert lines[0] == "eval: 0/10 items (0%), rate ?, ETA ?, now task126 bc5cdr_chem"


def test_log_mode_run_prints_start_task_and_end_lines(tmp_path):
    from rich.console import Console

    from medsbench.commands.render import ConsoleReporter
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws")
    buf = io.StringIO()
    console = Console(file=buf, width=60, force_terminal=False)
    evaluate(CountingBackend(), "all", workspace=ws, out=tmp_path / "r", reporter=ConsoleReporter(console), progress="log",
             heartbeat=0)
    out = buf.getvalue().splitlines()
    assert "eval: 14 items in 2 task(s), 0 already answered, 14 to generate" in out
    assert any(line.startswith("task57: 8 items done in ") for line in out)
    skipped = re.match(r"skipping (\d+) selected task\(s\) without a test file in .*:$", out[0])
    assert skipped  # then one line per task: id, dataset, why and what to do
    reasons = out[1 : 1 + int(skipped.group(1))]
    assert all(re.match(r"  task\d+ +\S.*: (credentialed|public|raw data)", line) for line in reasons), reasons
    assert out[1 + len(reasons)] == "planning prompts of 2 task(s) ..."
    assert out[-2:] == ["eval: 14/14 items done (0 failed)", "scoring 14 predictions ..."]
    beats = [line for line in out if line.startswith("eval: ") and " items (" in line]
    assert beats and all(len(line) > 60 or "now task" in line for line in beats)  # whole lines, never wrapped
    # A terminal gets one bar for the whole run instead of lines.
    buf2 = io.StringIO()
    tty = Console(file=buf2, width=100, force_terminal=True)
    evaluate(CountingBackend(), "all", workspace=ws, out=tmp_path / "r2", reporter=ConsoleReporter(tty), progress="auto",
             cache=tmp_path / "c2.sqlite")
    assert "14/14" in buf2.getvalue() and "eval: 14 items in" not in buf2.getvalue()


def test_summary_table_keeps_task_ids_whole_at_80_columns(tmp_path):
    from rich.console import Console

    from medsbench.pipeline import evaluate
    from medsbench.commands.render import summary_table

    ws = make_workspace(tmp_path / "ws")
    res = evaluate(CountingBackend(), "all", workspace=ws, out=tmp_path / "r", progress=False)

    def render(result) -> str:
        console = Console(width=80, record=True, file=io.StringIO())
        console.print(summary_table(result))
        text = console.export_text()
        assert all(len(line) <= 80 for line in text.splitlines()) and "…" not in text
        return text

    text = render(res)
    header = next(line for line in text.splitlines() if line.lstrip().startswith("task "))
    assert header.split() == ["task", "n", "failed", "coverage", "metric", "strict", "ref", "trunc", "it/s", "tokens"]
    body = {line.split()[0]: line.split() for line in text.splitlines() if line.strip().startswith("task")}
    assert body["task57"][1:6] == ["8", "0", "100%", "accuracy", "50.0"]  # strict: odd items answer "A"
    assert body["task126"][1:4] == ["6", "0", "100%"]
    # A long id stays whole; the other cells fold instead of being cut.
    res.per_task["task126_a_very_long_custom_task_id_from_a_user"] = dict(res.per_task["task126"])
    text = render(res)
    assert "task126_a_very_long_custom_task_id_from_a_user" in text


def test_protocol_is_recorded_with_its_deviations(tmp_path):
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder
    from medsbench.prompts.protocols import get_protocol, run_deviations

    ws = make_workspace(tmp_path / "ws")
    evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "r", progress=False, limit=1)
    manifest = RunFolder(tmp_path / "r").manifest()
    assert manifest.protocol == "medsbench" and manifest.config.protocol == "medsbench"
    assert manifest.deviations == list(get_protocol("medsbench").deviations)
    with pytest.raises(MedsbenchError, match="unknown protocol 'bogus'"):
        evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "r2", progress=False, protocol="bogus")
    evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "r3", progress=False, protocol="official", limit=1)
    official = RunFolder(tmp_path / "r3").manifest()
    assert official.protocol == "official" and official.config.protocol == "official"
    own = list(get_protocol("official").deviations)
    assert own and official.deviations[:len(own)] == own
    # Beside the protocol's own: what this run's settings change (no explicit token cap: the 200 default).
    assert official.deviations[len(own):] == run_deviations("official", CountingBackend().identity(), None)
    assert any("200 new tokens" in d for d in official.deviations[len(own):])
    assert official.deviations != manifest.deviations


def test_protocol_stop_strings_reach_the_backend_and_the_cache_key(tmp_path):
    from medsbench.prompts.protocols import get_protocol
    from medsbench.pipeline import evaluate
    from medsbench.records.folder import RunFolder

    class Recording(CountingBackend):
        def __init__(self):
            super().__init__()
            self.stops = set()

        def generate(self, requests):
            self.stops.update(r.stop for r in requests)
            return super().generate(requests)

    ws = make_workspace(tmp_path / "ws")
    ours = Recording()
    evaluate(ours, "task57", workspace=ws, out=tmp_path / "a", progress=False, limit=2)
    stop = get_protocol("medsbench").stop
    assert stop and ours.stops == {tuple(stop)}
    assert RunFolder(tmp_path / "a").manifest().generation["stop"] == {"task57": list(stop)}
    official = Recording()
    evaluate(official, "task57", workspace=ws, out=tmp_path / "b", progress=False, limit=2, protocol="official")
    assert official.stops == {tuple(get_protocol("official").stop)}
    # The same prompt with and without a stop string are different cache entries; no stop keeps the old key.
    from medsbench.runs.cache import cache_key
    from medsbench.runs.run import generation_config

    ident = ours.identity()
    assert cache_key(ident, "p", generation_config(200, stop)) != cache_key(ident, "p", generation_config(200))
    assert generation_config(200) == {"max_new_tokens": 200, "greedy": True}
