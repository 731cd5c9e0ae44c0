"""Import the released MedS-Bench test files (Hugging Face dataset ``Henrychur/MedS-Bench``).

The release is organised in category folders (``MCQA/``, ``NER/``,
``Fact_verication/`` [sic], ...) of task files named ``task<N>_<name>.json``
or ``.jsonl``. ``pull_hub`` fetches a (pinned) revision with
``huggingface_hub.snapshot_download`` (``allow_patterns`` picks category
folders; with ``HF_HUB_OFFLINE=1`` it resolves from the local Hugging Face
cache); ``import_release`` imports a local copy of that layout into a
workspace task folder as ``<task_id>_<slug>.test.json`` (the names
:func:`medsbench.tasks.workspace.find_task_files` reads), so
``medsbench eval --tasks all|<category>|taskN`` finds them.

Accepted file shapes (sniffed, whatever the extension):

* one JSON object with ``Definition``, ``Instances``, ... (the official shape;
  the released ``.jsonl`` files are read this way by the official
  ``Evaluation/EvalDataset.py`` too);
* our JSONL layout: a ``{"__meta__": {...}}`` header line, then one instance
  per line (:mod:`medsbench.tasks.format`);
* one instance object per line (``input``, ``output``, optional ``id``); the
  definition then comes from ``definitions`` (RewriteDefinitions.json).

Each written file records its origin in the ``medsbench`` metadata key:
``source = {repo, revision, commit, path, sha256, shape}``.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from medsbench.errors import MedsbenchError, require
from medsbench.fileio import sha256_file
from medsbench.tasks.catalog import INS_CATEGORY_OF, LANGUAGE_NAMES, catalog
from medsbench.tasks.format import META_HEADER, REQUIRED_KEYS, Instance, write_task
from medsbench.tasks.format import read_meta
from medsbench.tasks.workspace import check_task_file
from medsbench.tasks.catalog import task_order
from medsbench.tasks.workspace import find_task_files

log = logging.getLogger(__name__)

HF_REPO = "Henrychur/MedS-Bench"
# Release folder (normalised: lower case, non-alphanumerics -> "_") -> MedS-Bench category key.
FOLDER_CATEGORY: dict[str, str] = {
    "mcqa": "mcqa",
    "text_summarization": "summarization",
    "summarization": "summarization",
    "information_extraction": "information_extraction",
    "explanation": "explanation",
    "rationale": "rationale",
    "ner": "ner",
    "named_entity_recognition": "ner",
    "diagnosis": "diagnosis",
    "treatment_planning": "treatment_planning",
    "text_classification": "text_classification",
    "fact_verication": "fact_verification",  # the release's spelling
    "fact_verification": "fact_verification",
    "nli": "nli",
    "natural_language_inference": "nli",
    "clinical_outcome": "clinical_outcome",
    "clinical_outcome_prediction": "clinical_outcome",
}
# The release's own folder names, used for allow_patterns (plus the spellings above, case-sensitively as listed).
RELEASE_FOLDERS: dict[str, tuple[str, ...]] = {
    "mcqa": ("MCQA",),
    "summarization": ("Text_summarization",),
    "information_extraction": ("Information_extraction",),
    "explanation": ("Explanation",),
    "rationale": ("Rationale",),
    "ner": ("NER",),
    "diagnosis": ("Diagnosis",),
    "treatment_planning": ("Treatment_planning",),
    "text_classification": ("Text_classification",),
    "fact_verification": ("Fact_verication", "Fact_verification"),
    "nli": ("NLI",),
    "clinical_outcome": ("Clinical_outcome_prediction", "Clinical_outcome", "Clinical_Outcome_Prediction"),
}
_TASK_FILE = re.compile(r"^(task\d+)(?:_(.*?))?\.(?:json|jsonl)$")


@dataclass
class PulledTask:
    task_id: str
    category: str
    path: Path
    instances: int
    source_path: str
    sha256: str
    shape: str
    in_catalog: bool


@dataclass
class PullReport:
    tasks: list[PulledTask] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)


def folder_category(folder: str) -> str | None:
    """The MedS-Bench category key of a release folder name (``Fact_verication`` -> ``fact_verification``)."""
    key = re.sub(r"[^a-z0-9]+", "_", folder.lower()).strip("_")
    return FOLDER_CATEGORY.get(key)


def category_patterns(categories: Sequence[str] | None) -> list[str] | None:
    """``allow_patterns`` for the chosen categories (category keys or release folder names); None = everything."""
    if not categories:
        return None
    cat = catalog()
    patterns: list[str] = []
    for raw in categories:
        for item in (s.strip() for s in raw.split(",")):
            if not item:
                continue
            key = item if item in RELEASE_FOLDERS else folder_category(item)
            if key is None:
                known = ", ".join(sorted(RELEASE_FOLDERS))
                raise MedsbenchError(f"unknown category '{item}' (category keys: {known}; or a release folder name such as MCQA)")
            patterns.extend(f"{folder}/*" for folder in RELEASE_FOLDERS[key])
            # Files outside the category folders (e.g. clinical-outcome files at the top level): by task id.
            patterns.extend(f"{e.id}_*" for e in cat.by_category(key))
    return sorted(set(patterns))


def _matches(rel: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatch(rel, p) for p in patterns)


def _instances_from(items: Any, where: str) -> list[Instance]:
    if not isinstance(items, list):
        raise MedsbenchError("Instances: missing or not a list", where=where)
    return [Instance.from_json(it, i, where) for i, it in enumerate(items)]


def read_release_file(path: str | os.PathLike) -> tuple[dict[str, Any], list[Instance], str]:
    """(metadata, instances, shape) of a released task file in any accepted shape (module docstring)."""
    path = Path(path)
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MedsbenchError("file not found", where=where) from None
    except OSError as exc:
        raise MedsbenchError(f"cannot read: {exc.strerror or exc}", where=where) from None
    whole_error: orjson.JSONDecodeError | None = None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        whole_error = exc
    else:
        if isinstance(obj, dict) and "Instances" in obj:
            whole_meta = {k: v for k, v in obj.items() if k != "Instances"}
            return whole_meta, _instances_from(obj["Instances"], where), "json"
        if isinstance(obj, list):
            return {}, _instances_from(obj, where), "json-list"
        if isinstance(obj, dict) and META_HEADER not in obj and "input" not in obj:
            raise MedsbenchError("a task file must hold an object with Instances (or one instance per line)", where=where)
    lines = [(n, raw) for n, raw in enumerate(data.splitlines(), 1) if raw.strip()]
    if not lines:
        raise MedsbenchError("empty file", where=where)
    rows: list[tuple[int, Any]] = []
    for n, raw in lines:
        try:
            rows.append((n, orjson.loads(raw)))
        except orjson.JSONDecodeError as exc:
            if whole_error is not None and not rows:
                # Not JSON lines either: report the error of the file read as one JSON document.
                line = data[: whole_error.pos].count(b"\n") + 1
                raise MedsbenchError(f"invalid JSON: {whole_error.msg}", where=f"{path}:{line}") from None
            raise MedsbenchError(f"invalid JSON: {exc.msg}", where=f"{path}:{n}") from None
    meta: dict[str, Any] = {}
    shape = "jsonl-instances"
    first = rows[0][1]
    if isinstance(first, dict) and isinstance(first.get(META_HEADER), dict):
        meta, rows, shape = dict(first[META_HEADER]), rows[1:], "jsonl-meta"
    instances = []
    for index, (n, obj) in enumerate(rows):
        if not isinstance(obj, dict):
            raise MedsbenchError(f"instance must be an object, got {type(obj).__name__}", where=f"{path}:{n}")
        instances.append(Instance.from_json(obj, index, where))
    return meta, instances, shape


def slug(text: str) -> str:
    """A file-name part from a task name: lower case, ``_`` between alphanumeric runs, at most 60 characters."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "task"


