"""PubMedQA (PQA-L, expert labelled): yes/no/maybe MCQA (task123) and answer verification (task12).

``ori_pqal.json`` maps PMID -> {QUESTION, CONTEXTS, LABELS, final_decision,
LONG_ANSWER, ...}; ``test_ground_truth.json`` lists the 500 PMIDs of the official
test split. The other 500 (the authors' train/dev pool) form our train split.

task123 gold is "The right answer is yes." (the official scorer compares the first
character after "the right answer is" against y/n). task12 pairs each item with a
LONG_ANSWER -- its own (gold "yes") or, chosen by a seeded hash, that of another
item of the same split (gold "no"), so no test text leaks into the train file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import stable_seed
from medsbench.sources.converters._qa import (
    OFFICIAL_SPLIT,
    RIGHT_ANSWER,
    Splits,
    TaskSpec,
    instance,
    load_json,
    no_options,
    norm_space,
    write_splits,
)
from medsbench.sources.registry import register_source, require_file

MCQA_TASK = "task123"
VERIFY_TASK = "task12"
LABELS = ("yes", "no", "maybe")
URL = "https://github.com/pubmedqa/pubmedqa"
LICENSE = "MIT"
SPLIT_METHOD = f"{OFFICIAL_SPLIT}: the 500 PMIDs of test_ground_truth.json -> test; the other 500 PQA-L items -> train"

MCQA_DEFINITION = (
    "You are given the abstract of a biomedical research paper (without its conclusion) and a research question. "
    "Decide from the abstract whether the answer to the question is yes, no or maybe, and reply in the form "
    f'"{RIGHT_ANSWER} yes." (or no, or maybe).'
)
VERIFY_DEFINITION = (
    "You are given a passage from a biomedical abstract, a question about it and a candidate answer. "
    "Output 'yes' if the candidate answer actually answers the question, and 'no' if it does not."
)


def load_items(raw_dir: Path) -> tuple[dict[str, dict[str, Any]], set[str]]:
    ori_path = require_file(raw_dir, "ori_pqal.json")
    gt_path = require_file(raw_dir, "test_ground_truth.json")
    ori, gt = load_json(ori_path), load_json(gt_path)
    if not isinstance(ori, dict) or not isinstance(gt, dict):
        raise MedsbenchError("expected a JSON object keyed by PMID", where=str(ori_path if not isinstance(ori, dict) else gt_path))
    for pmid, item in ori.items():
        where = f"{ori_path}:{pmid}"
        if not isinstance(item, dict) or not {"QUESTION", "CONTEXTS", "final_decision", "LONG_ANSWER"} <= item.keys():
            raise MedsbenchError("expected QUESTION, CONTEXTS, final_decision, LONG_ANSWER", where=where)
        if item["final_decision"] not in LABELS:
            raise MedsbenchError(f"final_decision must be yes/no/maybe, got '{item['final_decision']}'", where=where)
    missing = sorted(set(gt) - set(ori))
    if missing:
        raise MedsbenchError(f"{len(missing)} test PMID(s) not in ori_pqal.json (e.g. {missing[0]})", where=str(gt_path))
    return ori, set(gt)


def passage(item: dict[str, Any]) -> str:
    """The abstract's sections, one per line, with their labels (BACKGROUND: ..., RESULTS: ...)."""
    contexts = [norm_space(c) for c in item["CONTEXTS"]]
    labels = item.get("LABELS") or []
    if len(labels) == len(contexts):
        return "\n".join(f"{lab}: {ctx}" for lab, ctx in zip(labels, contexts))
    return "\n".join(contexts)


def _by_split(ori: dict[str, dict[str, Any]], test_ids: set[str]) -> dict[str, list[str]]:
    return {
        "test": sorted(p for p in ori if p in test_ids),
        "train": sorted(p for p in ori if p not in test_ids),
    }


@register_source("pubmedqa", description="PubMedQA PQA-L yes/no/maybe (official 500 test PMIDs)", raw_folder="pubmedqa", tasks=(MCQA_TASK,))
def pubmedqa(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("pubmedqa", options)
    ori, test_ids = load_items(raw_dir)
    splits = Splits()
    for split, pmids in _by_split(ori, test_ids).items():
        for pmid in pmids:
            item = ori[pmid]
            text = f"Context: {passage(item)}\nQuestion: {item['QUESTION'].strip()}\nOptions: yes, no, maybe"
            getattr(splits, split).append(instance(pmid, text, f"{RIGHT_ANSWER} {item['final_decision']}."))
    spec = TaskSpec.bench(MCQA_TASK, definition=MCQA_DEFINITION, source="PubMedQA", url=URL, license=LICENSE)
    return write_splits(out_dir, spec, splits, split_method=SPLIT_METHOD)


def distractor(pmid: str, pool: list[str]) -> str:
    """A different PMID of the same split, chosen by a seeded hash (never ``pmid`` itself)."""
    i = pool.index(pmid)
    step = 1 + stable_seed(VERIFY_TASK, "distractor", pmid) % (len(pool) - 1)
    return pool[(i + step) % len(pool)]


@register_source(
    "pubmedqa_verification",
    description="PubMedQA answer verification: does this long answer answer the question? (yes/no)",
    raw_folder="pubmedqa",
    tasks=(VERIFY_TASK,),
)
def pubmedqa_verification(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("pubmedqa_verification", options)
    ori, test_ids = load_items(raw_dir)
    splits = Splits()
    for split, pmids in _by_split(ori, test_ids).items():
        for pmid in pmids:
            item = ori[pmid]
            own = stable_seed(VERIFY_TASK, "own", pmid) % 2 == 0
            answer_from = pmid if own else distractor(pmid, pmids)
            text = (
                f"Passage: {passage(item)}\nQuestion: {item['QUESTION'].strip()}\n"
                f"Answer: {norm_space(ori[answer_from]['LONG_ANSWER'])}"
            )
            getattr(splits, split).append(instance(pmid, text, "yes" if own else "no"))
    spec = TaskSpec.bench(VERIFY_TASK, definition=VERIFY_DEFINITION, source="PubMedQA", url=URL, license=LICENSE)
    return write_splits(
        out_dir,
        spec,
        splits,
        split_method=SPLIT_METHOD,
        extra={"construction": "answer = the item's own LONG_ANSWER (yes) or, by a seeded hash, another same-split item's (no)"},
    )
