"""FrenchMedMCQA: French pharmacy specialisation exam MCQA (task60), single and multiple answers.

``{train,dev,test}.json`` are JSON arrays of ``{id, question, answers: {a..e},
correct_answers: [letters]}``. The official test split is the benchmark; train and
dev together form our train split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._qa import (
    LETTERS,
    MCQA_MULTI_DEFINITION,
    OFFICIAL_SPLIT,
    Splits,
    TaskSpec,
    instance,
    letter_indices,
    load_json,
    mcqa_input,
    mcqa_output,
    no_options,
    write_splits,
)
from medsbench.sources.registry import register_source, require_file
from medsbench.tasks.format import Instance

TASK = "task60"


def read_split(path: Path) -> list[Instance]:
    data = load_json(path)
    if not isinstance(data, list):
        raise MedsbenchError(f"expected a JSON array of questions, got {type(data).__name__}", where=str(path))
    out: list[Instance] = []
    for i, item in enumerate(data):
        where = f"{path}:item {i}"
        if not isinstance(item, dict) or not {"id", "question", "answers", "correct_answers"} <= item.keys():
            raise MedsbenchError("expected an object with id, question, answers, correct_answers", where=where)
        answers = item["answers"]
        if not isinstance(answers, dict) or not answers:
            raise MedsbenchError("answers must be an object {letter: text}", where=where)
        keys = sorted(answers)
        if keys != [c.lower() for c in LETTERS[: len(keys)]]:
            raise MedsbenchError(f"answer keys must be consecutive letters a, b, ...; got {', '.join(keys)}", where=where)
        options = [str(answers[k]) for k in keys]
        correct = letter_indices(item["correct_answers"], len(keys), where)
        out.append(instance(item["id"], mcqa_input(str(item["question"]), options), mcqa_output(options, correct)))
    return out


@register_source(
    "frenchmedmcqa", description="FrenchMedMCQA (official test; train+dev -> train)", raw_folder="frenchmedmcqa", tasks=(TASK,)
)
def frenchmedmcqa(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("frenchmedmcqa", options)
    test, train, dev = (require_file(raw_dir, f"{s}.json") for s in ("test", "train", "dev"))
    splits = Splits(test=read_split(test), train=read_split(train) + read_split(dev))
    spec = TaskSpec.bench(
        TASK,
        definition=MCQA_MULTI_DEFINITION,
        source="FrenchMedMCQA",
        url="https://github.com/qanastek/FrenchMedMCQA",
        license="Apache-2.0",
    )
    return write_splits(
        out_dir, spec, splits, split_method=f"{OFFICIAL_SPLIT}: test.json -> test; train.json + dev.json -> train"
    )
