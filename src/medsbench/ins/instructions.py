"""Instruction variants: the official ``RewriteDefinitions.json`` sidecar and `ins rewrite`.

Sidecar shape (the paper's release; CC BY-SA, so it is loaded by path, never
vendored)::

    {"task57": {"original_def": "...", "auto_rewrite_def": ["...", ...]}, ...}

``rewrite`` asks any backend (``medsbench.models``) for paraphrases and writes
the same shape, deduplicated, with empty and over-long rewrites dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import write_json
from medsbench.tasks.definitions import read_definitions_file
from medsbench.models.base import Request


@dataclass
class Variants:
    original: str
    paraphrases: list[str] = field(default_factory=list)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _clean_unique(texts: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    seen = {_norm(t) for t in exclude}
    out: list[str] = []
    for t in texts:
        t = t.strip()
        key = _norm(t)
        if not key or key in seen:
            continue
        seen.add(key)
        out.append(t)
    return out


def load_sidecar(path: str | os.PathLike) -> dict[str, Variants]:
    """Read one RewriteDefinitions.json-shaped file (through :func:`medsbench.tasks.definitions.read_definitions_file`,
    the one reader of that shape); a missing or malformed file is one clear line."""
    entries = read_definitions_file(path, what="instruction sidecar").entries
    return {tid: Variants(e.original.strip(), _clean_unique(list(e.paraphrases), exclude=[e.original]))
            for tid, e in entries.items()}


def load_sidecars(paths: Sequence[str | os.PathLike]) -> dict[str, Variants]:
    """Merge several sidecars: the first file's original_def wins, paraphrases are pooled."""
    merged: dict[str, Variants] = {}
    for p in paths:
        for tid, v in load_sidecar(p).items():
            if tid in merged:
                cur = merged[tid]
                cur.paraphrases = _clean_unique([*cur.paraphrases, *v.paraphrases], exclude=[cur.original])
            else:
                merged[tid] = v
    return merged


def write_sidecar(path: str | os.PathLike, variants: dict[str, Variants]) -> None:
    write_json(
        path,
        {tid: {"original_def": v.original, "auto_rewrite_def": v.paraphrases} for tid, v in sorted(variants.items())},
    )


# --- generating paraphrases with a model ------------------------------------------------------

# Style hints make each request different, so even greedy decoding yields distinct rewrites.
_STYLES = (
    "Keep the meaning but use different words.",
    "Write it as a direct command.",
    "Start with 'Given'.",
    "Make it more formal.",
    "Make it shorter.",
    "Make it a little more detailed, without adding new requirements.",
    "Address the reader as 'you'.",
    "Start with 'Your task is'.",
    "Phrase it as a request starting with 'Please'.",
    "Use plain, simple words.",
    "Start with 'In this task'.",
    "Reorder the sentence while keeping every requirement.",
    "Start with 'Read'.",
    "Write it in the passive voice.",
    "Write it as two short sentences.",
    "Start with 'You will be given'.",
    "Use clinical terminology where natural.",
    "Start with 'For the following'.",
    "Start with 'Based on'.",
    "Write it as if instructing a medical student.",
)

SYSTEM = (
    "You rewrite task instructions for a medical NLP dataset. Keep every requirement of the "
    "original (inputs, expected output, output format, exact answer phrases in quotes). "
    "Reply with the rewritten instruction only."
)

_PREFIX_RE = re.compile(r"^(?:rewritten instruction|paraphrase|instruction|rewrite)\s*\d*\s*[:\-]\s*", re.I)


def clean_rewrite(text: str) -> str:
    """The first paragraph of a model reply, without list markers, labels or wrapping quotes."""
    text = (text or "").strip()
    text = text.split("\n\n")[0].strip()
    text = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", text)
    text = _PREFIX_RE.sub("", text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return " ".join(text.split())


def _request(rid: str, messages: list[dict[str, str]], max_new_tokens: int) -> Any:
    return Request(id=rid, messages=messages, prompt=None, max_new_tokens=max_new_tokens)


def rewrite(
    definitions: dict[str, str],
    backend: Any,
    *,
    n: int = 20,
    max_chars: int | None = None,
    rounds: int = 2,
    max_new_tokens: int = 160,
) -> tuple[dict[str, Variants], dict[str, int]]:
    """Ask ``backend`` for up to ``n`` paraphrases of each task definition.

    Returns (sidecar entries, drop counts). Rewrites are dropped when empty, equal to
    the original or to another rewrite (normalised), longer than ``max_chars``
    (default: 3x the original, at least 400 characters), or when the backend
    reported an error. Up to ``rounds`` passes over the style hints are made until
    ``n`` distinct rewrites exist.
    """
    if n < 1:
        raise MedsbenchError("--n must be >= 1")
    drops = {"empty": 0, "duplicate": 0, "too_long": 0, "error": 0}
    out: dict[str, Variants] = {tid: Variants(d.strip()) for tid, d in sorted(definitions.items())}
    seen: dict[str, set[str]] = {tid: {_norm(v.original)} for tid, v in out.items()}
    for rnd in range(rounds):
        requests, owners = [], []
        for tid, v in out.items():
            missing = n - len(v.paraphrases)
            for j in range(missing):
                style = _STYLES[(len(v.paraphrases) + j + rnd * 7) % len(_STYLES)]
                if rnd or j >= len(_STYLES):
                    style = f"{style} Variant {rnd * n + j + 1}."
                msgs = [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Original instruction:\n{v.original}\n\n{style}"},
                ]
                requests.append(_request(f"{tid}:{rnd}:{j}", msgs, max_new_tokens))
                owners.append(tid)
        if not requests:
            break
        responses = backend.generate(requests)
        by_id = {getattr(r, "id", None): r for r in responses}
        for req, tid in zip(requests, owners):
            resp = by_id.get(req.id)
            if resp is None or getattr(resp, "error", None):
                drops["error"] += 1
                continue
            text = clean_rewrite(getattr(resp, "text", ""))
            v = out[tid]
            limit = max_chars or max(400, 3 * len(v.original))
            if not text:
                drops["empty"] += 1
            elif len(text) > limit:
                drops["too_long"] += 1
            elif _norm(text) in seen[tid] or len(v.paraphrases) >= n:
                drops["duplicate"] += 1
            else:
                seen[tid].add(_norm(text))
                v.paraphrases.append(text)
    return out, drops
