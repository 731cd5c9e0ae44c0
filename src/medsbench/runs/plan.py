"""Planning a run: selection -> task files -> items with their final (fitted, rendered) prompts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file, sha256_text
from medsbench.models.base import Backend
from medsbench.prompts import Fitted, build_prompt, fit_prompt, sample_demos
from medsbench.prompts.protocols import get_protocol
from medsbench.records.config import EvalConfig
from medsbench.records.loglik import ItemChoices
from medsbench.records.manifest import RunManifest
from medsbench.reporter import Reporter
from medsbench.tasks.catalog import CatalogEntry, catalog
from medsbench.tasks.format import Instance, iter_instances, read_meta
from medsbench.tasks.workspace import BUILD_HINT, resolve_tasks, validate_selected, workspace_entry

log = logging.getLogger(__name__)

# No token of a tokenizer we know decodes to more than 128 characters (SmolLM2's longest: 81, a run of
# spaces). A query of more than context x this many characters is therefore certainly longer than the
# context: its item fails at once, before its text is tokenized (a 50 MB input once took minutes and GBs
# in the tokenizer before failing anyway). Backends that know their tokenizer's longest token
# (``max_token_chars``, the hf backend) give a tighter bound; tokenizers whose normalizer deletes
# characters are not covered by either.
MAX_CHARS_PER_TOKEN = 128


def too_long(query: str, context: int | None, backend: Backend) -> str | None:
    """Why ``query`` certainly cannot fit ``context`` tokens, judged from its length alone (None: it may)."""
    if not context:
        return None
    per_token = getattr(backend, "max_token_chars", None) or MAX_CHARS_PER_TOKEN
    if len(query) <= context * per_token:
        return None
    return (f"input of {len(query)} characters is certainly longer than the model context of {context} tokens "
            f"(no token spans more than {per_token} characters); not tokenized")


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
    stop: tuple[str, ...] = ()  # the protocol's stop strings (part of the generation config)
    choices: ItemChoices | None = None  # --scoring loglik: the options scored instead of generating


@dataclass
class TaskPlan:
    entry: CatalogEntry
    files: dict[str, Path]
    definition: str
    n_total: int
    items: list[Item]
    max_new_tokens: int = 200
    protocol: str = "medsbench"
    shots: int | None = None  # demos requested per item (after protocol and --shots)


def prompt_template_sha256(style: str) -> str:
    """A fingerprint of the prompt format: the rendering of a fixed synthetic item with two demos."""
    demo = [Instance("d1", "<demo input 1>", ["<demo output 1>"]), Instance("d2", "<demo input 2>", ["<demo output 2>"])]
    p = build_prompt("<definition>", Instance("q", "<query>", ["<gold>"]), demo, style=style)
    return sha256_text(f"{style}\x1f{p.system}\x1f{p.user}\x1f{p.plain()}")


def plan_task(
    entry: CatalogEntry,
    files: dict[str, Path],
    backend: Backend,
    config: EvalConfig,
    *,
    definitions: dict[str, str],
) -> TaskPlan:
    """Every item of one task with its final prompt, as the run's ``config`` and its protocol say.

    The protocol (:mod:`medsbench.prompts.protocols`) sets the shots, the demo
    pool, the zero-shot framing, the generation limit, the stop strings, the
    definition source and the prompt budget; the config's ``shots``,
    ``max_new_tokens`` and ``stop`` win over it.
    """
    proto = get_protocol(config.protocol)
    style, seed = config.prompt_style, config.seed
    proto.check_style(style)
    test_path = files["test"]
    meta = read_meta(test_path)
    definition = definitions.get(entry.id) if proto.definition_source == "definitions_then_task_file" else None
    if definition is None:
        if definitions and entry.id in definitions:
            log.warning("%s: protocol %s uses the task file's Definition, not the --definitions file", entry.id, proto.name)
        raw = meta.get("Definition")
        definition = (raw[0] if isinstance(raw, list) and raw else raw) or ""
    k = proto.shots_for(entry.category, entry.shots, config.shots)
    frame = proto.frame_for(k)
    tests = list(iter_instances(test_path))
    n_total = len(tests)
    tests = tests[: config.items_of(n_total)]
    # Demos from the train split (else the full test split) or, officially, from the test file; never the item itself.
    pool: list[Instance] = []
    if k > 0:
        if proto.demo_pool == "train_else_test" and "train" in files:
            pool = list(iter_instances(files["train"]))
        else:
            pool = list(iter_instances(test_path))
    new_tokens = proto.new_tokens_for(entry.max_new_tokens, config.max_new_tokens)
    stop = config.stop if config.stop is not None else proto.stops_for(entry.category)
    context = backend.context_length
    # Backends that know their context can count tokens; API backends (no context) are never truncated.
    budget = context - new_tokens if context else None
    if budget is not None and proto.prompt_tokens is not None:
        budget = min(budget, proto.prompt_tokens)
    count = backend.count_tokens if budget is not None else None
    items: list[Item] = []
    for inst in tests:
        demos = sample_demos(pool, k, seed=seed, task_id=entry.id, instance=inst)
        error = too_long(inst.input, context, backend) if isinstance(inst.input, str) else None
        if error:  # the bare query, never tokenized (the item is never sent)
            fitted = Fitted(build_prompt(definition, inst, (), style=style, frame=frame), None, False)
        else:
            fitted = fit_prompt(definition, inst, demos, count=count, budget=budget, style=style, frame=frame)
        rendered = backend.render(fitted.prompt)
        room = new_tokens
        if fitted.over_budget and context and fitted.tokens is not None:
            # The query alone overflows the budget: shorten the room, or fail the item if none is left.
            room = min(new_tokens, context - fitted.tokens)
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
                stop=tuple(stop),
            )
        )
    return TaskPlan(entry, files, definition, n_total, items, new_tokens, protocol=proto.name, shots=k)


def file_hashes(files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {split: {"path": str(p), "sha256": sha256_file(p)} for split, p in sorted(files.items())}


#: Why a selected catalog task has no test file, by its catalog availability, and what to do.
SKIP_REASONS = {
    "credentialed": "credentialed data: put the official files in the raw folder, then `medsbench data convert`",
    "public-elsewhere": "public, not in the raw folder: `medsbench data pull` imports the released test file",
    "public-here": "raw data here, not converted: `medsbench data convert --all`",
}


def select_tasks(selection: str, tasks_dir: Path, reporter: Reporter) -> tuple[list[CatalogEntry], dict[str, dict[str, Path]]]:
    """A new run's tasks: the selection resolved against the workspace's task folder, files validated."""
    if not tasks_dir.is_dir():
        hint = BUILD_HINT.format(tasks=tasks_dir)
        raise MedsbenchError(f"no task files in {tasks_dir}: build them with `{hint}` (or pass --build-from RAW_DIR)")
    entries, files, skipped = resolve_tasks(selection, tasks_dir, validate=False)
    validate_selected({e.id: files[e.id] for e in entries})  # before any compute: file:index: field
    if skipped:
        reporter.message(f"skipping {len(skipped)} selected task(s) without a test file in {tasks_dir}:", "warning")
        cat = catalog()
        for tid in skipped:
            entry = cat.tasks[tid]
            why = SKIP_REASONS.get(entry.availability, "no test file")
            reporter.message(f"  {tid:<8} {entry.dataset}: {why}", "warning")
    return entries, files


def recorded_tasks(prev: RunManifest) -> tuple[list[CatalogEntry], dict[str, dict[str, Path]]]:
    """The catalog entries and the files a run recorded (a resume never re-scans the workspace)."""
    cat = catalog()
    files = {tid: {split: Path(f.path) for split, f in t.files.items()} for tid, t in prev.tasks.items()}
    entries = []
    for tid in prev.tasks:
        entry = cat.tasks.get(tid) or workspace_entry(tid, files[tid])
        if entry is None:
            raise MedsbenchError(f"the run's task {tid} is neither in the catalog nor a workspace task file")
        entries.append(entry)
    validate_selected(files)
    return entries, files
