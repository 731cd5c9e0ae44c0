"""Mixture loading (the MedS-Ins Parquet shards of medsbench.ins.export) and assistant-only tokenisation.

Labels are built here rather than by TRL's ``assistant_only_loss``: TRL needs a
chat template with ``{% generation %}`` markers and only ships patched copies of
templates it knows, which excludes SmolLM2's ChatML. Instead each example is
rendered once with the tokenizer's own template; the character span of every
assistant turn is found by rendering the conversation up to that turn (with and
without the generation prompt), and the tokens whose first character falls in a
span keep their id as label, everything else gets -100. The span runs from the
first character of the assistant's content through its end-of-turn token (so the
model learns to stop) and excludes the template's filler after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError

REQUIRED_COLUMNS = ("messages", "task_id", "category", "source", "language", "shots")
IGNORE_INDEX = -100


@dataclass(frozen=True)
class Mixture:
    name: str
    root: Path
    files: list[Path]
    card: Path | None


def find_mixture(path: str | Path) -> Mixture:
    """Resolve ``mixtures/NAME`` (folder with data/*.parquet), a folder of shards, or one parquet file."""
    root = Path(path)
    if root.is_file() and root.suffix == ".parquet":
        return Mixture(root.stem, root.parent, [root], None)
    if not root.is_dir():
        raise MedsbenchError("mixture folder not found", where=str(root))
    files = sorted((root / "data").glob("*.parquet")) or sorted(root.glob("*.parquet"))
    if not files:
        raise MedsbenchError("no parquet shards (expected data/train-*.parquet)", where=str(root))
    card = root / "card.md"
    return Mixture(root.name, root, files, card if card.is_file() else None)


def check_columns(columns: Sequence[str], where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise MedsbenchError(
            f"mixture lacks column(s) {', '.join(missing)} (expected {', '.join(REQUIRED_COLUMNS)})", where=where
        )


def load_mixture(path: str | Path):
    """Load a mixture as a ``datasets.Dataset`` after checking its schema (one line on error)."""
    import pyarrow.parquet as pq
    from datasets import load_dataset

    mix = find_mixture(path)
    for f in mix.files:  # schema check is cheap and names the bad shard
        try:
            columns = pq.read_schema(f).names
        except Exception as exc:  # pyarrow raises several types for non-parquet bytes
            raise MedsbenchError(f"not a readable parquet file: {exc}".splitlines()[0], where=str(f)) from None
        check_columns(columns, str(f))
    ds = load_dataset("parquet", data_files=[str(f) for f in mix.files], split="train")
    if len(ds) == 0:
        raise MedsbenchError("mixture has no rows", where=str(mix.root))
    return ds


def _render(tokenizer: Any, messages: list[dict], *, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[dict], where: str = "") -> tuple[str, list[tuple[int, int]]]:
    """Render ``messages`` and return (text, character spans of the assistant turns' trained part)."""
    text = _render(tokenizer, messages)
    eos = tokenizer.eos_token
    spans: list[tuple[int, int]] = []
    for i, msg in enumerate(messages):
        if msg.get("role") != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation_prompt=True) if i else ""
        upto = _render(tokenizer, messages[: i + 1])
        if not (text.startswith(upto) and upto.startswith(before)):
            raise MedsbenchError(
                "the chat template does not render conversations prefix-consistently; cannot mask prompt tokens",
                where=where or None,
            )
        start, end = len(before), len(upto)
        content = msg.get("content") or ""
        at = text.find(content, start, end) if content else -1
        if at >= 0 and eos and (cut := text.find(eos, at + len(content), end)) >= 0:
            end = cut + len(eos)  # through the end-of-turn token, not the filler after it
        spans.append((start, end))
    return text, spans


def encode_conversation(
    tokenizer: Any, messages: list[dict], max_length: int | None = None, where: str = ""
) -> dict[str, list[int]] | None:
    """Token ids and labels (-100 outside assistant spans); None if truncation leaves nothing to learn."""
    if not any(m.get("role") == "assistant" and (m.get("content") or "").strip() for m in messages):
        raise MedsbenchError("example has no non-empty assistant message", where=where or None)
    text, spans = assistant_spans(tokenizer, messages, where)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    for k, (s, _e) in enumerate(enc["offset_mapping"]):
        if any(a <= s < b for a, b in spans):
            labels[k] = ids[k]
    if max_length is not None and len(ids) > max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": ids, "labels": labels}


def tokenize_mixture(dataset: Any, tokenizer: Any, max_length: int, num_proc: int | None = None):
    """Map a mixture to ``input_ids``/``labels`` (TRL uses ready labels as they are); drops emptied rows."""
    if not getattr(tokenizer, "is_fast", False):
        raise MedsbenchError("a fast tokenizer is needed (offsets are used to mask prompt tokens)")
    if not getattr(tokenizer, "chat_template", None):
        raise MedsbenchError("the base model's tokenizer has no chat template")

    def _map(row: dict, idx: int) -> dict:
        where = f"row {idx}" + (f" (id {row['id']})" if row.get("id") else "")
        out = encode_conversation(tokenizer, list(row["messages"]), max_length, where)
        if out is None:
            return {"input_ids": [], "labels": []}
        return out

    keep = ["input_ids", "labels"]
    tok = dataset.map(
        _map,
        with_indices=True,
        remove_columns=[c for c in dataset.column_names if c not in keep],
        num_proc=num_proc,
        desc="Tokenising (assistant-only labels)",
    )
    return tok.filter(lambda r: len(r["input_ids"]) > 0, num_proc=num_proc)
