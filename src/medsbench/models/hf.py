"""transformers backend: greedy generation with continuous batching on CPU, static batches elsewhere.

Prompts are sorted longest first (similar lengths share the batch, the biggest cost shows first).

**Continuous batching** (``continuous``, on by default with ``row_prefill``): up to ``batch_size``
rows decode together, one token per step, in our own greedy loop over the model's forward pass
(argmax of the last position's logits, as ``generate`` does without sampling). When a row ends
(an end-of-turn id, its ``max_new_tokens`` or a stop string) its response is yielded at once and
the next waiting prompt takes its place: that prompt alone runs its forward pass (all but its
last token, after a copy of the shared prefix's cache if the prompts share one) and its KV cache
is written into the free row of the batch cache. The batch cache is a window of columns
(:mod:`medsbench.models.kv`) in which every row is right-aligned, padding on its left: a 2-D
attention mask hides the padding and every row gets its own position ids (its real token count),
so each row computes what it would compute alone. The window grows in place by one column per
step, widens at its front for a prompt longer than it, and drops front columns no live row uses.
Rows that end while no prompt waits are dropped from the batch every ``prune_every`` steps.
Static batches step until their longest row ends; here a long answer no longer holds up the
prompts behind it (bench/eval_bench.py). In fp32 the outputs equal one ``generate`` per prompt
(tested over batch sizes, admission orders and prompt lengths).

**Static batches** (``continuous=False``, and the fallback): ``generate`` in chunks of
``prune_every`` new tokens; between chunks finished rows leave the batch and its KV cache and
the survivors continue from the cache. Prompt forward passes are compute bound on a CPU:
batching them gains nothing there while padding wastes compute, so with ``row_prefill`` each
row's prompt (all but its last token) runs alone and the rows' caches are left-padded into one
batch cache that ``generate`` continues from. Models whose cache is not made of plain dynamic
layers (sliding windows, recurrent layers), and accelerators (``row_prefill`` defaults to CPU
only), get the padded batch prefill of ``generate`` and its own cache instead.

Prompts of one task start with the same tokens (chat header + definition): a prefix common to the
prompts of a call (at least ``share_prefix`` tokens) runs once and every row starts from a copy of
its cache; the last prefix cache is kept for the next call.

Threads: ``threads`` (default: :func:`medsbench.models.cpus.usable_cpus`, the CPUs this process
may really use, affinity and cgroup quota) sets torch's intra-op (OpenMP) threads.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError, require
from medsbench.fileio import sha256_text
from medsbench.models.base import BaseBackend, LoglikRequest, LoglikResponse, Rendered, Request, Response, cut_at_stop
from medsbench.models.cpus import CpuShare, torch_threads
from medsbench.models.spec import HFOptions, options_with
from medsbench.models.training import read_training_record, training_record_path
from medsbench.prompts import Prompt, has_chat_template, render_chat
from medsbench.models.fingerprint import identity_fields
import copy
from medsbench.models.kv import growing_cache
from medsbench.models.kv import window_cache

# End-of-turn markers of common chat templates; used as extra stop ids when the template mentions them.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>")
DTYPES = ("float32", "bfloat16", "float16", "auto")

log = logging.getLogger(__name__)


def check_training_marker(path: Path, template: str | None) -> str | None:
    """Warn loudly when a tuned model's recorded chat template (``medsbench_training.json``) differs from its tokenizer's."""
    try:
        info = read_training_record(path)
    except MedsbenchError:
        return f"{training_record_path(path)}: unreadable, cannot check the chat template"
    if info is None:
        return None
    want = info.get("chat_template_sha256")
    have = sha256_text(template) if template else None
    if want and want != have:
        msg = (
            f"WARNING: {path} was trained with chat template sha256 {str(want)[:12]}... but its tokenizer has "
            f"{(have or 'none')[:12]}...: prompts at eval differ from training"
        )
        log.warning("%s", msg)
        return msg
    return None


def _cache_kwarg() -> str:
    """The name transformers uses for the KV cache in ``generate`` and its outputs (``cache`` since 5.x,
    ``past_key_values`` before), so that no deprecation notice is triggered at every step."""
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    return "cache" if "cache" in getattr(GenerateDecoderOnlyOutput, "__dataclass_fields__", {}) else "past_key_values"


@contextlib.contextmanager
def _quiet_cache_notice() -> Iterator[None]:
    """Per-step deprecation notices about the KV-cache argument name would break progress bars."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`past_key_values` is deprecated", category=FutureWarning)
        yield


