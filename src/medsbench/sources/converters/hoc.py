"""Hallmarks of Cancer (HoC): multi-label abstract classification into the ten hallmarks (task106).

``text/<PMID>.txt`` holds the abstract (one sentence per line); ``labels/<PMID>.txt``
the per-sentence labels (``<``-separated sentences, ``AND``-joined labels, ``--``
hierarchy paths). An abstract has a hallmark when any sentence has it. Gold is
the comma-joined lower-case hallmark names in the canonical order below (the
official scorer looks for each name as a substring), or ``NO_HALLMARK``, which
contains none of the names. No official split: 9:1 by a hash of the PMID.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._qa import (
    Splits,
    TaskSpec,
    instance,
    no_options,
    read_text,
    write_splits,
)
from medsbench.sources.registry import HASH_SPLIT_NOTE, hash_split, register_source
from medsbench.tasks.labels import HALLMARKS

TASK = "task106"
NO_HALLMARK = "None of the hallmarks of cancer."

DEFINITION = (
    "You are given the abstract of a biomedical publication. List every hallmark of cancer the abstract discusses, "
    "chosen from these ten: " + ", ".join(HALLMARKS) + ". Write the names separated by commas, in that order; "
    f'if the abstract discusses none of them, output "{NO_HALLMARK}"'
)


def hallmarks_of(label_line: str, where: str) -> set[str]:
    found: set[str] = set()
    for sentence in label_line.split("<"):
        for label in sentence.split("AND"):
            label = label.strip()
            if not label or label == "NULL":
                continue
            top = label.split("--", 1)[0].strip().lower()
            if top not in HALLMARKS:
                raise MedsbenchError(f"unknown hallmark '{top}'", where=where)
            found.add(top)
    return found


def gold(hallmarks: set[str]) -> str:
    return ", ".join(h for h in HALLMARKS if h in hallmarks) or NO_HALLMARK


@register_source("hoc", description="Hallmarks of Cancer multi-label classification (hash split)", raw_folder="hoc", tasks=(TASK,))
def hoc(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("hoc", options)
    text_dir, label_dir = raw_dir / "text", raw_dir / "labels"
    if not text_dir.is_dir() or not label_dir.is_dir():
        raise MedsbenchError("expected text/ and labels/ folders (<PMID>.txt each): is this the HoC folder?", where=str(raw_dir))
    splits = Splits()
    for label_path in sorted(label_dir.glob("*.txt")):
        pmid = label_path.stem
        text_path = text_dir / label_path.name
        if not text_path.is_file():
            raise MedsbenchError("labels without a matching text file", where=str(label_path))
        abstract = " ".join(line.strip() for line in read_text(text_path).splitlines() if line.strip())
        if not abstract:
            raise MedsbenchError("empty abstract", where=str(text_path))
        item = instance(pmid, abstract, gold(hallmarks_of(read_text(label_path), str(label_path))))
        getattr(splits, hash_split(pmid, salt=TASK)).append(item)
    if not splits.test and not splits.train:
        raise MedsbenchError("no labels/<PMID>.txt files", where=str(label_dir))
    spec = TaskSpec.bench(
        TASK,
        definition=DEFINITION,
        source="Hallmarks of Cancer corpus",
        url="https://github.com/sb895/Hallmarks-of-Cancer",
        license="GPL-3.0",
    )
    return write_splits(
        out_dir,
        spec,
        splits,
        split_method=HASH_SPLIT_NOTE,
        extra={"labels": list(HALLMARKS), "no_label_output": NO_HALLMARK},
    )
