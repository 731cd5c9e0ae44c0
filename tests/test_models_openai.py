"""The openai backend against a real HTTP server on 127.0.0.1 that injects 429s, 500s, slow and malformed responses."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from medsbench.errors import MedsbenchError
from medsbench.models import load_backend
from medsbench.models.base import Request

KEY = "sk-test-3f9a1c55-never-logged"


class FlakyServer:
    """Behaviour per request, from a marker in the user message: [429xN] [500xN] [slowxN] [badxN] [dead] [400]."""

    def __init__(self):
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.auth: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                return

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.auth.add(self.headers.get("Authorization", ""))
                content = body["messages"][-1]["content"]
                with server.lock:
                    n = server.attempts.get(content, 0) + 1
                    server.attempts[content] = n
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(content, n, body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _fault(self, content: str, kind: str, n: int) -> bool:
                m = re.search(rf"\[{kind}x(\d+)\]", content)
                return bool(m) and n <= int(m.group(1))

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _answer(self, content: str, n: int, body: dict):
                time.sleep(0.02)  # let requests overlap so concurrency is observable
                if self._fault(content, "429", n):
                    return self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "0"})
                if self._fault(content, "500", n) or "[dead]" in content:
                    return self._send(500, b'{"error": {"message": "boom"}}')
                if "[400]" in content:
                    return self._send(400, b'{"error": {"message": "bad request"}}')
                if self._fault(content, "slow", n):
                    time.sleep(1.5)
                if self._fault(content, "bad", n):
                    return self._send(200, b'{"choices": [{"message": ')
                if self._fault(content, "empty", n):
                    return self._send(200, b'{"id": "x", "object": "chat.completion", "choices": []}')
                answer = {
                    "id": "cmpl-1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "echo " + content[-12:]}}
                    ],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
                }
                self._send(200, json.dumps(answer).encode())

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # clients that timed out hang up: expected here
                return

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = FlakyServer()
    yield s
    s.close()


def _backend(server, monkeypatch, **extra):
    monkeypatch.setenv("MEDSBENCH_TEST_KEY", KEY)
    opts = ",".join(f"{k}={v}" for k, v in {"base_url": server.url, "concurrency": 3, "max_attempts": 4,
                                              "timeout": 0.5, "backoff_base": 0.01, **extra}.items())
    return load_backend(f"openai:test-model,{opts}", api_key_env="MEDSBENCH_TEST_KEY")


def test_retries_then_answers_or_fails_explicitly(server, monkeypatch):
    backend = _backend(server, monkeypatch)
    contents = ["plain one", "[429x2] rate", "[500x1] flaky", "[slowx1] slow", "[badx2] malformed", "[emptyx1] no choices",
                "[dead] always down", "[400] rejected", "plain two"]
    reqs = [Request(str(i), messages=[{"role": "user", "content": c}], max_new_tokens=8) for i, c in enumerate(contents)]
    out = {r.id: r for r in backend.generate(reqs)}
    assert set(out) == {str(i) for i in range(len(contents))}
    for i, c in enumerate(contents):
        r = out[str(i)]
        if c.startswith("[dead]"):
            assert r.text == "" and r.error.startswith("failed after 4 attempts: HTTP 500")
            assert server.attempts[c] == 4
        elif c.startswith("[400]"):
            assert r.text == "" and "HTTP 400" in r.error and server.attempts[c] == 1  # not retryable
        else:
            assert r.error is None and r.text == "echo " + c[-12:], (c, r)
            assert r.prompt_tokens == 11 and r.output_tokens == 3
            assert r.finish_reason == "stop"  # the server's finish_reason passes through
    assert server.attempts["[429x2] rate"] == 3 and server.attempts["[badx2] malformed"] == 3
    assert server.attempts["[slowx1] slow"] == 2  # timed out once, retried
    assert server.auth == {f"Bearer {KEY}"}
    # Bounded concurrency (3). The server may also still be sleeping on the one slow request the
    # client abandoned at its 0.5 s timeout, so it can see one more connection than the client holds.
    assert server.max_in_flight <= 3 + 1
    assert KEY not in repr(backend) and KEY not in json.dumps(backend.identity())


def test_retry_after_is_honoured_and_backoff_is_jittered(server, monkeypatch):
    from medsbench.models.openai_backend import _retry_after

    class Resp:
        def __init__(self, headers):
            self.headers = headers

    class Exc(Exception):
        def __init__(self, headers):
            self.response = Resp(headers)

    assert _retry_after(Exc({"retry-after": "7"})) == 7.0
    assert _retry_after(Exc({"retry-after-ms": "250"})) == 0.25
    assert _retry_after(Exc({})) is None
    backend = _backend(server, monkeypatch, backoff_cap=5)
    assert backend._delay(3, Exc({"retry-after": "2"})) == 2.0
    assert backend._delay(3, Exc({"retry-after": "999"})) == 5.0  # capped
    delays = {backend._delay(4, Exc({})) for _ in range(20)}
    assert len(delays) > 1 and all(0 <= d <= min(5, 0.01 * 16) for d in delays)


def test_missing_key_is_one_line(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MedsbenchError, match=r"needs an API key in \$OPENAI_API_KEY"):
        load_backend("openai:gpt-4o")
    with pytest.raises(MedsbenchError, match=r"\$MY_KEY"):
        load_backend("openai:gpt-4o", api_key_env="MY_KEY")


def test_eval_run_over_a_flaky_api_completes(server, monkeypatch, tmp_path, capsys):
    """A whole run: every item answered or explicitly failed; the key appears nowhere on disk or in logs."""
    from medsbench.pipeline import evaluate
    from medsbench.tasks.format import Instance, write_task

    tasks = tmp_path / "ws" / "tasks"
    inputs = ["q1", "[429x1] q2", "[500x2] q3", "[badx1] q4", "[dead] q5", "q6"]
    write_task(
        tasks / "task57_medqa_en.test.json",
        {"Definition": ["Answer."], "Categories": ["Question Answering"]},
        [Instance(str(i), x, ["A"]) for i, x in enumerate(inputs)],
    )
    backend = _backend(server, monkeypatch)
    result = evaluate(backend, "task57", workspace=tmp_path / "ws", out=tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [str(i) for i in range(6)]
    failed = [r for r in rows if r["error"]]
    assert [r["id"] for r in failed] == ["4"] and failed[0]["output"] is None
    assert all(r["output"].startswith("echo ") for r in rows if not r["error"])
    assert result.n_failed == 1 and result.n_generated == 5
    everything = "".join(p.read_text(errors="replace") for p in (tmp_path / "run").iterdir() if p.is_file())
    assert KEY not in everything and KEY not in capsys.readouterr().err
    # Re-running retries only the failed item (errors are never cached).
    before = dict(server.attempts)
    evaluate(backend, "task57", workspace=tmp_path / "ws", out=tmp_path / "run", progress=False)
    changed = {c for c, n in server.attempts.items() if n != before.get(c)}
    assert changed == {"Input:\n[dead] q5\nOutput:\n"}


# --------------------------------------------------------------------------- circuit breaker

CANARY = "sk-canary-in-url-55aa"


def _refused_url() -> tuple[str, int]:
    """A URL on 127.0.0.1 whose port refuses connections (bound once, then closed), with credentials in it."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://user:{CANARY}@127.0.0.1:{port}/v1?api_key={CANARY}", port


