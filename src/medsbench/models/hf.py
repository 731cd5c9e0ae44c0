"""transformers backend: batched greedy generation with length-sorted buckets and left padding.

Static batches step until their longest row ends, so most decode steps would be
spent on rows that already stopped. We generate in chunks of ``prune_every``
new tokens and, between chunks, drop finished rows from the batch *and* from
the KV cache, then continue the survivors from the cache (no re-prefill). In
fp32 this gives the same tokens as one uninterrupted ``generate`` (tested).

Prompt forward passes are compute bound on a CPU: batching them gains nothing there,
while padding wastes compute (bench/eval_bench.py). So each row's prompt (all but its last
token) runs alone, without padding, and the rows' KV caches are then left-padded into one
batch cache; ``generate`` continues from it with the last prompt token of every row.
Prompts of one task also start with the same tokens (chat header + definition): a prefix
common to the batch (at least ``share_prefix`` tokens) runs once and every row starts from
a copy of its cache; the last prefix cache is kept for the next batch. Decoding continues
in a cache that grows in place (:mod:`medsbench.models.kv`) instead of copying itself at
every step. Models whose cache is not made of plain dynamic layers (sliding windows,
recurrent layers), and accelerators (``row_prefill`` defaults to CPU only), get the padded
batch prefill of ``generate`` and its own cache instead.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError, require
from medsbench.fileio import sha256_text
from medsbench.models.base import BaseBackend, LoglikRequest, LoglikResponse, Rendered, Request, Response, cut_at_stop
from medsbench.prompts import Prompt, has_chat_template, render_chat

# End-of-turn markers of common chat templates; used as extra stop ids when the template mentions them.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>")
DTYPES = ("float32", "bfloat16", "float16", "auto")
TRAINING_MARKER = "medsbench_training.json"

log = logging.getLogger(__name__)


def check_training_marker(path: Path, template: str | None) -> str | None:
    """Warn loudly when a tuned model's recorded chat template (``medsbench_training.json``) differs from its tokenizer's."""
    marker = path / TRAINING_MARKER
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{marker}: unreadable, cannot check the chat template"
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

    def __init__(
        self,
        path: str,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        batch_size: int | str = "auto",
        trust_remote_code: bool = False,
        prune_every: int = 32,
        max_length: int | None = None,
        threads: int | None = None,
        revision: str | None = None,
        share_prefix: int = 16,
        row_prefill: bool | None = None,
    ):
        torch = require("torch", "hf", "the hf backend")
        transformers = require("transformers", "hf", "the hf backend")
        if dtype not in DTYPES:
            raise MedsbenchError(f"unknown dtype '{dtype}' (known: {', '.join(DTYPES)})")
        if threads:
            torch.set_num_threads(int(threads))
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
        self.prune_every = int(prune_every)
        self.share_prefix = int(share_prefix)
        # One row at a time pays on CPUs (compute bound, no padding); accelerators prefer one padded batch.
        self.row_prefill = str(device).startswith("cpu") if row_prefill is None else bool(row_prefill)
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
        self.chat = has_chat_template(tok)
        self.template_warning = check_training_marker(Path(path), tok.chat_template) if Path(path).is_dir() else None
        self.eos_ids = self._stop_ids()
        self._context = max_length or self._find_context()
        self.batch_size = self._auto_batch() if batch_size in ("auto", None, 0) else int(batch_size)
        self._fingerprint: dict[str, str | None] | None = None
        self._cache_kwarg = _cache_kwarg()
        # prompt-only forward passes need the last position's logits at most
        self._logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self.calls = 0  # generate() calls, for tests and benches
        self.prefix_tokens_shared = 0  # prompt tokens not recomputed thanks to a shared prefix, for tests and benches

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
            from medsbench.models.fingerprint import identity_fields

            self._fingerprint = identity_fields(self.path, self.revision)
        return {
            "backend": "hf",
            "model": self.path,
            **self._fingerprint,
            "dtype": str(self.model.dtype).replace("torch.", ""),
            "chat_template_sha256": sha256_text(self.tokenizer.chat_template) if self.chat else None,
        }

    # -- prompts ----------------------------------------------------------
    def render(self, prompt: Prompt) -> Rendered:
        text = render_chat(self.tokenizer, prompt)
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
        for start in range(0, len(order), self.batch_size):
            batch = [encoded[i] for i in order[start : start + self.batch_size]]
            yield from self._run_batch(batch)

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
        import copy

        key = tuple(head)
        if self._prefix is None or self._prefix[0] != key:
            self._prefix = None  # free the old one first
            self._prefix = (key, self._forward(head))
        self.prefix_tokens_shared += len(head)
        return copy.deepcopy(self._prefix[1])

    def _prefill(self, rows: list[list[int]]) -> Any:
        """The KV cache of every row's prompt but its last token, computed one row at a time (after a shared
        prefix's cache, if any) and left-padded into one batch cache of ``max(len) - 1`` positions; ``None``
        when the model's cache is not made of plain dynamic layers (``generate`` then prefills the batch)."""
        import torch
        from transformers.cache_utils import DynamicLayer

        from medsbench.models.kv import growing_cache

        if not self.row_prefill or min(len(r) for r in rows) < 2:
            return None
        shared = self._shared_prefix_length(rows)
        width = max(len(r) for r in rows) - 1
        caches = []
        for r in rows:
            cache: Any = self._prefix_cache(r[:shared]) if shared else None
            if len(r) - 1 > shared:  # (shared <= len(r) - 1 for every row: see _shared_prefix_length)
                cache = self._forward(r[shared:-1], cache)
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

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[LoglikResponse]:
        """Continuations' log-likelihoods, the context's KV cache shared by its options (:mod:`medsbench.models.loglik`)."""
        from medsbench.models.loglik import TransformersLoglik

        with _quiet_cache_notice():
            yield from TransformersLoglik(self.model, self._encode, self.device, self._context, self._cache_kwarg)(requests)

    def close(self) -> None:
        self.model = None
        self._prefix = None