class HFBackend(BaseBackend):
    name = "hf"

    def __init__(self, path: str, options: HFOptions | None = None, **overrides: Any):
        """``options``: the spec's typed options (:class:`medsbench.models.spec.HFOptions`); ``overrides``:
        any of its fields by name (``HFBackend(path, batch_size=4, threads=1)``)."""
        o = options_with(HFOptions, options, overrides)
        torch = require("torch", "hf", "the hf backend")
        transformers = require("transformers", "hf", "the hf backend")
        dtype, device, trust_remote_code, revision = o.dtype, o.device, o.trust_remote_code, o.revision
        if dtype not in DTYPES:
            raise MedsbenchError(f"unknown dtype '{dtype}' (known: {', '.join(DTYPES)})")
        # An explicit threads= is kept; otherwise this process's share of the usable CPUs among the
        # medsbench processes computing on the machine, followed between decoding steps (_rebalance).
        self._torch = torch
        self._share = None if o.threads else CpuShare(torch_threads(None))
        self.threads = self._share.threads() if self._share is not None else torch_threads(o.threads)
        torch.set_num_threads(self.threads)
        transformers.utils.logging.disable_progress_bar()  # our own progress bars are the ones that matter
        local = Path(path).expanduser()
        if path.startswith(("/", ".", "~")) or local.exists():
            if not local.is_dir():
                raise MedsbenchError("model folder not found", where=str(local))
            if not (local / "config.json").is_file():
                raise MedsbenchError("not a transformers model folder (no config.json)", where=str(local))
            path = str(local.resolve())
        self.path = path
        self.dtype_name = dtype
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.prune_every = int(o.prune_every)
        self.share_prefix = int(o.share_prefix)
        # One row at a time pays on CPUs (compute bound, no padding); accelerators prefer one padded batch.
        self.row_prefill = str(device).startswith("cpu") if o.row_prefill is None else bool(o.row_prefill)
        # Continuous batching builds on the per-row prefill (its caches are what gets admitted).
        self.continuous = self.row_prefill if o.continuous is None else bool(o.continuous) and self.row_prefill
        self._plain_cache: bool | None = None  # whether the model's cache is plain dynamic layers (probed once)
        self._prefix: tuple[tuple[int, ...], Any] | None = None  # (token ids, KV cache at batch size 1)
        self.revision = revision
        hub = {"revision": revision} if revision else {}
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **hub)
            torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                path, dtype=torch_dtype, trust_remote_code=trust_remote_code, **hub
            )
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MedsbenchError(f"cannot load model '{path}': {first}") from None
        self.model.to(device).eval()
        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.chat = has_chat_template(tok) and o.chat_template == "model"  # none: the official plain prompt
        self.template_warning = check_training_marker(Path(path), tok.chat_template) if Path(path).is_dir() else None
        self.eos_ids = self._stop_ids()
        self._context = o.max_length or self._find_context()
        self.batch_size = self._auto_batch() if o.batch_size in ("auto", None, 0) else int(o.batch_size)
        self._fingerprint: dict[str, str | None] | None = None
        self._cache_kwarg = _cache_kwarg()
        # prompt-only forward passes need the last position's logits at most
        self._logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self.calls = 0  # static batches run (generate() calls) or continuous runs, for tests and benches
        self.max_token_chars = self._longest_token()
        self.prefix_tokens_shared = 0  # prompt tokens not recomputed thanks to a shared prefix, for tests and benches
        # Work done by decoding, independent of the machine's load (bench/eval_bench.py): forward passes, rows
        # computed in them (finished rows still in the batch included) and KV positions attended (padding included).
        self.decode_work = {"steps": 0, "row_steps": 0, "kv_positions": 0}

    # -- identity ---------------------------------------------------------
    def _stop_ids(self) -> list[int]:
        ids: list[int | None] = []
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids += gen_eos if isinstance(gen_eos, list) else [gen_eos]
        ids.append(self.tokenizer.eos_token_id)
        template = self.tokenizer.chat_template or ""
        vocab = self.tokenizer.get_vocab()
        ids += [vocab[t] for t in END_OF_TURN if t in template and t in vocab]
        return sorted({i for i in ids if i is not None})

    def _find_context(self) -> int | None:
        found = [getattr(self.model.config, "max_position_embeddings", None)]
        mml = getattr(self.tokenizer, "model_max_length", None)
        if mml and mml < 10_000_000:
            found.append(mml)
        limits = [int(x) for x in found if x]
        return min(limits) if limits else None

    def _longest_token(self) -> int | None:
        """Characters of the tokenizer's longest token (special tokens included): no input of more than
        ``context x this`` characters can fit the context (used by :mod:`medsbench.runs.plan`)."""
        tok = self.tokenizer
        try:
            pieces = list(tok.get_vocab())
            return max(len(tok.convert_tokens_to_string([p])) for p in pieces) if pieces else None
        except Exception:  # noqa: BLE001 - a tokenizer that cannot say: the planner's constant bound applies
            return None

    def _auto_batch(self) -> int:
        # On CPU memory is not the limit for the models that run there. Prompts are prefilled one row at a
        # time, so a bigger batch costs no padding and only shares decode steps: 32 rows took 45 s where
        # 16 took 53 s on 32 MedQA prompts (SmolLM2, 2 threads, identical outputs).
        if not str(self.device).startswith("cuda"):
            return 32
        import torch

        longest = max(self._context or 2048, 512)
        size, best = 8, 1
        while size <= 256:
            try:
                ids = torch.full((size, min(longest, 4096)), self.tokenizer.pad_token_id, device=self.device)
                with torch.no_grad():
                    self.model(input_ids=ids)
                best = size
                size *= 2
            except torch.cuda.OutOfMemoryError:
                break
            finally:
                torch.cuda.empty_cache()
        return best

    def identity(self) -> dict[str, Any]:
        """Backend, model, weights fingerprint (:mod:`medsbench.models.fingerprint`), dtype, chat template."""
        if self._fingerprint is None:

            self._fingerprint = identity_fields(self.path, self.revision)
        return {
            "backend": "hf",
            "model": self.path,
            **self._fingerprint,
            "dtype": str(self.model.dtype).replace("torch.", ""),
            "chat_template_sha256": sha256_text(self.tokenizer.chat_template) if self.chat else None,
            **({} if self.chat or not has_chat_template(self.tokenizer) else {"chat_template": "none"}),
        }

    # -- prompts ----------------------------------------------------------
    def render(self, prompt: Prompt) -> Rendered:
        text = render_chat(self.tokenizer, prompt, template=self.chat)
        return Rendered(text, prompt=text)

    def _encode(self, text: str) -> list[int]:
        # Chat templates carry their own special tokens; plain prompts get the tokenizer's BOS (as officially).
        return self.tokenizer(text, add_special_tokens=not self.chat, verbose=False)["input_ids"]

    def count_tokens(self, prompt: Prompt) -> int | None:
        return len(self._encode(self.render(prompt).text))

    @property
    def context_length(self) -> int | None:
        return self._context

    # -- generation -------------------------------------------------------
    def generate(self, requests: list[Request]) -> list[Response]:
        by_id = {r.id: r for r in self.iter_generate(requests)}
        return [by_id[r.id] for r in requests]

    def iter_generate(self, requests: Sequence[Request]) -> Iterator[Response]:
        encoded = []
        for r in requests:
            text = r.prompt
            if text is None:
                text = self.tokenizer.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
            encoded.append((r, self._encode(text)))
        # Longest first: the biggest batch runs first (fails fast on memory), similar lengths share a batch.
        order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i][1]), i))
        rows = [encoded[i] for i in order]
        if rows and self.continuous and min(len(ids) for _, ids in rows) >= 2 and self._plain_dynamic(rows[0][1]):
            yield from self._run_continuous(rows)
            return
        for start in range(0, len(rows), self.batch_size):
            yield from self._run_batch(rows[start : start + self.batch_size])

    def _plain_dynamic(self, ids: list[int]) -> bool:
        """Whether this model's cache is made of plain dynamic layers (a one-token forward pass, once)."""
        from transformers.cache_utils import DynamicLayer

        if self._plain_cache is None:
            probe = self._forward(ids[:1])
            self._plain_cache = all(type(layer) is DynamicLayer for layer in probe.layers)
        return self._plain_cache

    def _gen_config(self, max_new_tokens: int):
        from transformers import GenerationConfig

        return GenerationConfig(
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            eos_token_id=self.eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            temperature=None,
            top_p=None,
            top_k=None,
            return_dict_in_generate=True,
        )

    def _response(self, req: Request, n_prompt: int, tokens: list[int], ended: bool, seconds: float) -> Response:
        toks = tokens[: req.max_new_tokens]
        text = self.tokenizer.decode(toks, skip_special_tokens=True)
        text, cut = cut_at_stop(text, tuple(s for s in req.stop if s))
        finish = "stop" if ended or cut or len(toks) < req.max_new_tokens else "length"
        return Response(req.id, text, n_prompt, len(toks), seconds, None, finish)

    def _run_batch(self, batch: list[tuple[Request, list[int]]]) -> Iterator[Response]:
        """Generate one static batch; each row's response is yielded as soon as the row is done
        (at the pruning point after its end), so callers can persist and count it at once."""
        import torch

        self.calls += 1
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for _, ids in batch)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for _, ids in batch], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in batch], device=self.device)
        limit = max(r.max_new_tokens for r, _ in batch)
        n = len(batch)
        new_tokens: list[list[int]] = [[] for _ in range(n)]
        stops = [tuple(s for s in r.stop if s) for r, _ in batch]
        active = list(range(n))  # batch rows still generating, in the order of the current tensors
        done_steps = 0
        t0 = time.perf_counter()
        cache = self._prefill([ids for _, ids in batch])
        seconds = [(time.perf_counter() - t0) / n] * n
        eos = set(self.eos_ids)
        while active:
            self._rebalance()
            step = limit - done_steps
            if self.prune_every > 0:
                step = min(step, self.prune_every)
            t0 = time.perf_counter()
            with torch.no_grad(), _quiet_cache_notice():
                out = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    generation_config=self._gen_config(step),
                    **({self._cache_kwarg: cache} if cache is not None else {}),
                )
            elapsed = time.perf_counter() - t0
            seqs = out.sequences
            self._count_decode(len(active), input_ids.shape[1], seqs.shape[1] - input_ids.shape[1])
            fresh = seqs[:, input_ids.shape[1] :].tolist()
            still: list[int] = []
            for pos, row in enumerate(active):
                seconds[row] += elapsed / len(active)
                toks = fresh[pos]
                stopped = False
                for t in toks:
                    if t in eos:
                        stopped = True
                        break
                    new_tokens[row].append(t)
                if not stopped and stops[row]:  # stop strings: checked on the decoded text once per chunk
                    text = self.tokenizer.decode(new_tokens[row], skip_special_tokens=True)
                    stopped = cut_at_stop(text, stops[row])[1]
                req, ids = batch[row]
                if stopped or len(new_tokens[row]) >= req.max_new_tokens or done_steps + step >= limit:
                    yield self._response(req, len(ids), new_tokens[row], stopped, seconds[row])
                else:
                    still.append(pos)
            done_steps += step
            if not still:
                break
            # Keep unfinished rows only, in the batch tensors and in the KV cache.
            keep = torch.tensor(still, device=self.device)
            cache = getattr(out, self._cache_kwarg)
            cache.batch_select_indices(keep)
            input_ids = seqs[keep]
            grown = input_ids.shape[1] - mask.shape[1]
            mask = torch.cat([mask[keep], torch.ones((len(still), grown), dtype=mask.dtype, device=self.device)], 1)
            active = [active[p] for p in still]

    def _count_decode(self, rows: int, width: int, steps: int) -> None:
        """Add ``steps`` decode steps of ``rows`` rows whose cache starts ``width`` positions wide."""
        self.decode_work["steps"] += steps
        self.decode_work["row_steps"] += rows * steps
        self.decode_work["kv_positions"] += rows * (steps * width + steps * (steps + 1) // 2)

    def _shared_prefix_length(self, rows: list[list[int]]) -> int:
        """Tokens every row starts with, if at least ``share_prefix`` of them (else 0); the last token of
        the shortest row is always left out (it is the first input of ``generate``)."""
        if self.share_prefix <= 0 or len(rows) < 2:
            return 0
        first, n = rows[0], min(len(r) for r in rows) - 1
        for r in rows[1:]:
            k = 0
            while k < n and r[k] == first[k]:
                k += 1
            n = k
        return n if n >= self.share_prefix else 0

    def _forward(self, ids: list[int], cache: Any = None) -> Any:
        """One batch-size-1 forward pass of ``ids`` after ``cache``; returns the grown cache."""
        import torch

        kwargs = {self._cache_kwarg: cache} if cache is not None else {}
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1
        with torch.no_grad(), _quiet_cache_notice():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True, **kwargs)
        return getattr(out, self._cache_kwarg)

    def _prefix_cache(self, head: list[int]) -> Any:
        """A copy of the KV cache of ``head`` (computed once while the prefix stays the same)."""

        key = tuple(head)
        if self._prefix is None or self._prefix[0] != key:
            self._prefix = None  # free the old one first
            self._prefix = (key, self._forward(head))
        self.prefix_tokens_shared += len(head)
        return copy.deepcopy(self._prefix[1])

    def _row_cache(self, ids: list[int], shared: int) -> Any:
        """The KV cache of ``ids`` but its last token, batch size 1: a copy of the shared prefix's cache
        (``shared`` tokens) continued with the rest; ``None`` for a one-token prompt."""
        cache: Any = self._prefix_cache(ids[:shared]) if shared else None
        if len(ids) - 1 > shared:  # (shared <= len(ids) - 1: see _shared_prefix_length)
            cache = self._forward(ids[shared:-1], cache)
        return cache

    def _prefill(self, rows: list[list[int]]) -> Any:
        """The KV cache of every row's prompt but its last token, computed one row at a time (after a shared
        prefix's cache, if any) and left-padded into one batch cache of ``max(len) - 1`` positions; ``None``
        when the model's cache is not made of plain dynamic layers (``generate`` then prefills the batch)."""
        import torch
        from transformers.cache_utils import DynamicLayer


        if not self.row_prefill or min(len(r) for r in rows) < 2:
            return None
        shared = self._shared_prefix_length(rows)
        width = max(len(r) for r in rows) - 1
        caches = []
        for r in rows:
            cache = self._row_cache(r, shared)
            if not all(type(layer) is DynamicLayer for layer in cache.layers):
                return None
            caches.append(cache)
        layers = []
        for i in range(len(caches[0].layers)):
            pads = [width - c.layers[i].keys.shape[-2] for c in caches]
            keys = torch.cat([torch.nn.functional.pad(c.layers[i].keys, (0, 0, p, 0)) for c, p in zip(caches, pads)])
            values = torch.cat([torch.nn.functional.pad(c.layers[i].values, (0, 0, p, 0)) for c, p in zip(caches, pads)])
            layers.append((keys, values))
        return growing_cache(layers)

    # -- continuous batching ---------------------------------------------
    def _run_continuous(self, rows: list[tuple[Request, list[int]]]) -> Iterator[Response]:
        """Decode up to ``batch_size`` rows at a time, admitting the next waiting prompt into every row that
        ends; responses are yielded as rows end. ``rows`` are sorted longest first (all >= 2 tokens)."""
        self.calls += 1
        batch = _Window(self, self._shared_prefix_length([ids for _, ids in rows]))
        waiting = deque(rows)
        since_prune = 0
        while True:
            self._rebalance()
            for slot in batch.free_slots(min(self.batch_size, len(waiting) + batch.live)):
                while waiting:  # a request that asks for no token is answered without a model call
                    req, ids = waiting.popleft()
                    if req.max_new_tokens > 0:
                        batch.admit(slot, req, ids)
                        break
                    yield self._response(req, len(ids), [], False, 0.0)
            if not batch.live:
                return
            yield from batch.step()
            since_prune += 1
            if not waiting and batch.dead and batch.live and 0 < self.prune_every <= since_prune:
                batch.compact()
                since_prune = 0

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[LoglikResponse]:
        """Continuations' log-likelihoods, the context's KV cache shared by its options (:mod:`medsbench.models.loglik`)."""
        from medsbench.models.loglik import TransformersLoglik

        with _quiet_cache_notice():
            yield from TransformersLoglik(self.model, self._encode, self.device, self._context, self._cache_kwarg)(requests)

    def _rebalance(self) -> None:
        """Follow this process's CPU share (:class:`medsbench.models.cpus.CpuShare`) between decoding steps."""
        if self._share is not None and (n := self._share.threads()) != self.threads:
            self._torch.set_num_threads(n)
            self.threads = n

    def close(self) -> None:
        if self._share is not None:
            self._share.close()
        self.model = None
        self._prefix = None


