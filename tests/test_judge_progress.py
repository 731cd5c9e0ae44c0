"""The judge reports progress per request with a rate and an ETA (medsbench.runs.progress.RunProgress),
and speaks while a slow request is out instead of staying silent until the 50th reply."""

from __future__ import annotations

import re

import pytest

from test_judge import KEY_ENV, JudgeServer, build_run

LINE = re.compile(r"^judge overlap: (\d+)/(\d+) requests \((\d+)%\), (rate \?|[\d.]+ requests/s), ETA (\S+)")


@pytest.fixture()
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-judge-test-never-logged")


def progress_lines(said: list[str]) -> list[tuple[int, int, str]]:
    out = []
    for s in said:
        m = LINE.match(s)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), m.group(5)))
    return out


def test_first_and_last_request_lines_with_eta(tmp_path, key):
    from medsbench.judge import judge_run

    run = build_run(tmp_path, n_summ=5, n_expl=0)
    server = JudgeServer()
    try:
        said: list[str] = []
        judge_run(run, [server.spec("overlap")], probes=False, bootstrap=0, progress=said.append)
    finally:
        server.close()
    lines = progress_lines(said)
    assert lines, said
    assert lines[0][:2] == (1, 5) and lines[-1] == (5, 5, "0s")  # after the first reply, and the end
    assert [d for d, _, _ in lines] == sorted(d for d, _, _ in lines)


def test_slow_requests_are_not_silent(tmp_path, key, monkeypatch):
    """Two requests of ~2.5 s each, one at a time: progress lines come while the first is out, then per request."""
    import medsbench.judge.run as judge_module
    from medsbench.judge import judge_run

    monkeypatch.setattr(judge_module, "PROGRESS_SECONDS", 0.0)  # every heartbeat tick (1 s) may speak
    run = build_run(tmp_path, n_summ=2, n_expl=0)
    server = JudgeServer(delay=2.5)
    try:
        said: list[str] = []
        spec = server.spec("overlap").replace("concurrency=4", "concurrency=1")
        judge_run(run, [spec], probes=False, bootstrap=0, progress=said.append)
    finally:
        server.close()
    lines = progress_lines(said)
    assert any(d == 0 and eta == "?" for d, _, eta in lines), said  # spoken before any reply came back
    assert (1, 2) in [(d, t) for d, t, _ in lines] and lines[-1] == (2, 2, "0s")
    assert all(eta != "?" for d, _, eta in lines if d >= 1)  # a measured rate gives an ETA
