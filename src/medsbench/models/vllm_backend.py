"""vLLM offline backend (optional extra): the same rendered prompts, greedy, one ``LLM.generate`` per chunk."""

from __future__ import annotations

import time
from typing import Any

from medsbench.errors import MedsbenchError, require
from medsbench.models.base import BaseBackend, Rendered, Request, Response
from medsbench.prompts import Prompt, has_chat_template, render_chat


class VLLMBackend(BaseBackend):
    name = "vllm"
    chunk_size = 256  # vLLM schedules continuously inside one call; chunks only bound what a crash loses

    def __init__(self, model: str, *, trust_remote_code: bool = False, **engine_args: Any):
        """``engine_args``: the typed engine options of :class:`medsbench.models.spec.VLLMOptions`."""
        from medsbench.models.spec import VLLMOptions

        unknown = sorted(set(engine_args) - set(VLLMOptions.known()))
        if unknown:
            raise MedsbenchError(
                f"unknown vllm option(s) {', '.join(unknown)} (known: {', '.join(VLLMOptions.known())})"
            )
        vllm = require("vllm", "vllm", "the vllm backend")
        self._vllm = vllm
        self.model_name = model
        self.engine_args = {k: v for k, v in engine_args.items() if v is not None}
        self.revision = self.engine_args.get("revision")
        self._fingerprint: dict[str, str | None] | None = None
        self.llm = vllm.LLM(model=model, trust_remote_code=trust_remote_code, **self.engine_args)
        self.tokenizer = self.llm.get_tokenizer()
        self.chat = has_chat_template(self.tokenizer)

    def identity(self) -> dict[str, Any]:
        """Backend, model, weights fingerprint (:mod:`medsbench.models.fingerprint`) and engine options."""
        if self._fingerprint is None:
            from medsbench.models.fingerprint import identity_fields

            self._fingerprint = identity_fields(self.model_name, self.revision)
        return {
            "backend": "vllm",
            "model": self.model_name,
            **self._fingerprint,
            "engine": {k: str(v) for k, v in self.engine_args.items()},
        }

    def render(self, prompt: Prompt) -> Rendered:
        text = render_chat(self.tokenizer, prompt)
        return Rendered(text, prompt=text)

    def count_tokens(self, prompt: Prompt) -> int | None:
        return len(self.tokenizer(self.render(prompt).text, add_special_tokens=not self.chat)["input_ids"])

    @property
    def context_length(self) -> int | None:
        try:
            return int(self.llm.llm_engine.model_config.max_model_len)
        except AttributeError:
            return None

    def generate(self, requests: list[Request]) -> list[Response]:
        texts = [
            r.prompt
            if r.prompt is not None
            else self.tokenizer.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
            for r in requests
        ]
        params = [
            self._vllm.SamplingParams(temperature=0.0, max_tokens=r.max_new_tokens, stop=list(r.stop) or None)
            for r in requests
        ]
        t0 = time.perf_counter()
        prompts = [{"prompt_token_ids": self.tokenizer(t, add_special_tokens=not self.chat)["input_ids"]} for t in texts]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        share = (time.perf_counter() - t0) / max(1, len(requests))
        result = []
        for req, out in zip(requests, outputs, strict=True):
            best = out.outputs[0]
            result.append(
                Response(req.id, best.text, len(out.prompt_token_ids or []), len(best.token_ids), share, None)
            )
        return result
