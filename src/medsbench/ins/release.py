"""Import the released MedS-Ins (Hugging Face dataset ``Henrychur/MedS-Ins``) as train-split task files.

The release is a flat folder of task files ``task<N>_<dataset>_<task>.json`` in the
Super-NaturalInstructions shape (one object with ``Definition``, ``Categories``, ...,
``Instances``), some several GB. :func:`pull_release` takes a pinned revision from the
Hub (or the local Hugging Face cache, offline) through the same snapshot step as
``medsbench data pull`` (:func:`medsbench.tasks.pull.snapshot`); :func:`import_release`
imports a local copy of that layout.

Every file is streamed (``medsbench.tasks.read_meta`` / ``iter_instances``: a multi-GB
file is never held in memory) into ``OUT/task<N>_<name>.train.jsonl`` (our JSONL
layout, written atomically), with ``medsbench`` metadata: the task id, ``split:
train``, the MedS-Ins category and where it came from (``category_basis``: the file's
own ``Categories``, the MedS-Bench catalog, the task table ``meds_ins_tasks.yaml``,
or ``unknown``), and the source (repo, revision, commit, path, sha256). A file whose
recorded sha256 matches is not imported again. ``medsbench ins build --tasks OUT``
then builds a mixture from the release, decontaminated against the benchmark test
files of the workspace (released or converted).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any


from medsbench.settings import read_settings
from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file
from medsbench.tasks.catalog import INS_CATEGORY_OF, LANGUAGE_CODES, catalog
from medsbench.tasks.format import META_HEADER, iter_instances, read_meta, write_task
from medsbench.tasks.pull import fill_meta, has_definition, missing_definition, recorded_source_sha256, release_files, slug, snapshot
from medsbench.tasks.catalog import task_order

HF_REPO = "Henrychur/MedS-Ins"
_TASK_FILE = re.compile(r"^(task\d+)_(.+)\.(?:json|jsonl)$")
LICENSE = "as released in Henrychur/MedS-Ins; each source dataset's own licence applies"


@dataclass(frozen=True)
class ListedTask:
    """A task of the paper's MedS-Ins list (``meds_ins_tasks.yaml``)."""

    task_id: str
    name: str | None
    category: str | None


@functools.lru_cache(maxsize=1)
def task_list() -> dict[str, ListedTask]:
    """The paper's 122 MedS-Ins tasks; benchmark ids take their category from the MedS-Bench catalog."""
    data = read_settings(resources.files("medsbench.ins").joinpath("meds_ins_tasks.yaml"), "MedS-Ins task list")
    cat = catalog()
    out = {}
    for tid, row in data["tasks"].items():
        entry = cat.get(tid)
        category = row.get("category") or (INS_CATEGORY_OF[entry.category] if entry else None)
        out[tid] = ListedTask(tid, row.get("name"), category)
    return out


def category_of(task_id: str, meta: dict[str, Any]) -> tuple[str | None, str]:
    """(MedS-Ins category or None, basis): the file's own ``Categories``, else the task list, else unknown."""
    cats = meta.get("Categories")
    cats = [cats] if isinstance(cats, str) else cats
    if isinstance(cats, list) and cats and isinstance(cats[0], str) and cats[0].strip():
        return cats[0].strip(), "file"
    listed = task_list().get(task_id)
    if listed is not None and listed.category:
        return listed.category, "catalog" if catalog().get(task_id) else "task list"
    return None, "unknown"


@dataclass
class InsTask:
    task_id: str
    category: str | None
    category_basis: str
    path: Path
    instances: int
    source_path: str
    sha256: str
    status: str  # "imported" or "unchanged"


@dataclass
class InsPullReport:
    tasks: list[InsTask] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        """Ids of the paper's list that this import did not see."""
        seen = {t.task_id for t in self.tasks}
        return [tid for tid in task_list() if tid not in seen]


def _shape(path: Path) -> str:
    """``json`` (one task object, the release's shape) or ``jsonl-meta`` (our header layout); else an error."""
    if path.suffix == ".jsonl":
        with open(path, "rb") as fh:
            if META_HEADER.encode() not in fh.readline()[:64]:
                raise MedsbenchError(f'expected the JSONL task layout (a {{"{META_HEADER}": ...}} first line)', where=str(path))
        return "jsonl-meta"
    return "json"


@dataclass
class _Import:
    out: Path
    origin: dict[str, Any]
    definitions: dict[str, str]
    definitions_name: str | None
    report: InsPullReport
    seen: dict[str, str] = field(default_factory=dict)


