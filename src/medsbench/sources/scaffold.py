"""``medsbench data new-task``: a contributor's starting point for a new task.

:func:`scaffold_task` writes, into one folder:

* ``<task_id>_<slug>.test.json``: a task file in the official format (made with
  :func:`medsbench.sources.registry.task_meta`, as every converter's files are) with the definition,
  licence, source, split rule, one positive and one negative example and two example instances, all
  marked ``TODO`` until replaced; it validates (``medsbench data validate``) with warnings only;
* ``<slug>.py``: a converter stub in the registry's shape (``@register_source``, ``require_file``,
  ``TaskSpec``, ``write_splits``, ``hash_split``) that reads ``RAW/<slug>/<slug>.jsonl`` (one
  ``{"id", "input", "output"}`` object per line) and writes the test and train files; adapt its
  reader to the raw release, then move it to ``src/medsbench/sources/converters/`` (imported, and so
  registered, automatically);
* ``test_<slug>.py``: a test that runs the converter on a tiny raw file and validates its output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import atomic_write
from medsbench.ids import check_name, inside
from medsbench.sources.registry import HASH_SPLIT_NOTE, TaskSpec, task_meta
from medsbench.tasks.catalog import INS_CATEGORY_OF, LANGUAGE_NAMES, catalog
from medsbench.tasks.format import Instance, write_task
from medsbench.tasks.validate import SCAFFOLD_MARK as TODO

SPLIT_RULES = ("hash", "official")


@dataclass(frozen=True)
class NewTask:
    """What ``data new-task`` asks for (every text may be edited later in the files)."""

    name: str  # the slug: file names and the converter's registered name
    category: str  # a MedS-Bench category key (mcqa, ner, summarization, ...)
    task_id: str | None = None  # default: the name
    title: str | None = None
    language: str = "en"
    source: str = f"{TODO}: dataset name"
    url: str = f"{TODO}: https://..."
    license: str = f"{TODO}: licence (e.g. CC BY 4.0)"
    definition: str | None = None
    split: str = "hash"

    @property
    def id(self) -> str:
        return self.task_id or self.name

    def check(self) -> None:
        check_name(self.name, "task name")
        check_name(self.id, "task id")
        if not self.name.replace("_", "").isalnum() or not self.name[0].isalpha():
            raise MedsbenchError(f"task name {self.name!r}: use letters, digits and '_' (it names a Python module)")
        cats = catalog().categories
        if self.category not in cats:
            raise MedsbenchError(f"unknown category '{self.category}' (known: {', '.join(cats)})")
        if self.language not in LANGUAGE_NAMES:
            raise MedsbenchError(f"unknown language '{self.language}' (known: {', '.join(LANGUAGE_NAMES)})")
        if self.split not in SPLIT_RULES:
            raise MedsbenchError(f"unknown split rule '{self.split}' (known: {', '.join(SPLIT_RULES)})")
        if self.id in catalog().tasks:
            raise MedsbenchError(f"task id {self.id} is a catalog task already: pick another --task-id")


def split_method(rule: str) -> str:
    return HASH_SPLIT_NOTE if rule == "hash" else "official split of the source release: test.jsonl / train.jsonl"


def _definition(task: NewTask) -> str:
    if task.definition:
        return task.definition
    return f"{TODO}: say what the model is given, what it must do, and the exact answer format."


def task_file_meta(task: NewTask) -> dict[str, Any]:
    """The scaffold's task metadata (what :func:`medsbench.sources.registry.task_meta` writes, plus examples)."""
    spec = TaskSpec(task_id=task.id, slug=task.name, definition=_definition(task), source=task.source, url=task.url,
                    license=task.license, category=INS_CATEGORY_OF[task.category], language=task.language)
    meta = task_meta(spec, "test", split_method(task.split),
                     extra={"bench_category": task.category, "title": task.title or task.name, "scaffold": TODO})
    meta["Contributors"] = [f"{TODO}: your name"]
    meta["Positive Examples"] = [{"input": f"{TODO}: an input from the TRAIN split", "output": f"{TODO}: its correct answer",
                                  "explanation": f"{TODO}: why this answer follows the definition"}]
    meta["Negative Examples"] = [{"input": f"{TODO}: the same kind of input", "output": f"{TODO}: a wrong or badly formatted answer",
                                  "explanation": f"{TODO}: what is wrong with it"}]
    return meta


