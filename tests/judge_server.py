"""A deterministic OpenAI-compatible judge server for the judge tests (stdlib only, run as a process).

    python tests/judge_server.py [--delay SECONDS]   -> prints "PORT <n>" and serves on 127.0.0.1

POST /v1/chat/completions: reads the rubric prompt medsbench sends, takes the text between
<answer>..</answer> and <reference>..</reference>, and grades by content-word overlap, so a
reference copy scores high and an empty or unrelated answer low for real reasons. The model name
picks the judge's behaviour:

- ``overlap``: score from the F1 of content words (bins of 0.2), justification + ``SCORE: n``;
- ``recall``: score from recall of the reference's content words (a second, differently calibrated judge);
- ``sloppy``: like ``overlap`` but, by a hash of the item, a third of replies never carry a score
  line (even after the format reminder) and a third only after the reminder.

GET /stats: {"requests": N, "by_model": {...}} (POSTs answered so far).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOP = frozenset(
    "a an the and or of to in on at for with by from is are was were be been has have had it its this "
    "that these those as not no can i my me you your what which who how do does did there their they he she his her".split()
)


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if w not in STOP}


def between(text: str, tag: str) -> str:
    m = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.DOTALL)
    return m.group(1) if m else ""


def grade(model: str, answer: str, reference: str) -> tuple[int, str]:
    if answer.strip() == "(empty answer)":
        answer = ""
    a, r = content_words(answer), content_words(reference)
    common = len(a & r)
    recall = common / len(r) if r else 0.0
    precision = common / len(a) if a else 0.0
    f1 = 2 * precision * recall / (precision + recall) if common else 0.0
    if model == "recall":
        score = min(5, 1 + int(4 * recall + 0.25))
        why = f"The answer covers {common} of the {len(r)} key terms of the reference (recall {recall:.2f})."
    else:
        score = min(5, 1 + int(f1 / 0.2))
        why = f"Content overlap with the reference: F1 {f1:.2f} ({common} shared key terms)."
    return score, why


class State:
    def __init__(self, delay: float):
        self.delay = delay
        self.lock = threading.Lock()
        self.requests = 0
        self.by_model: dict[str, int] = {}


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def _send(self, code: int, obj: dict) -> None:
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.rstrip("/").endswith("/stats"):
                with state.lock:
                    return self._send(200, {"requests": state.requests, "by_model": dict(state.by_model)})
            self._send(404, {"error": {"message": "not found"}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            model = body["model"]
            with state.lock:
                state.requests += 1
                state.by_model[model] = state.by_model.get(model, 0) + 1
            if state.delay:
                time.sleep(state.delay)
            messages = body["messages"]
            prompt = next(m["content"] for m in messages if m["role"] == "user")
            answer, reference = between(prompt, "answer"), between(prompt, "reference")
            score, why = grade(model, answer, reference)
            reply = f"{why}\nSCORE: {score}"
            if model == "sloppy":
                bucket = int(hashlib.sha1((answer + "|" + reference).encode()).hexdigest(), 16) % 3
                is_retry = len(messages) > 2
                if bucket == 0:
                    reply = f"{why} I would rate it fairly."  # never a score line
                elif bucket == 1 and not is_retry:
                    reply = f"{why}\nScore = {score} out of 5"  # wrong format, fixed after the reminder
                elif bucket == 1:
                    reply = f"SCORE: {score}"
            words = sum(len(m["content"].split()) for m in messages)
            self._send(200, {
                "id": f"judge-{state.requests}", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": words, "completion_tokens": len(reply.split()),
                          "total_tokens": words + len(reply.split())},
            })

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    state = State(args.delay)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    print(f"PORT {httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