def _requests(n: int, prefix: str = "q") -> list[Request]:
    return [Request(str(i), messages=[{"role": "user", "content": f"{prefix} {i}"}], max_new_tokens=4) for i in range(n)]


def test_refused_server_trips_the_breaker_and_sends_nothing_more(monkeypatch, caplog):
    url, port = _refused_url()
    monkeypatch.setenv("MEDSBENCH_TEST_KEY", KEY)
    # Default retry settings (6 attempts, backoff from 1 s): without the breaker this run would take minutes.
    backend = load_backend(f"openai:test-model,base_url={url}", api_key_env="MEDSBENCH_TEST_KEY")
    out = backend.generate(_requests(40))
    want = (
        f"server unreachable at http://127.0.0.1:{port}/v1: "
        "5 consecutive connection errors; no further requests sent"
    )
    assert [r.id for r in out] == [str(i) for i in range(40)]
    assert all(r.text == "" and r.error == want for r in out)
    # At most the requests already in flight when the breaker tripped were sent (concurrency 8).
    assert 5 <= backend.calls <= 5 + backend.concurrency - 1
    sent = backend.calls
    again = backend.generate(_requests(10, "later"))
    assert backend.calls == sent and all(r.error == want for r in again)  # nothing sent once tripped
    logged = caplog.text + repr(backend) + json.dumps(backend.identity())
    assert CANARY not in logged and KEY not in logged and "server unreachable" in caplog.text