def fill_meta(meta: dict[str, Any], categories: list[str], language: str, release: str, repo: str | None) -> dict[str, Any]:
    """Add the task-file keys a released file (of ``release``, e.g. MedS-Bench) may lack (never overwrites what it has)."""
    lang = LANGUAGE_NAMES.get(language, "English")
    defaults: dict[str, Any] = {
        "Contributors": [],
        "Source": [f"{release} ({repo})" if repo else release],
        "URL": [f"https://huggingface.co/datasets/{repo}"] if repo else [],
        "Categories": categories,
        "Reasoning": [],
        "Input_language": [lang],
        "Output_language": [lang],
        "Instruction_language": ["English"],
        "Domains": ["Medicine"],
        "Positive Examples": [],
        "Negative Examples": [],
    }
    out = dict(meta)
    for key in REQUIRED_KEYS:
        if key != "Instances" and key not in out:
            out[key] = defaults.get(key, [])
    return out


def release_files(root: Path, patterns: list[str] | None) -> list[tuple[Path, str]]:
    """(path, path relative to ``root``) of every task file (``*.json``, ``*.jsonl``, not hidden) matching ``patterns``."""
    files: list[tuple[Path, str]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        if path.suffix not in (".json", ".jsonl") or not (path.is_file() or path.is_symlink()):
            continue
        if _matches(rel, patterns):
            files.append((path, rel))
    return files


def recorded_source_sha256(path: Path) -> str | None:
    """The released file's sha256 recorded in a task file written by an earlier import (None: no such
    file, or not written by an import)."""
    if not path.exists():
        return None
    try:
        ours = read_meta(path).get("medsbench")
    except MedsbenchError:
        return None
    source = ours.get("source") if isinstance(ours, dict) else None
    return source.get("sha256") if isinstance(source, dict) else None


@dataclass
class _Import:
    """What every file of one import shares."""

    out: Path
    existing: dict[str, dict[str, Path]]
    definitions: dict[str, str]
    definitions_name: str | None  # the --definitions file's name, when one was given
    origin: dict[str, Any]
    report: PullReport
    seen: dict[str, str] = field(default_factory=dict)


def _category(rel: str, tid: str, ctx: _Import) -> str | None:
    """The MedS-Bench category of a released file: the catalog's, else its folder's (None: skipped, with an error)."""
    folder = rel.split("/")[0] if "/" in rel else None
    from_folder = folder_category(folder) if folder else None
    entry = catalog().get(tid)
    if entry is not None:
        if from_folder is not None and from_folder != entry.category:
            ctx.report.warnings.append(
                f"{rel}: {tid} is '{entry.category}' in the catalog but sits in folder {folder} ('{from_folder}'): "
                f"kept as '{entry.category}'"
            )
        return entry.category
    if from_folder is not None:
        ctx.report.warnings.append(f"{rel}: {tid} is not in the catalog: imported as '{from_folder}' (from its folder)")
        return from_folder
    ctx.report.errors.append(f"{rel}: {tid} is not in the catalog and its folder names no category: skipped")
    return None


def has_definition(meta: dict[str, Any]) -> bool:
    raw = meta.get("Definition")
    return any(isinstance(d, str) and d.strip() for d in (raw if isinstance(raw, list) else [raw]))


def missing_definition(rel: str, tid: str, n: int, definitions_name: str | None) -> str:
    """The one line for a task file without a Definition: what it holds, what is missing, the remedy."""
    where = (f"and {definitions_name} (--definitions) has none for {tid}" if definitions_name
             else "and no --definitions file was given")
    remedy = (f"give a --definitions file that has {tid}" if definitions_name
              else "re-run with --definitions RewriteDefinitions.json (the paper's task definitions)")
    return (f"{rel}: holds {n} instance(s) but no Definition (the task's instruction) {where}; imported without one, "
            f"so it cannot be prompted until it has one: {remedy}")


def _import_file(path: Path, rel: str, ctx: _Import) -> None:
    m = _TASK_FILE.match(path.name)
    if not m:
        ctx.report.warnings.append(f"{rel}: no task id in the file name (task<N>_...): skipped")
        return
    tid, name = m.group(1), m.group(2) or ""
    if tid in ctx.seen:
        ctx.report.errors.append(f"{rel}: {tid} already imported from {ctx.seen[tid]}: skipped")
        return
    category = _category(rel, tid, ctx)
    if category is None:
        return
    try:
        meta, instances, shape = read_release_file(path)
    except MedsbenchError as exc:
        ctx.report.errors.append(str(exc).replace(str(path), rel, 1) if exc.where else f"{rel}: {exc}")
        return
    if not has_definition(meta):
        if tid in ctx.definitions:
            meta["Definition"] = [ctx.definitions[tid]]
        else:
            ctx.report.errors.append(missing_definition(rel, tid, len(instances), ctx.definitions_name))
    entry = catalog().get(tid)
    language = entry.language if entry else "en"
    meta = fill_meta(meta, [INS_CATEGORY_OF[category]], language, "MedS-Bench", ctx.origin.get("repo"))
    digest = sha256_file(path)
    ours = dict(meta.get("medsbench") or {}) if isinstance(meta.get("medsbench"), dict) else {}
    ours.update({"task_id": tid, "slug": entry.slug if entry else slug(name), "split": "test", "bench_category": category,
                 "source": {**ctx.origin, "path": rel, "sha256": digest, "shape": shape}})
    if entry is None:
        ours.update({"title": name.replace("_", " ") or tid, "language": language})
    meta["medsbench"] = ours
    target = ctx.existing.get(tid, {}).get("test") or ctx.out / (entry.file_name("test") if entry else f"{tid}_{ours['slug']}.test.json")
    if target.exists() and recorded_source_sha256(target) != digest:
        log.info("%s: replacing %s", tid, target)
        ctx.report.warnings.append(f"{rel}: replaces the existing test split of {tid} ({target.name})")
    write_task(target, meta, instances)
    ctx.seen[tid] = rel
    if has_definition(meta):

        try:
            check_task_file(target)
        except MedsbenchError as exc:
            ctx.report.warnings.append(f"{rel}: imported, but eval will refuse it: {exc}")
    ctx.report.tasks.append(PulledTask(tid, category, target, len(instances), rel, digest, shape, entry is not None))


def import_release(
    source: str | os.PathLike,
    tasks_dir: str | os.PathLike,
    *,
    categories: Sequence[str] | None = None,
    definitions: dict[str, str] | None = None,
    origin: dict[str, Any] | None = None,
    definitions_name: str | None = None,
) -> PullReport:
    """Import a local copy of the release layout into ``tasks_dir``.

    Per-file problems (unreadable file, category unknown) are collected in
    ``report.errors`` (one line each) and the other files still import; a file
    without a Definition (and none in ``definitions``) is imported as it is, with an
    error line saying what is missing. Category disagreements and ids missing
    from the catalog are ``report.warnings``. ``origin`` (repo, revision, commit)
    is recorded in every written file; ``definitions_name`` names the
    ``--definitions`` file in messages.
    """

    root = Path(source)
    if not root.is_dir():
        raise MedsbenchError("not a folder (expected a copy of the MedS-Bench release: MCQA/, NER/, ...)", where=str(root))
    origin = dict(origin or {"kind": "local", "folder": str(root.resolve())})
    report = PullReport(source=origin)
    files = release_files(root, category_patterns(categories))
    if not files:
        what = f" for {', '.join(categories)}" if categories else ""
        raise MedsbenchError(f"no task files (*.json, *.jsonl){what} in this folder", where=str(root))
    out = Path(tasks_dir)
    ctx = _Import(out, find_task_files(out), definitions or {}, definitions_name, origin, report)
    for path, rel in files:
        _import_file(path, rel, ctx)
    report.tasks.sort(key=lambda t: task_order(t.task_id))
    return report


def _hub_error(exc: Exception, repo: str, revision: str | None) -> MedsbenchError:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    name = type(exc).__name__
    at = f"{repo}@{revision or 'main'}"
    if name == "LocalEntryNotFoundError":
        return MedsbenchError(f"{at}: not in the Hugging Face cache and the Hub is not reachable (offline?): {first}")
    if name == "RevisionNotFoundError":
        return MedsbenchError(f"{at}: no such revision on the Hub")
    if name in ("RepositoryNotFoundError", "GatedRepoError"):
        return MedsbenchError(f"{at}: dataset repository not found or not accessible")
    if name == "IncompleteSnapshotError":
        return MedsbenchError(f"{at}: the cached snapshot is incomplete: {first}")
    return MedsbenchError(f"{at}: download failed ({name}: {first})")


def snapshot(
    repo: str, revision: str | None, patterns: list[str] | None, cache_dir: str | os.PathLike | None, *, what: str,
) -> tuple[Path, dict[str, Any]]:
    """A (pinned) revision of a Hugging Face dataset: the local snapshot folder and its origin record
    ``{kind, repo, revision, commit}``. ``snapshot_download`` fetches it, or resolves it from the local
    cache with ``HF_HUB_OFFLINE=1``; ``patterns`` are its ``allow_patterns``. Shared by ``data pull``
    (MedS-Bench) and ``ins pull`` (MedS-Ins)."""
    hub = require("huggingface_hub", "hf", what)
    try:
        folder = hub.snapshot_download(
            repo_id=repo,
            repo_type="dataset",
            revision=revision,
            allow_patterns=patterns,
            cache_dir=str(cache_dir) if cache_dir is not None else None,
        )
    except (OSError, ValueError) as exc:  # huggingface_hub's errors derive from these
        raise _hub_error(exc, repo, revision) from None
    except Exception as exc:
        if type(exc).__module__.startswith("huggingface_hub"):
            raise _hub_error(exc, repo, revision) from None
        raise
    path = Path(folder)
    commit = path.name if path.parent.name == "snapshots" else None
    return path, {"kind": "huggingface", "repo": repo, "revision": revision or "main", "commit": commit}


def pull_hub(
    tasks_dir: str | os.PathLike,
    *,
    repo: str = HF_REPO,
    revision: str | None = None,
    categories: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    definitions: dict[str, str] | None = None,
    definitions_name: str | None = None,
) -> PullReport:
    """Fetch the release with ``snapshot_download`` (or resolve it from the HF cache offline) and import it."""
    folder, origin = snapshot(repo, revision, category_patterns(categories), cache_dir, what="`medsbench data pull` from the Hub")
    return import_release(folder, tasks_dir, categories=categories, definitions=definitions, origin=origin,
                          definitions_name=definitions_name)


def summarize(report: PullReport) -> Iterable[str]:
    """One line per imported task (id, category, instances, file)."""
    for t in report.tasks:
        yield f"{t.task_id:<8} {t.category:<22} {t.instances:>6}  {t.path.name}  <- {t.source_path}"
