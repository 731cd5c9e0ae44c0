"""The items every export writes: our prompts, rendered once, under one evaluation protocol.

An export never re-implements prompt building or demo sampling: :func:`export_tasks` plans each
task with :func:`medsbench.runs.plan.plan_task` (the planner ``medsbench eval`` uses) through a
backend that only records the prompt, and stores per item the instruction block (``system``), the
query (``user``) and their plain concatenation (``plain``, what a model without a chat template
gets). Harnesses then send these strings as they are, so their prompts equal ours byte for byte.

What differs from ``medsbench eval`` (named in every exported card): prompts are not fitted to a
model context (an export knows no model); a prompt longer than the model takes is cut by the
harness (lm-evaluation-harness keeps the end of the context), where ``medsbench eval`` drops demos.

Scoring goes back through :func:`medsbench.metrics.score_predictions`: :func:`score_rows` turns
the harness's outputs into prediction rows and returns both modes' metrics, so a harness reports
the numbers ``medsbench score`` gives on the same outputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import iter_jsonl, sha256_file, write_jsonl
from medsbench.ids import check_item_id, check_name
from medsbench.models.base import BaseBackend, Rendered
from medsbench.prompts import Prompt, render_messages
from medsbench.prompts.protocols import get_protocol
from medsbench.records.config import EvalConfig
from medsbench.workspace import Workspace
from medsbench.metrics import scorer_for_task
from medsbench.metrics import headline_metrics
from medsbench.runs.plan import file_hashes, plan_task
from medsbench.tasks.workspace import load_definitions, resolve_tasks
from medsbench.metrics import score_predictions

ITEM_FIELDS = ("task_id", "id", "category", "language", "input", "references", "system", "user", "plain", "demo_ids")


@dataclass(frozen=True)
class ExportSettings:
    """What to export: the run settings that shape prompts (an :class:`EvalConfig`: tasks, protocol,
    shots, seed, limit, token cap, stops, style, definitions; its model is not used) and the workspace."""

    config: EvalConfig
    workspace: Workspace = field(default_factory=Workspace)


@dataclass
class ExportTask:
    """One task's exported items and generation settings."""

    task_id: str
    slug: str  # the workspace file's slug, e.g. ``medqa_en``
    title: str
    category: str
    language: str
    scorer: str
    metrics: tuple[str, ...]  # headline metrics (strict); reference ones carry a ``ref_`` prefix
    max_new_tokens: int
    stop: tuple[str, ...]
    shots: int
    n_total: int
    files: dict[str, dict[str, str]]  # split -> {path, sha256}
    items: list[dict[str, Any]] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        """Everything but the items (what the exported configs record)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if k != "items"}


class _PromptOnly(BaseBackend):
    """A backend that never generates: it records the prompt as chat messages and as plain text."""

    name = "export"

    def render(self, prompt: Prompt) -> Rendered:
        return Rendered(render_messages(prompt), messages=prompt.messages(), prompt=prompt.plain())


def _scorer_name(entry: Any) -> str:

    scorer = scorer_for_task(entry)
    if scorer is None:
        raise MedsbenchError(f"{entry.id}: no scorer for its category {entry.category!r}")
    return scorer.name


def export_tasks(settings: ExportSettings) -> list[ExportTask]:
    """Plan the selected tasks under the settings' protocol; one :class:`ExportTask` per task."""

    config = settings.config
    protocol = get_protocol(config.protocol)
    entries, files, _skipped = resolve_tasks(config.tasks, settings.workspace.tasks)
    defs = load_definitions(config.definitions)
    backend = _PromptOnly()
    out = []
    for entry in entries:
        plan = plan_task(entry, files[entry.id], backend, config, definitions=defs)
        task = ExportTask(
            task_id=entry.id, slug=entry.slug, title=entry.title, category=entry.category, language=entry.language,
            scorer=_scorer_name(entry), metrics=tuple(headline_metrics(entry)),
            max_new_tokens=plan.max_new_tokens, stop=config.stop if config.stop is not None else protocol.stops_for(entry.category),
            shots=plan.shots or 0,
            n_total=plan.n_total, files=file_hashes(files[entry.id]),
        )
        for item in plan.items:
            messages = item.messages or []
            system = next((m["content"] for m in messages if m["role"] == "system"), "")
            task.items.append({
                "task_id": entry.id, "id": item.instance.id, "category": entry.category, "language": entry.language,
                "input": item.instance.input, "references": list(item.instance.output),
                "system": system, "user": messages[-1]["content"], "plain": item.prompt, "demo_ids": list(item.demo_ids),
            })
        out.append(task)
    return out


def write_items(path: str | os.PathLike, items: Iterable[dict[str, Any]]) -> str:
    """Write one task's items as JSONL (atomically); returns the file's sha256."""
    write_jsonl(path, items)
    return sha256_file(path)


def read_items(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read an exported items file, checking every line has the fields a harness needs."""
    rows = []
    for line, row in iter_jsonl(path, objects=True):
        where = f"{path}:{line}"
        missing = [k for k in ITEM_FIELDS if k not in row]
        if missing:
            raise MedsbenchError(f"not an exported items file: missing {', '.join(missing)}", where=where)
        check_name(row["task_id"], "task id", where)
        check_item_id(row["id"], where)
        if not all(isinstance(row[k], str) for k in ("input", "system", "user", "plain")):
            raise MedsbenchError("input, system, user and plain must be strings", where=where)
        rows.append(row)
    return rows


def prediction(item: dict[str, Any], output: str | None) -> dict[str, Any]:
    """The prediction row of an exported item answered with ``output`` (None: a failed item)."""
    refs = list(item["references"])
    return {
        "task_id": item["task_id"], "id": item["id"], "category": item["category"], "language": item["language"],
        "input": item["input"], "output": output, "reference": refs[0] if refs else None, "references": refs,
        "error": "no output" if output is None else None,
    }


def score_rows(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Both modes' metrics of every task in ``rows`` (prediction rows): {task_id: {metric: value}}.

    Strict metrics keep their names (``accuracy``, ``f1``, ``rougeL``...); reference (official
    script) metrics get a ``ref_`` prefix. The numbers are those of ``medsbench score`` (no CIs).
    """

    results = score_predictions(list(rows), bootstrap=0)
    return {
        tid: {**t.metrics, **{f"ref_{k}": v for k, v in t.reference.items()}}
        for tid, t in results.tasks.items()
    }