def test_breaker_counts_consecutive_connection_errors_only(monkeypatch):
    url, _ = _refused_url()
    monkeypatch.setenv("MEDSBENCH_TEST_KEY", KEY)
    backend = load_backend(
        f"openai:test-model,base_url={url},concurrency=1,max_connection_errors=3,backoff_base=0.01",
        api_key_env="MEDSBENCH_TEST_KEY",
    )
    out = backend.generate(_requests(6))
    assert backend.calls == 3  # item 0's first three attempts; items 1-5 never sent
    assert all("3 consecutive connection errors" in r.error for r in out)


def test_http_errors_keep_their_retries_and_never_trip_the_breaker(server, monkeypatch):
    backend = _backend(server, monkeypatch, max_connection_errors=1)
    contents = ["[dead] down", "[429x2] busy", "[500x1] flaky", "fine"]
    out = backend.generate([Request(str(i), messages=[{"role": "user", "content": c}], max_new_tokens=4)
                            for i, c in enumerate(contents)])
    assert backend.unreachable is None
    assert out[0].error.startswith("failed after 4 attempts: HTTP 500") and server.attempts["[dead] down"] == 4
    assert [r.error for r in out[1:]] == [None, None, None]


def test_server_going_down_mid_run_fails_the_rest_at_once(server, monkeypatch):
    backend = _backend(server, monkeypatch, backoff_base=1.0)
    first = backend.generate(_requests(6, "before"))
    assert all(r.error is None and r.text.startswith("echo ") for r in first)
    server.close()  # the port now refuses connections
    calls = backend.calls
    rest = backend.generate(_requests(30, "after"))
    assert all(r.text == "" and r.error.startswith(f"server unreachable at {server.url}: 5 consecutive") for r in rest)
    assert backend.calls - calls <= 5 + backend.concurrency - 1
    assert not any(c.startswith("after") for c in server.attempts)


def test_eval_run_against_a_refused_server_fails_every_item(monkeypatch, tmp_path):
    from medsbench.pipeline import evaluate
    from medsbench.tasks.format import Instance, write_task

    url, _ = _refused_url()
    monkeypatch.setenv("MEDSBENCH_TEST_KEY", KEY)
    write_task(
        tmp_path / "ws" / "tasks" / "task57_medqa_en.test.json",
        {"Definition": ["Answer."], "Categories": ["Question Answering"]},
        [Instance(str(i), f"question {i}", ["A"]) for i in range(25)],
    )
    backend = load_backend(f"openai:test-model,base_url={url}", api_key_env="MEDSBENCH_TEST_KEY")
    try:
        evaluate(backend, "task57", workspace=tmp_path / "ws", out=tmp_path / "run", progress=False)
    except MedsbenchError as exc:  # a run with failed items may refuse to finish quietly
        assert CANARY not in str(exc)
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 25
    assert all(r["error"] and "server unreachable" in r["error"] and not r["output"] for r in rows)
    everything = "".join(p.read_text(errors="replace") for p in (tmp_path / "run").iterdir() if p.is_file())
    assert CANARY not in everything and KEY not in everything
