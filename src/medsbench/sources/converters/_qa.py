"""Shared pieces of the QA-family converters: answer formats, split bookkeeping, task files.

MCQA gold follows the official MedS-Bench answer convention, ``"The right answer is B:
<option text>."``: the official scorer lower-cases, removes "the right answer is",
strips and compares the first character, so the letter must come right after that
phrase. Questions with several correct options list every letter first
(``"The right answer is B, C: <text B>; <text C>."``). Inputs keep the question in its
own language; the ``Question:``/``Options:`` labels are English, like the definitions.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources import registry
from medsbench.sources.registry import DistinctInputs, TaskSpec
from medsbench.tasks.format import Instance
import orjson
import openpyxl

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
RIGHT_ANSWER = "The right answer is"

MCQA_DEFINITION = (
    "You are given a medical exam question and its lettered options. Pick the correct option and reply "
    f'with its letter and text, in the form "{RIGHT_ANSWER} B: <option text>."'
)
MCQA_MULTI_DEFINITION = (
    "You are given a medical exam question and its lettered options; one or more options can be correct. "
    f'Reply with every correct letter and its text, in the form "{RIGHT_ANSWER} B, D: <text of B>; <text of D>."'
)
OFFICIAL_SPLIT = "official split of the source release"


def norm_space(text: str) -> str:
    """Collapse runs of whitespace (XML/xlsx cells carry layout newlines and tabs)."""
    return " ".join(str(text).split())


def mcqa_input(question: str, options: Sequence[str], *, context: str | None = None) -> str:
    lines = [f"Context: {context.strip()}"] if context else []
    lines.append(f"Question: {question.strip()}")
    lines.append("Options:")
    lines.extend(f"{LETTERS[i]}. {norm_space(opt)}" for i, opt in enumerate(options))
    return "\n".join(lines)


def _answer_text(option: str) -> str:
    return norm_space(option).rstrip(".").rstrip()


def mcqa_output(options: Sequence[str], correct: Sequence[int]) -> str:
    """``The right answer is B: text.`` (several correct options: letters first, texts after)."""
    if not correct:
        raise ValueError("an MCQA item needs at least one correct option")
    idx = sorted(set(correct))
    letters = ", ".join(LETTERS[i] for i in idx)
    texts = "; ".join(_answer_text(options[i]) for i in idx)
    return f"{RIGHT_ANSWER} {letters}: {texts}."


def letter_indices(answers: Iterable[Any], n_options: int, where: str) -> list[int]:
    """Answer letters (``"b"``, ``"B"``) -> 0-based option indices, checked against the option count."""
    out: list[int] = []
    for ans in answers:
        key = str(ans).strip().upper()
        if len(key) != 1 or key not in LETTERS[:n_options]:
            raise MedsbenchError(f"answer '{ans}' is not one of the {n_options} option letters", where=where)
        out.append(LETTERS.index(key))
    if not out:
        raise MedsbenchError("no answer given", where=where)
    return out


@dataclass
class Splits:
    """Instances per split, de-duplicated by input: no input twice in a file, train never repeats a test input."""

    test: list[Instance] = field(default_factory=list)
    train: list[Instance] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def finalize(self) -> Splits:
        """Apply the converters' one split rule (``registry.DistinctInputs``), counting what it drops."""
        rule = DistinctInputs()
        kept = rule.lists({"test": self.test, "train": self.train})
        self.test, self.train = kept["test"], kept["train"]
        for name, n in rule.dropped.items():
            self.dropped[name] = self.dropped.get(name, 0) + n
        return self


def instance(id: Any, input: str, output: str | list[str]) -> Instance:
    outputs = [output] if isinstance(output, str) else list(output)
    return Instance(id=str(id), input=input, output=outputs, output_was_str=isinstance(output, str))


def write_splits(
    out_dir: Path,
    spec: TaskSpec,
    splits: Splits,
    *,
    split_method: str,
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    """The QA converters' call of ``registry.write_splits`` (a split without instances is skipped), with the
    number of duplicate inputs each split lost recorded in its file."""
    splits.finalize()
    counts = {name: {"duplicate_inputs_dropped": n} for name, n in splits.dropped.items() if n}
    return registry.write_splits(out_dir, spec, {"test": splits.test, "train": splits.train},
                                 split_method=split_method, extra=extra, split_extra=counts)


def no_options(name: str, options: dict[str, Any]) -> None:
    """Dataset-specific converters take no options; say so instead of silently ignoring them."""
    given = {k: v for k, v in options.items() if v is not None}
    if given:
        raise MedsbenchError(f"converter '{name}' takes no options (got {', '.join(sorted(given))})")


def read_text(path: Path) -> str:
    """UTF-8 text; undecodable bytes (a few in some corpora) become spaces rather than aborting."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MedsbenchError(f"cannot read: {exc.strerror}", where=str(path)) from None
    return data.decode("utf-8", errors="replace").replace("\ufffd", " ")


def load_json(path: Path) -> Any:

    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        line = path.read_bytes()[: exc.pos].count(b"\n") + 1
        raise MedsbenchError(f"invalid JSON: {exc.msg}", where=f"{path}:{line}") from None


def read_csv_rows(path: Path, expected: Sequence[str], *, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV/TSV whose header must contain ``expected`` (else a one-line error naming the file)."""
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = reader.fieldnames or []
    missing = [c for c in expected if c not in header]
    if missing:
        raise MedsbenchError(
            f"expected columns {', '.join(expected)}; missing {', '.join(missing)} (header: {', '.join(header) or 'none'})",
            where=f"{path}:1",
        )
    return list(reader)


def xlsx_rows(path: Path, sheet: str, expected: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of one sheet of an Excel workbook as dicts keyed by the header row."""

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a non-workbook
        raise MedsbenchError(f"not a readable Excel workbook ({type(exc).__name__})", where=str(path)) from None
    try:
        if sheet not in wb.sheetnames:
            raise MedsbenchError(f"no sheet '{sheet}' (sheets: {', '.join(wb.sheetnames)})", where=str(path))
        rows = wb[sheet].iter_rows(values_only=True)
        header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
        missing = [c for c in expected if c not in header]
        if missing:
            raise MedsbenchError(f"sheet '{sheet}' lacks columns {', '.join(missing)}", where=str(path))
        cols = {name: header.index(name) for name in expected}
        out = []
        for row in rows:
            rec = {name: (row[i] if i < len(row) else None) for name, i in cols.items()}
            if any(v not in (None, "") for v in rec.values()):
                out.append(rec)
        return out
    finally:
        wb.close()


_SLUG_RE = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    return _SLUG_RE.sub("_", text.lower()).strip("_") or "task"
