"""Likelihood scoring through an OpenAI-compatible ``/v1/completions`` endpoint (echo + prompt logprobs).

A local server (stdlib, in a thread) answers completions with the real log-probabilities of the tiny
test model, in the shape vLLM's OpenAI server gives them (tokens, token_logprobs with None first,
text_offset, top_logprobs). The openai backend's numbers must equal the hf backend's on the same
requests; a chat-only server and a server without prompt logprobs are refused in one line."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from medsbench.errors import MedsbenchError
from medsbench.models.base import LoglikRequest


class CompletionsServer:
    def __init__(self, model_dir, mode: str = "ok"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32").eval()
        self.requests = 0
        outer = self

        def echo(text: str) -> dict:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
            nxt = int(logp[-1].argmax())
            tokens, offsets, values, top = [], [], [None], [None]
            for i, t in enumerate(ids + [nxt]):
                offsets.append(len(tok.decode((ids + [nxt])[:i])))
                tokens.append(tok.decode([t]))
                if i:
                    values.append(float(logp[i - 1, t]))
                    best = int(logp[i - 1].argmax())
                    top.append({tok.decode([best]): float(logp[i - 1, best])})
            return {"tokens": tokens, "token_logprobs": values, "text_offset": offsets, "top_logprobs": top}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                if mode == "chat-only" or not self.path.endswith("/completions") or "chat" in self.path:
                    return self._send(404, {"error": {"message": "not found"}})
                assert body["echo"] is True and body["logprobs"] == 1
                logprobs = None if mode == "no-logprobs" else echo(body["prompt"])
                choice = {"index": 0, "text": body["prompt"], "logprobs": logprobs, "finish_reason": "length"}
                self._send(200, {"id": "c", "object": "text_completion", "created": 0, "model": body["model"],
                                 "choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                                                "total_tokens": 2}})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _backend(url, monkeypatch):
    from medsbench.models import load_backend

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    return load_backend(f"openai:tiny,base_url={url},max_attempts=2,backoff_base=0")


REQUESTS = [
    LoglikRequest("q1", "Input: A 45-year-old man presents with chest pain.\nA. aspirin\nB. tumor\nOutput: The right answer is",
                  (" A", " B", " A: aspirin", " B: tumor")),
    LoglikRequest("q2", "Is this a species? mouse\nOutput:\n", ("yes", "no")),
]


def test_openai_completions_loglik_equals_hf(tiny_model_dir, monkeypatch):
    from medsbench.models.hf import HFBackend

    server = CompletionsServer(tiny_model_dir)
    try:
        got = list(_backend(server.url, monkeypatch).loglikelihood(REQUESTS))
    finally:
        server.close()
    hf = HFBackend(str(tiny_model_dir))
    want = list(hf.loglikelihood(REQUESTS))
    assert server.requests == 6  # one echo request per option
    for g, w in zip(got, want):
        assert g.error is None, g.error
        assert g.tokens == w.tokens and g.prompt_tokens == w.prompt_tokens
        assert np.allclose(g.logprobs, w.logprobs, atol=1e-4)
        assert g.greedy == w.greedy


@pytest.mark.parametrize("mode, needle", [("chat-only", "has no /v1/completions endpoint"),
                                          ("no-logprobs", "returned no prompt log-probabilities")])
def test_openai_loglik_refuses_servers_that_cannot_do_it(tiny_model_dir, monkeypatch, mode, needle):
    server = CompletionsServer(tiny_model_dir, mode)
    try:
        with pytest.raises(MedsbenchError, match=needle) as err:
            list(_backend(server.url, monkeypatch).loglikelihood(REQUESTS[:1]))
    finally:
        server.close()
    assert "\n" not in str(err.value) and "test-key" not in str(err.value)
