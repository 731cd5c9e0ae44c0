"""RuMedDaNet (RuMedBench): Russian yes/no medical questions with a context passage (task61).

Each ``{pairID, context, question, answer: да|нет}`` line becomes a two-option MCQA
item (A. да, B. нет) so the MCQA answer convention and scorer apply. Official
test -> test; train + dev -> train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import iter_jsonl
from medsbench.sources.converters._qa import (
    OFFICIAL_SPLIT,
    RIGHT_ANSWER,
    Splits,
    TaskSpec,
    instance,
    mcqa_input,
    mcqa_output,
    no_options,
    write_splits,
)
from medsbench.sources.registry import register_source, require_file
from medsbench.tasks.format import Instance

TASK = "task61"
OPTIONS = ("да", "нет")
DEFINITION = (
    "You are given a passage and a yes/no question about it, both in Russian, with the options A. да (yes) "
    f'and B. нет (no). Answer from the passage in the form "{RIGHT_ANSWER} A: да." or "{RIGHT_ANSWER} B: нет."'
)


def read_split(path: Path) -> list[Instance]:
    out: list[Instance] = []
    for lineno, item in iter_jsonl(path, objects=True):
        where = f"{path}:{lineno}"
        missing = [k for k in ("pairID", "context", "question", "answer") if k not in item]
        if missing:
            raise MedsbenchError(f"missing field(s) {', '.join(missing)}", where=where)
        answer = str(item["answer"]).strip().lower()
        if answer not in OPTIONS:
            raise MedsbenchError(f"answer must be да or нет, got '{item['answer']}'", where=where)
        text = mcqa_input(str(item["question"]), OPTIONS, context=str(item["context"]))
        out.append(instance(item["pairID"], text, mcqa_output(OPTIONS, [OPTIONS.index(answer)])))
    return out


@register_source(
    "rumeddanet", description="RuMedDaNet yes/no QA (official test; train+dev -> train)", raw_folder="rumeddanet", tasks=(TASK,)
)
def rumeddanet(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("rumeddanet", options)
    test, train, dev = (require_file(raw_dir, f"{s}_v1.jsonl") for s in ("test", "train", "dev"))
    splits = Splits(test=read_split(test), train=read_split(train) + read_split(dev))
    spec = TaskSpec.bench(
        TASK,
        definition=DEFINITION,
        source="RuMedBench (RuMedDaNet)",
        url="https://github.com/pavel-blinov/RuMedBench",
        license="not stated by the authors (public research benchmark)",
    )
    return write_splits(
        out_dir, spec, splits, split_method=f"{OFFICIAL_SPLIT}: test_v1 -> test; train_v1 + dev_v1 -> train"
    )