def _metadata(tid: str, name: str, meta: dict[str, Any], rel: str, digest: str, shape: str, ctx: _Import) -> tuple[dict, str | None, str]:
    category, basis = category_of(tid, meta)
    listed = task_list().get(tid)
    if listed is None:
        ctx.report.warnings.append(f"{rel}: {tid} is not in the paper's MedS-Ins task list: imported as given")
    elif basis == "file" and listed.category and listed.category != category:
        ctx.report.warnings.append(f"{rel}: {tid} says '{category}', the task list '{listed.category}': kept the file's")
    if category is None:
        ctx.report.warnings.append(f"{rel}: {tid}'s MedS-Ins category is unknown (the file has no Categories and the "
                                   "task list none): imported as 'unknown'")
    if not has_definition(meta) and tid in ctx.definitions:
        meta["Definition"] = [ctx.definitions[tid]]
    lang = meta.get("Input_language")
    lang = lang[0] if isinstance(lang, list) and lang else lang
    language = LANGUAGE_CODES.get(str(lang).lower(), "en") if lang else "en"  # only fills keys the file lacks
    meta = fill_meta(meta, [category] if category else [], language, "MedS-Ins", ctx.origin.get("repo"))
    ours = dict(meta.get("medsbench") or {}) if isinstance(meta.get("medsbench"), dict) else {}
    ours.update({"task_id": tid, "slug": slug(name), "split": "train", "license": LICENSE, "ins_category": category,
                 "category_basis": basis, "source": {**ctx.origin, "path": rel, "sha256": digest, "shape": shape}})
    meta["medsbench"] = ours
    return meta, category, basis


def _import_file(path: Path, rel: str, ctx: _Import) -> None:
    m = _TASK_FILE.match(path.name)
    if not m:
        ctx.report.warnings.append(f"{rel}: not a task file name (task<N>_<name>.json): skipped")
        return
    tid, name = m.group(1), m.group(2)
    if tid in ctx.seen:
        ctx.report.errors.append(f"{rel}: {tid} already imported from {ctx.seen[tid]}: skipped")
        return
    ctx.seen[tid] = rel
    target = ctx.out / f"{tid}_{slug(name)}.train.jsonl"
    try:
        shape = _shape(path)
        digest = sha256_file(path)
        if recorded_source_sha256(target) == digest and has_definition(read_meta(target)):  # else: definitions may be given now
            ours = read_meta(target)["medsbench"]
            ctx.report.tasks.append(InsTask(tid, ours.get("ins_category"), ours.get("category_basis", "unknown"), target,
                                            _lines(target) - 1, rel, digest, "unchanged"))
            return
        meta, category, basis = _metadata(tid, name, read_meta(path), rel, digest, shape, ctx)
        n = _write(target, meta, path)
    except MedsbenchError as exc:
        ctx.report.errors.append(str(exc).replace(str(path), rel, 1) if exc.where else f"{rel}: {exc}")
        return
    if not has_definition(meta):
        ctx.report.errors.append(missing_definition(rel, tid, n, ctx.definitions_name))
    ctx.report.tasks.append(InsTask(tid, category, basis, target, n, rel, digest, "imported"))


def _write(target: Path, meta: dict[str, Any], source: Path) -> int:
    """Stream ``source``'s instances into ``target`` (JSONL layout, written atomically); returns their number."""
    return write_task(target, meta, iter_instances(source))


def _lines(path: Path) -> int:
    """Lines of a JSONL task file (the header and one per instance), counted without parsing."""
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
    return n


def import_release(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    definitions: dict[str, str] | None = None,
    definitions_name: str | None = None,
    origin: dict[str, Any] | None = None,
) -> InsPullReport:
    """Import a local copy of the MedS-Ins layout (``task<N>_<name>.json`` files) into ``out_dir``.

    Per-file problems are one line each in ``report.errors`` and the other files still import; a
    task whose category is unknown, or that is not in the paper's list, is a warning.
    """
    root = Path(source)
    if not root.is_dir():
        raise MedsbenchError("not a folder (expected a copy of the MedS-Ins release: task<N>_<name>.json files)", where=str(root))
    origin = dict(origin or {"kind": "local", "folder": str(root.resolve())})
    report = InsPullReport(source=origin)
    files = release_files(root, None)
    if not files:
        raise MedsbenchError("no task files (*.json, *.jsonl) in this folder", where=str(root))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = _Import(out, origin, definitions or {}, definitions_name, report)
    for path, rel in files:
        _import_file(path, rel, ctx)
    report.tasks.sort(key=lambda t: task_order(t.task_id))
    return report


def pull_release(
    out_dir: str | os.PathLike,
    *,
    repo: str = HF_REPO,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    definitions: dict[str, str] | None = None,
    definitions_name: str | None = None,
) -> InsPullReport:
    """Fetch a (pinned) revision of the release with ``snapshot_download`` (or the HF cache offline) and import it."""
    folder, origin = snapshot(repo, revision, ["*.json", "*.jsonl"], cache_dir, what="`medsbench ins pull` from the Hub")
    return import_release(folder, out_dir, definitions=definitions, definitions_name=definitions_name, origin=origin)


def summarize(report: InsPullReport) -> Iterable[str]:
    """One line per task (id, category and its basis, instances, status, file)."""
    for t in report.tasks:
        cat = f"{t.category or 'unknown'} ({t.category_basis})"
        yield f"{t.task_id:<8} {cat:<44} {t.instances:>9}  {t.status:<9} {t.path.name}  <- {t.source_path}"
