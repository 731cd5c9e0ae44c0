"""MeQSum: consumer health question summarisation (task114).

The release is one Excel workbook (sheet ``QS``: ``File``, ``CHQ``, ``Summary``)
without a split; items are split 9:1 by a hash of ``File``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._qa import Splits, TaskSpec, instance, no_options, norm_space, write_splits, xlsx_rows
from medsbench.sources.registry import HASH_SPLIT_NOTE, hash_split, register_source, require_file

TASK = "task114"
WORKBOOK = "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx"
DEFINITION = (
    "You are given a consumer's health question, often long and informal. Rewrite it as one short question "
    "that keeps only what the person needs to know."
)


@register_source("meqsum", description="MeQSum consumer question summarisation (hash split)", raw_folder="meqsum", tasks=(TASK,))
def meqsum(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("meqsum", options)
    path = require_file(raw_dir, WORKBOOK)
    splits = Splits()
    for n, row in enumerate(xlsx_rows(path, "QS", ("File", "CHQ", "Summary")), 2):
        if not row["File"] or not row["CHQ"] or not row["Summary"]:
            raise MedsbenchError("empty File, CHQ or Summary cell", where=f"{path}:QS!row {n}")
        # The CHQ keeps its "SUBJECT: ... MESSAGE: ..." line structure; only the ends are trimmed.
        question = str(row["CHQ"]).strip()
        item = instance(str(row["File"]).strip(), question, norm_space(str(row["Summary"])))
        getattr(splits, hash_split(item.id, salt=TASK)).append(item)
    spec = TaskSpec.bench(
        TASK, definition=DEFINITION, source="MeQSum", url="https://github.com/abachaa/MeQSum", license="CC BY 4.0"
    )
    return write_splits(out_dir, spec, splits, split_method=HASH_SPLIT_NOTE)
