"""Validation of task files, in the spirit of Super-NaturalInstructions' checks.

Every problem is reported as ``file:instance-index: field: message`` (metadata
problems omit the index). Errors make ``medsbench data validate`` exit 1;
warnings (few instances, low label entropy) do not. Instances are streamed and
only 8-byte digests of ids and inputs are kept, so validating a multi-GB file
needs memory proportional to the number of instances, not their size.
"""

from __future__ import annotations

from array import array
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import text_key
from medsbench.tasks.catalog import INS_CATEGORIES
from medsbench.tasks.format import REQUIRED_KEYS, iter_instances, read_meta

MIN_INSTANCES = 25
SCAFFOLD_MARK = "TODO(new-task)"  # the placeholder `medsbench data new-task` writes (medsbench.sources.scaffold)
# Inputs longer than this many characters are far beyond the context of the models this benchmark runs
# (2k-128k tokens of ~4 characters): warned, not refused, since a run fails such an item on its own
# without tokenizing it (medsbench.runs.plan.too_long).
HUGE_INPUT_CHARS = 1_000_000
# Language names as the official files write them (Title case English names).
KNOWN_LANGUAGES = frozenset(
    {"English", "Chinese", "Japanese", "French", "Russian", "Spanish", "German", "Korean", "Italian", "Portuguese", "Arabic", "Hindi"}
)
_LANGUAGE_KEYS = ("Input_language", "Output_language", "Instruction_language")
_LIST_OF_STR_KEYS = ("Categories", "Definition", "Domains", *_LANGUAGE_KEYS)
_STR_OR_LIST_KEYS = ("Contributors", "Source", "URL")
_LIST_KEYS = ("Reasoning", "Positive Examples", "Negative Examples")
_CATEGORY_LOOKUP = {c.lower(): c for c in INS_CATEGORIES}
# What each top-level key holds, for the fix hints.
_KEY_HINT = {
    "Definition": '["Given ..., answer with ..."]',
    "Categories": '["Question Answering"]',
    "Source": '["dataset name"]',
    "URL": '["https://..."]',
    "Contributors": '["your name"]',
    "Input_language": '["English"]',
    "Output_language": '["English"]',
    "Instruction_language": '["English"]',
    "Domains": '["Medicine"]',
    "Reasoning": "[]",
    "Positive Examples": '[{"input": "...", "output": "...", "explanation": "..."}]',
    "Negative Examples": '[{"input": "...", "output": "...", "explanation": "..."}]',
    "Instances": '[{"id": "1", "input": "...", "output": ["..."]}]',
}


@dataclass(frozen=True)
class Problem:
    path: str
    index: int | None
    field: str
    message: str
    level: str = "error"  # or "warning"
    fix: str = ""  # how to fix it, shown after the message

    def __str__(self) -> str:
        where = self.path if self.index is None else f"{self.path}:{self.index}"
        return f"{where}: {self.field}: {self.message}" + (f" (fix: {self.fix})" if self.fix else "")


def _digest(text: str) -> bytes:
    return text_key(text)


def _digest_int(text: str) -> int:
    return int.from_bytes(_digest(text), "little")


