"""The openai backend against real HTTP servers on 127.0.0.1: one that injects 429s, 500s, slow, malformed and
realistic error responses, one that refuses connections and one that accepts and never answers."""

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


LONG_CONTEXT = (
    "This model's maximum context length is 2048 tokens. However, your prompt contains 2310 input tokens, "
    "which exceeds this limit even without any output tokens. Please reduce the length of the input prompt."
)
#: Error bodies as real servers send them: OpenAI's API, vLLM's OpenAI-compatible server (its
#: ErrorResponse: numeric code, type BadRequestError), a gateway's HTML page, and a message that
#: echoes a credential and runs long.
ERROR_BODIES = {
    "[openai-ctx]": (400, json.dumps({"error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                   "131072 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}).encode()),
    "[vllm-ctx]": (400, json.dumps({"error": {
        "message": LONG_CONTEXT, "type": "BadRequestError", "param": "input_tokens", "code": 400}}).encode()),
    "[gateway]": (502, b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"),
    "[leaky]": (401, json.dumps({"error": {
        "message": "Incorrect API key provided: sk-proj-abcdefghijklmnop0123 (see "
                   "https://user:hunter2@example.org/keys?token=abc) " + "details " * 80,
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}).encode()),
}  # fmt: skip


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
                for marker, (code, error_body) in ERROR_BODIES.items():
                    if marker in content:
                        return self._send(code, error_body)
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


# --------------------------------------------------------------------------- servers that do not answer


class HungServer:
    """Accepts connections on 127.0.0.1 and never answers (reads nothing, sends nothing)."""

    def __init__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.conns: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # the 0.2 s accept timeout, or the socket closed
                continue
            self.conns.append(conn)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.fixture()
def hung():
    s = HungServer()
    yield s
    s.close()


def test_hung_server_trips_the_breaker_on_timeouts(hung, monkeypatch, caplog):
    """A server that accepts and never answers: the first requests time out, then nothing more is sent."""
    monkeypatch.setenv("MEDSBENCH_TEST_KEY", KEY)
    backend = load_backend(f"openai:test-model,base_url={hung.url},timeout=0.3,concurrency=4",
                           api_key_env="MEDSBENCH_TEST_KEY")  # default 6 attempts and backoff from 1 s
    out = backend.generate(_requests(12))
    want = (f"no answer from {hung.url} within 0.3 s (2 consecutive timeouts); no further requests sent"
            " (if the server is only slow, raise timeout=)")
    assert [r.id for r in out] == [str(i) for i in range(12)]
    assert all(r.text == "" and r.error == want for r in out), {r.error for r in out}
    # The first wave (concurrency 4), plus at most one retry of the first request that timed out if its
    # jittered backoff ended before the second timeout came in; nothing after the breaker tripped.
    assert 4 <= backend.calls <= 5 and len(hung.conns) <= 5
    sent = backend.calls
    again = backend.generate(_requests(3, "later"))
    assert backend.calls == sent and all(r.error == want for r in again)
    assert "no answer from" in caplog.text


def test_timeouts_of_one_request_or_between_answers_do_not_trip(server, monkeypatch):
    """One request that times out on every retry fails alone; an answer resets the count."""
    backend = _backend(server, monkeypatch, max_timeouts=2)
    contents = ["[slowx9] always slow", "fine one", "fine two"]
    out = backend.generate([Request(str(i), messages=[{"role": "user", "content": c}], max_new_tokens=4)
                            for i, c in enumerate(contents)])
    assert backend.unreachable is None
    assert out[0].error == "failed after 4 attempts: no answer within 0.5 s" and server.attempts[contents[0]] == 4
    assert [r.error for r in out[1:]] == [None, None]
    a, b, c = _requests(3)
    backend._no_answer(a)
    backend._answered()
    backend._no_answer(b)
    assert backend.unreachable is None
    backend._no_answer(c)
    assert backend.unreachable and "(2 consecutive timeouts)" in backend.unreachable


def test_failed_items_keep_the_servers_error_message(server, monkeypatch):
    """Status, error code (else type) and the server's message, redacted and cut: not just the exception's name."""
    backend = _backend(server, monkeypatch, max_attempts=2)
    contents = ["[openai-ctx] q", "[vllm-ctx] q", "[gateway] q", "[leaky] q"]
    out = backend.generate([Request(str(i), messages=[{"role": "user", "content": c}], max_new_tokens=4)
                            for i, c in enumerate(contents)])
    assert out[0].error == (
        "HTTP 400 (context_length_exceeded): This model's maximum context length is 128000 tokens. "
        "However, your messages resulted in 131072 tokens. Please reduce the length of the messages."
    )
    assert out[1].error == f"HTTP 400 (BadRequestError): {LONG_CONTEXT}"
    assert out[2].error == (
        "failed after 2 attempts: HTTP 502: <html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    )
    leaky = out[3].error
    assert leaky.startswith("HTTP 401 (invalid_api_key): Incorrect API key provided: REDACTED (see https://example.org/keys)")
    assert "sk-proj" not in leaky and "hunter2" not in leaky and "token=abc" not in leaky
    assert leaky.endswith("…") and len(leaky) <= len("HTTP 401 (invalid_api_key): ") + 300
    assert [server.attempts[c] for c in contents] == [1, 1, 2, 1]  # 400/401 are not retried, 502 is
