"""Planning a run: selection -> task files -> items with their final (fitted, rendered) prompts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file, sha256_text
from medsbench.models.base import Backend
from medsbench.prompts import build_prompt, fit_prompt, sample_demos
from medsbench.tasks.catalog import CatalogEntry
from medsbench.tasks.format import Instance, iter_instances, read_meta
from medsbench.tasks.workspace import BUILD_HINT, load_definitions, resolve_tasks  # noqa: F401  (re-exported for runs.run)


@dataclass
class Item:
    task_id: str
    category: str
    language: str
    instance: Instance
    text: str  # rendered prompt, exactly what the backend receives (hashed into the cache key)
    messages: list[dict[str, str]] | None
    prompt: str | None
    demo_ids: tuple[str, ...]
    truncated: bool
    max_new_tokens: int
    key: str = ""
    error: str | None = None  # set when even the bare query does not fit the context: never sent


@dataclass
class TaskPlan:
    entry: CatalogEntry
    files: dict[str, Path]
    definition: str
    n_total: int
    items: list[Item]
    max_new_tokens: int = 200


def prompt_template_sha256(style: str) -> str:
    """A fingerprint of the prompt format: the rendering of a fixed synthetic item with two demos."""
    demo = [Instance("d1", "<demo input 1>", ["<demo output 1>"]), Instance("d2", "<demo input 2>", ["<demo output 2>"])]
    p = build_prompt("<definition>", Instance("q", "<query>", ["<gold>"]), demo, style=style)
    return sha256_text(f"{style}\x1f{p.system}\x1f{p.user}\x1f{p.plain()}")


def plan_task(
    entry: CatalogEntry,
    files: dict[str, Path],
    backend: Backend,
    *,
    limit: int | None,
    shots: int | None,
    seed: int,
    max_new_tokens: int | None,
    style: str,
    definitions: dict[str, str],
) -> TaskPlan:
    test_path = files["test"]
    meta = read_meta(test_path)
    definition = definitions.get(entry.id)
    if definition is None:
        raw = meta.get("Definition")
        definition = (raw[0] if isinstance(raw, list) and raw else raw) or ""
    k = entry.shots if shots is None else shots
    tests = list(iter_instances(test_path))
    n_total = len(tests)
    if limit is not None:
        tests = tests[:limit]
    # Demos from the train split; without one, from the full test split (never the item itself).
    pool: list[Instance] = []
    if k > 0:
        pool = list(iter_instances(files["train"])) if "train" in files else list(iter_instances(test_path))
    new_tokens = entry.max_new_tokens if max_new_tokens is None else max_new_tokens
    context = backend.context_length
    budget = context - new_tokens if context else None
    count = backend.count_tokens if budget is not None else None
    items: list[Item] = []
    for inst in tests:
        demos = sample_demos(pool, k, seed=seed, task_id=entry.id, instance=inst)
        fitted = fit_prompt(definition, inst, demos, count=count, budget=budget, style=style)
        rendered = backend.render(fitted.prompt)
        room, error = new_tokens, None
        if fitted.over_budget and context and fitted.tokens is not None:
            # The query alone overflows the generation room: shorten the room, or fail the item if none is left.
            room = context - fitted.tokens
            if room <= 0:
                error = f"prompt of {fitted.tokens} tokens does not fit the model context of {context} (the query is never cut)"
                room = new_tokens
        items.append(
            Item(
                task_id=entry.id,
                category=entry.category,
                language=entry.language,
                instance=inst,
                text=rendered.text,
                messages=rendered.messages,
                prompt=rendered.prompt,
                demo_ids=fitted.prompt.demo_ids,
                truncated=fitted.truncated,
                max_new_tokens=room,
                error=error,
            )
        )
    return TaskPlan(entry, files, definition, n_total, items, new_tokens)


def file_hashes(files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {split: {"path": str(p), "sha256": sha256_file(p)} for split, p in sorted(files.items())}