def _duplicates(digests: array) -> Iterator[tuple[int, int]]:
    """(index, first index with the same digest) for every repeat, via one stable sort.

    Keeping 8-byte digests in an array instead of a dict holds validation of a
    1M-instance file to ~16 MB of index instead of ~200 MB.
    """
    import numpy as np

    if len(digests) < 2:
        return
    values = np.frombuffer(digests, dtype=np.uint64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    repeat = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1
    if repeat.size == 0:
        return
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    group_start = starts[np.searchsorted(starts, repeat, side="right") - 1]
    for pos, first in zip(order[repeat].tolist(), order[group_start].tolist()):
        yield pos, first


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_meta(path: str, meta: dict[str, Any]) -> Iterator[Problem]:
    for key in REQUIRED_KEYS:
        if key != "Instances" and key not in meta:
            yield Problem(path, None, key, "missing required key", fix=f"add \"{key}\" ({_KEY_HINT.get(key, 'see `medsbench data new-task`')})")
    for key in _LIST_OF_STR_KEYS:
        if key in meta and not (_is_str_list(meta[key]) or isinstance(meta[key], str)):
            yield Problem(path, None, key, f"must be a list of strings, got {type(meta[key]).__name__}",
                          fix=f"write it as [\"...\"], e.g. {_KEY_HINT.get(key, '[]')}")
    for key in _STR_OR_LIST_KEYS:
        if key in meta and not (isinstance(meta[key], str) or _is_str_list(meta[key])):
            yield Problem(path, None, key, f"must be a string or a list of strings, got {type(meta[key]).__name__}",
                          fix="write a string or a list of strings")
    for key in _LIST_KEYS:
        if key in meta and not isinstance(meta[key], list):
            yield Problem(path, None, key, f"must be a list, got {type(meta[key]).__name__}", fix=f"write [] or a list ({_KEY_HINT.get(key, '')})")
    definition = meta.get("Definition")
    defs = [definition] if isinstance(definition, str) else definition if isinstance(definition, list) else []
    if "Definition" in meta and not any(isinstance(d, str) and d.strip() for d in defs):
        yield Problem(path, None, "Definition", "empty definition",
                      fix="write what the model must do and the answer format, e.g. [\"Given ..., answer with ...\"]")
    cats = meta.get("Categories")
    cats = [cats] if isinstance(cats, str) else cats if isinstance(cats, list) else []
    if "Categories" in meta and not cats:
        yield Problem(path, None, "Categories", "no category given", fix="add one of the 19 MedS-Ins categories, e.g. [\"Question Answering\"]")
    for cat in cats:
        if isinstance(cat, str) and cat not in INS_CATEGORIES:
            hint = f" (did you mean '{_CATEGORY_LOOKUP[cat.lower()]}'?)" if cat.lower() in _CATEGORY_LOOKUP else ""
            yield Problem(path, None, "Categories", f"'{cat}' is not one of the 19 MedS-Ins categories{hint}",
                          fix=f"use one of: {', '.join(INS_CATEGORIES)}")
    for key in ("Definition", "Source", "URL", "Contributors", "Positive Examples", "Negative Examples", "medsbench"):
        if SCAFFOLD_MARK in str(meta.get(key, "")):
            yield Problem(path, None, key, f"placeholder '{SCAFFOLD_MARK}' left from `medsbench data new-task`", "warning",
                          fix="replace every TODO(new-task) text with the real value (in the converter, then convert again)")
    for key in _LANGUAGE_KEYS:
        value = meta.get(key)
        langs = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for lang in langs:
            if not isinstance(lang, str):
                continue
            if lang not in KNOWN_LANGUAGES:
                canonical = next((k for k in KNOWN_LANGUAGES if k.lower() == lang.strip().lower()), None)
                if canonical:
                    yield Problem(path, None, key, f"'{lang}' should be written '{canonical}'", fix=f"write \"{canonical}\"")
                elif len(lang) <= 3:
                    yield Problem(path, None, key, f"'{lang}' looks like a language code; write the English name (e.g. 'English')",
                                  fix=f"one of: {', '.join(sorted(KNOWN_LANGUAGES))}")
                else:
                    yield Problem(path, None, key, f"unknown language name '{lang}'", "warning",
                                  fix=f"check the spelling; known: {', '.join(sorted(KNOWN_LANGUAGES))}")


def _check_instances(path: str, meta: dict[str, Any], instances: Iterable) -> Iterator[Problem]:
    ids = array("Q")
    inputs = array("Q")
    labels: Counter[str] = Counter()
    raw_positives = meta.get("Positive Examples")
    positives = {
        _digest_int(ex["input"])
        for ex in (raw_positives if isinstance(raw_positives, list) else [])
        if isinstance(ex, dict) and isinstance(ex.get("input"), str)
    }
    n = 0
    for index, inst in enumerate(instances):
        n += 1
        ids.append(_digest_int(inst.id))
        if not isinstance(inst.input, str):
            inputs.append(index)  # placeholder digest: never equal to a real one in practice
            yield Problem(path, index, "input", f"must be a string, got {type(inst.input).__name__}",
                          fix="join the parts into one text in the converter (e.g. question + options)")
            continue
        if not inst.input.strip():
            yield Problem(path, index, "input", "empty input", fix="drop the item in the converter, or fill its input")
        if len(inst.input) > HUGE_INPUT_CHARS:
            yield Problem(path, index, "input", f"{len(inst.input)} characters: far beyond a model's context "
                          "(a run fails this item without sending it)", "warning",
                          fix="check the converter: such an input is usually a whole file read as one item")
        digest = _digest_int(inst.input)
        inputs.append(digest)
        if digest in positives:
            yield Problem(path, index, "input", "a positive example reappears as an instance",
                          fix="take Positive Examples from the train split, or drop the item from the instances")
        if not isinstance(inst.output, list) or not inst.output:
            yield Problem(path, index, "output", "must be a non-empty string or list of strings",
                          fix="write the gold answer as \"text\" or [\"text\", \"alternative\"]; drop items without one")
            continue
        if not all(isinstance(o, str) for o in inst.output):
            yield Problem(path, index, "output", "every output must be a string", fix="convert numbers and labels to text in the converter")
            continue
        if not any(o.strip() for o in inst.output):
            yield Problem(path, index, "output", "empty output", fix="drop the item, or write the answer format's empty value (e.g. 'There is no related entity.')")
        if len(labels) <= 1000:  # label entropy only makes sense for closed label sets
            labels[inst.output[0]] += 1
    for index, first in _duplicates(ids):
        yield Problem(path, index, "id", f"duplicate id (first at instance {first})",
                      fix="make ids unique in the converter (e.g. source file + line number)")
    for index, first in _duplicates(inputs):
        yield Problem(path, index, "input", f"duplicate input (same as instance {first})",
                      fix="de-duplicate by input in the converter (sources.converters._qa.Splits does it)")
    if n < MIN_INSTANCES:
        yield Problem(path, None, "Instances", f"only {n} instance(s) (fewer than {MIN_INSTANCES})", "warning",
                      fix="fine for a sample; a benchmark task needs enough items for its confidence interval")
    if n >= MIN_INSTANCES and 1 < len(labels) <= 20:
        total = sum(labels.values())
        entropy = -sum(c / total * math.log2(c / total) for c in labels.values())
        normalised = entropy / math.log2(len(labels))
        if normalised < 0.5:
            top, count = labels.most_common(1)[0]
            yield Problem(
                path, None, "Instances",
                f"low label entropy ({normalised:.2f}); '{top[:40]}' is {100 * count / total:.0f}% of outputs", "warning",
                fix="report the majority baseline beside the score (`medsbench data audit`), or balance the test split",
            )
    elif n >= MIN_INSTANCES and len(labels) == 1:
        yield Problem(path, None, "Instances", "every instance has the same output", "warning",
                      fix="a constant answer scores 100: check the converter reads the right gold column")


def validate_file(path: str | os.PathLike) -> list[Problem]:
    """All problems of one task file (errors and warnings); never raises on bad content."""
    where = str(path)
    try:
        meta = read_meta(path)
    except MedsbenchError as exc:
        return [Problem(exc.where or where, None, "file", exc.message,
                        fix="a task file is one JSON object with Definition, Instances, ... (or the JSONL layout); see `medsbench data new-task`")]
    problems = list(_check_meta(where, meta))
    try:
        problems.extend(_check_instances(where, meta, iter_instances(path)))
    except MedsbenchError as exc:
        problems.append(Problem(exc.where or where, None, "Instances", exc.message,
                                fix='each instance is {"id": ..., "input": "...", "output": "..." or [...]}'))
    return problems


def task_files_in(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders into the task files they hold (sorted, hidden files skipped)."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in (".json", ".jsonl") and not q.name.startswith("."))
            if not found:
                raise MedsbenchError("no task files (*.json, *.jsonl) in this folder", where=str(p))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise MedsbenchError("no such file or folder", where=str(p))
    return files
