"""HEAD-QA (Spanish healthcare specialisation exams), Spanish original (task129).

``HEAD/{train,dev,test}_HEAD.json``: ``{"exams": {name: {"data": [{qid, qtext, ra,
answers: [{aid, atext}], image}]}}}``; gold is the answer whose ``aid == ra``.
Official test (2016-2017 exams) -> test; train + dev -> train. Questions whose
figure is not included are kept (the paper's 2,742-item test set has them); their
count is recorded in the metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._qa import (
    MCQA_DEFINITION,
    OFFICIAL_SPLIT,
    Splits,
    TaskSpec,
    instance,
    load_json,
    mcqa_input,
    mcqa_output,
    no_options,
    write_splits,
)
from medsbench.sources.registry import register_source, require_file
from medsbench.tasks.format import Instance

TASK = "task129"


def read_split(path: Path) -> tuple[list[Instance], int]:
    """Instances of one HEAD-QA file and the number that reference a (missing) image."""
    data = load_json(path)
    exams = data.get("exams") if isinstance(data, dict) else None
    if not isinstance(exams, dict):
        raise MedsbenchError('expected an object with "exams" (HEAD-QA format)', where=str(path))
    out: list[Instance] = []
    with_image = 0
    for exam_name, exam in exams.items():
        for i, q in enumerate(exam.get("data") or []):
            where = f"{path}:{exam_name}[{i}]"
            try:
                answers = sorted(q["answers"], key=lambda a: int(a["aid"]))
                options = [str(a["atext"]) for a in answers]
                aids = [str(a["aid"]) for a in answers]
                qid, qtext, ra = q["qid"], q["qtext"], str(q["ra"])
            except (KeyError, TypeError, ValueError) as exc:
                raise MedsbenchError(f"malformed question ({type(exc).__name__}: {exc})", where=where) from None
            if ra not in aids:
                raise MedsbenchError(f"right answer id {ra} is not among the answer ids {', '.join(aids)}", where=where)
            with_image += bool(q.get("image"))
            out.append(instance(f"{exam_name}-{qid}", mcqa_input(str(qtext), options), mcqa_output(options, [aids.index(ra)])))
    return out, with_image


@register_source("headqa", description="HEAD-QA Spanish (official test; train+dev -> train)", raw_folder="headqa", tasks=(TASK,))
def headqa(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("headqa", options)
    files = {s: require_file(raw_dir, f"HEAD/{s}_HEAD.json") for s in ("test", "train", "dev")}
    test, test_img = read_split(files["test"])
    train, train_img = read_split(files["train"])
    dev, dev_img = read_split(files["dev"])
    spec = TaskSpec.bench(
        TASK,
        definition=MCQA_DEFINITION,
        source="HEAD-QA",
        url="https://github.com/aghie/head-qa",
        license="MIT (HEAD-QA); exam content of the Spanish Ministerio de Sanidad (cite the source)",
    )
    return write_splits(
        out_dir,
        spec,
        Splits(test=test, train=train + dev),
        split_method=f"{OFFICIAL_SPLIT}: test_HEAD (2016-2017 exams) -> test; train_HEAD + dev_HEAD -> train",
        extra={"questions_with_missing_image": {"test": test_img, "train": train_img + dev_img}},
    )