def scaffold_task(task: NewTask, out: str | os.PathLike) -> list[Path]:
    """Write the task file, the converter stub and its test into ``out``; refuses to overwrite."""
    task.check()
    out = Path(out)
    targets = [inside(out, f"{task.id}_{task.name}.test.json"), inside(out, f"{task.name}.py"), inside(out, f"test_{task.name}.py")]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise MedsbenchError(f"refusing to overwrite {', '.join(existing)}")
    out.mkdir(parents=True, exist_ok=True)
    examples = [Instance(id=f"example-{i}", input=f"{TODO}: input {i}", output=[f"{TODO}: answer {i}"]) for i in (1, 2)]
    write_task(targets[0], task_file_meta(task), examples)
    with atomic_write(targets[1]) as fh:
        fh.write(converter_source(task))
    with atomic_write(targets[2]) as fh:
        fh.write(test_source(task))
    return targets


def converter_source(task: NewTask) -> str:
    """The converter stub's Python source."""
    name = task.name
    split_code = (
        "    rows = [(row, hash_split(str(row[\"id\"]), salt=TASK_ID)) for row in read_rows(require_file(raw_dir, f\"{NAME}.jsonl\"))]"
        if task.split == "hash" else
        "    rows = [(row, split) for split in (\"test\", \"train\") for row in read_rows(require_file(raw_dir, f\"{split}.jsonl\"))]"
    )
    return f'''"""{task.title or name}: converter for the {task.category} task {task.id} (written by `medsbench data new-task`).

Reads RAW/{name}/{f"{name}.jsonl" if task.split == "hash" else "test.jsonl and train.jsonl"}: one JSON object per line with "id", "input" and
"output" (a string or a list of references). Adapt ``read_rows`` to the raw release's own files,
then move this module to src/medsbench/sources/converters/ (imported, so registered, automatically).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import iter_jsonl
from medsbench.sources.registry import TaskSpec, hash_split, register_source, require_file, write_splits
from medsbench.tasks.catalog import INS_CATEGORY_OF
from medsbench.tasks.format import Instance

NAME = {name!r}
TASK_ID = {task.id!r}
CATEGORY = {task.category!r}  # MedS-Bench category key: picks the scorer, shots and generation limit
LANGUAGE = {task.language!r}
DEFINITION = {_definition(task)!r}
SOURCE = {task.source!r}
URL = {task.url!r}
LICENSE = {task.license!r}
SPLIT_METHOD = {split_method(task.split)!r}
SPEC = TaskSpec(task_id=TASK_ID, slug=NAME, definition=DEFINITION, source=SOURCE, url=URL, license=LICENSE,
                category=INS_CATEGORY_OF[CATEGORY], language=LANGUAGE)


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The raw items: adapt to the release (CSV, XML, brat, ...). Errors name the file and line."""
    for line, row in iter_jsonl(path, objects=True):
        if not row.get("input") or not row.get("output"):
            raise MedsbenchError("empty input or output", where=f"{{path}}:{{line}}")
        yield {{"id": row.get("id", line), "input": row["input"], "output": row["output"]}}


@register_source(NAME, description={(task.title or name) + f" ({task.split} split)"!r}, raw_folder=NAME)
def convert(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    if options:
        raise MedsbenchError(f"converter {{NAME}} takes no options (got {{', '.join(sorted(options))}})")
{split_code}
    splits: dict[str, list[Instance]] = {{"test": [], "train": []}}
    for row, split in rows:
        output = [row["output"]] if isinstance(row["output"], str) else [str(o) for o in row["output"]]
        splits[split].append(Instance(id=str(row["id"]), input=row["input"], output=output))
    # write_splits writes test first and keeps an input once per task: train never repeats a test input
    return write_splits(out_dir, SPEC, splits, split_method=SPLIT_METHOD, require=("test",),
                        extra={{"bench_category": CATEGORY, "title": {(task.title or name)!r}}})
'''


def test_source(task: NewTask) -> str:
    """The test stub's Python source: the converter on a tiny raw file, its files validated."""
    if task.split == "official":
        write = (
            '    (raw / "test.jsonl").write_text(lines(rows))\n'
            '    (raw / "train.jsonl").write_text(lines([{**r, "id": "t" + r["id"], "input": "train " + r["input"]} for r in rows]))\n'
        )
    else:
        write = f'    (raw / "{task.name}.jsonl").write_text(lines(rows))\n'
    return f'''"""The {task.name} converter on a tiny raw file writes valid task files (written by `medsbench data new-task`)."""

import json

from medsbench.sources import convert
from medsbench.tasks.validate import validate_file


def lines(rows):
    return "".join(json.dumps(r) + "\\n" for r in rows)


def test_{task.name}_converter(tmp_path):
    raw = tmp_path / "raw" / "{task.name}"
    raw.mkdir(parents=True)
    rows = [{{"id": str(i), "input": f"example input {{i}}", "output": f"answer {{i % 3}}"}} for i in range(40)]
{write}    written = convert("{task.name}", raw, tmp_path / "tasks")
    assert sorted(p.name.rsplit(".", 2)[1] for p in written) == {sorted(["test", "train"])!r}
    for path in written:
        assert [str(p) for p in validate_file(path) if p.level == "error"] == []
'''
