"""IgakuQA: Japanese National Medical Licensing Examination 2018-2022 (task59).

``<year>/<exam>.jsonl`` files use the MCQA jsonl format (see ``mcqa.py``); the
``_metadata``/``_translate`` side files are not needed. Numeric-entry questions
(no options) and questions that need a figure (``text_only: false``, figures are
not in the release) are skipped, as MMedBench/MedS-Ins do. The release has no
train/test split, so items are split 9:1 by a hash of ``problem_id``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._qa import MCQA_DEFINITION, MCQA_MULTI_DEFINITION, Splits, TaskSpec, no_options, write_splits
from medsbench.sources.converters.mcqa import read_mcqa_jsonl
from medsbench.sources.registry import HASH_SPLIT_NOTE, hash_split, register_source

TASK = "task59"


def exam_files(raw_dir: Path) -> list[Path]:
    files = sorted(
        p for p in raw_dir.glob("*/*.jsonl") if not p.stem.endswith(("_metadata", "_translate")) and p.is_file()
    )
    if not files:
        raise MedsbenchError("expected <year>/<exam>.jsonl files (e.g. 2018/112-A.jsonl) here", where=str(raw_dir))
    return files


@register_source("igakuqa", description="IgakuQA Japanese licensing exam MCQA (hash split)", raw_folder="igakuqa", tasks=(TASK,))
def igakuqa(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("igakuqa", options)
    splits = Splits()
    skipped = {"no_options": 0, "needs_image": 0}
    multi = 0
    for path in exam_files(raw_dir):
        items, counts = read_mcqa_jsonl(path, skip_unanswerable=True)
        skipped["no_options"] += counts["no_options"]
        skipped["needs_image"] += counts["needs_image"]
        multi += counts["multi_answer"]
        for inst in items:
            getattr(splits, hash_split(inst.id, salt=TASK)).append(inst)
    spec = TaskSpec.bench(
        TASK,
        definition=MCQA_MULTI_DEFINITION,
        source="IgakuQA",
        url="https://github.com/jungokasai/IgakuQA",
        license="no licence file; exam questions published by Japan's MHLW (research use, attribution)",
    )
    if not multi:
        spec = replace(spec, definition=MCQA_DEFINITION)
    return write_splits(
        out_dir,
        spec,
        splits,
        split_method=HASH_SPLIT_NOTE,
        extra={
            "skipped_numeric_entry": skipped["no_options"],
            "skipped_needs_image": skipped["needs_image"],
            "note": "numeric-entry questions (no options) and text_only=false questions (figure not included) are skipped",
        },
    )