@dataclass
class _Row:
    """One prompt in the continuous batch."""

    req: Request
    n_prompt: int
    length: int  # tokens in its KV cache (its position id of the next input token)
    last: int  # the next input token
    stops: tuple[str, ...]
    tokens: list[int] = field(default_factory=list)
    seconds: float = 0.0


class _Window:
    """The continuous batch of :meth:`HFBackend._run_continuous`: its rows (``None`` = free) and their cache,
    every row right-aligned in the cache window (:mod:`medsbench.models.kv`)."""

    def __init__(self, backend: HFBackend, shared: int):
        self.b = backend
        self.shared = shared
        self.rows: list[_Row | None] = []
        self.cache: Any = None
        self.eos = set(backend.eos_ids)

    @property
    def live(self) -> int:
        return sum(r is not None for r in self.rows)

    @property
    def dead(self) -> int:
        return len(self.rows) - self.live

    def width(self) -> int:
        return 0 if self.cache is None else self.cache.layers[0].keys.shape[-2]

    def free_slots(self, want: int) -> list[int]:
        """Free rows to fill, adding rows while fewer than ``want`` exist (before the first step only)."""
        if self.cache is None:
            self.rows = [None] * want
        return [i for i, r in enumerate(self.rows) if r is None]

    def admit(self, slot: int, req: Request, ids: list[int]) -> None:

        import torch

        t0 = time.perf_counter()
        with torch.profiler.record_function("medsbench.prefill"):  # named ranges for bench/eval_bench.py --profile
            row_cache = self.b._row_cache(ids, self.shared)
        m = len(ids) - 1
        if self.cache is None:
            self.cache = window_cache(row_cache, len(self.rows), m)
        elif m > self.width():
            extra = m - self.width()
            for layer in self.cache.layers:
                layer.widen(extra)
        for layer, new in zip(self.cache.layers, row_cache.layers):
            layer.put_row(slot, new.keys, new.values)
        stops = tuple(s for s in req.stop if s)
        self.rows[slot] = _Row(req, len(ids), m, ids[-1], stops, seconds=time.perf_counter() - t0)

    def step(self) -> Iterator[Response]:
        """One decode step of every row; yields the responses of the rows that ended."""
        import torch

        b = self.b
        t0 = time.perf_counter()
        width = self.width()
        lengths = torch.tensor([r.length if r else 0 for r in self.rows], device=b.device)
        mask = (torch.arange(width + 1, device=b.device)[None, :] >= (width - lengths)[:, None]).long()
        inputs = torch.tensor([[r.last if r else b.tokenizer.pad_token_id] for r in self.rows], device=b.device)
        kwargs: dict[str, Any] = {b._cache_kwarg: self.cache}
        if b._logits_to_keep:
            kwargs["logits_to_keep"] = 1
        with torch.no_grad(), _quiet_cache_notice(), torch.profiler.record_function("medsbench.decode_step"):
            out = b.model(input_ids=inputs, attention_mask=mask, position_ids=lengths[:, None], use_cache=True, **kwargs)
        chosen = out.logits[:, -1, :].argmax(-1).tolist()
        b._count_decode(len(self.rows), width, 1)
        share = (time.perf_counter() - t0) / max(1, self.live)
        for slot, row in enumerate(self.rows):
            if row is None:
                continue
            row.seconds += share
            row.length += 1
            token = chosen[slot]
            ended = token in self.eos
            if not ended:
                row.tokens.append(token)
                row.last = token
                if row.stops:  # stop strings: checked on the decoded text at every step
                    ended = cut_at_stop(b.tokenizer.decode(row.tokens, skip_special_tokens=True), row.stops)[1]
            if ended or len(row.tokens) >= row.req.max_new_tokens:
                self.rows[slot] = None
                yield b._response(row.req, row.n_prompt, row.tokens, ended, row.seconds)
        longest = max((r.length for r in self.rows if r is not None), default=0)
        for layer in self.cache.layers:  # front columns that no live row uses any more
            layer.drop_front(width + 1 - longest)

    def compact(self) -> None:
        """Drop the free rows from the batch and its cache (when no prompt waits to fill them)."""
        import torch

        keep = [i for i, r in enumerate(self.rows) if r is not None]
        self.cache.batch_select_indices(torch.tensor(keep, dtype=torch.long, device=self.b.device))
        self.rows = [self.rows[i] for i in keep]

