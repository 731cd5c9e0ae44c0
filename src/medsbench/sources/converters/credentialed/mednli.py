"""MedNLI (PhysioNet, credentialed) jsonl -> task41 (discriminative) and task42 (generative).

Files: ``mli_train_v1.jsonl``, ``mli_dev_v1.jsonl``, ``mli_test_v1.jsonl`` with keys
``sentence1, sentence2, gold_label, pairID``. Official split: test = mli_test, train =
mli_train + mli_dev.

task41: input "Sentence1: <premise>\\nSentence2: <hypothesis>", gold the label
(entailment / contradiction / neutral). task42: input the premise, gold an entailed
hypothesis (entailment pairs only; a premise with several entailed hypotheses becomes one
instance whose ``output`` lists them all).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.fileio import iter_jsonl
from medsbench.sources.registry import TaskSpec, register_source, require_file, write_splits
from medsbench.tasks.format import Instance

URL = "https://physionet.org/content/mednli/"
LICENSE = "PhysioNet Credentialed Health Data License 1.5.0; not redistributable"
KEYS = ("sentence1", "sentence2", "gold_label", "pairID")
LABELS = ("entailment", "contradiction", "neutral")
DEF41 = (
    "You will be given a clinical premise (sentence1) and a hypothesis (sentence2), written as "
    "'Sentence1: ...\\nSentence2: ...'. Decide whether the hypothesis can be inferred from the premise. "
    "Answer with one word: entailment, contradiction, or neutral."
)
DEF42 = (
    "You are an experienced doctor. You will be given a clinical premise statement. Write a hypothesis "
    "statement that is clearly true given the premise (textual entailment)."
)
FILES = {"train": ("mli_train_v1.jsonl", "mli_dev_v1.jsonl"), "test": ("mli_test_v1.jsonl",)}


def read_pairs(path: Path) -> Iterator[dict[str, str]]:
    for line, obj in iter_jsonl(path):
        where = f"{path}:{line}"
        if not isinstance(obj, dict):
            raise MedsbenchError("expected one JSON object per line", where=where)
        missing = [k for k in KEYS if k not in obj]
        if missing:
            raise MedsbenchError(f"missing key '{missing[0]}' (MedNLI lines have {', '.join(KEYS)})", where=where)
        label = str(obj["gold_label"]).strip().lower()
        if label not in LABELS:
            raise MedsbenchError(f"gold_label '{obj['gold_label']}' is not one of {', '.join(LABELS)}", where=where)
        yield {"premise": " ".join(str(obj["sentence1"]).split()), "hypothesis": " ".join(str(obj["sentence2"]).split()),
               "label": label, "id": str(obj["pairID"])}


def _discriminative(paths: list[Path]) -> Iterator[Instance]:
    for path in paths:
        for p in read_pairs(path):
            yield Instance(id=f"task41:{p['id']}", input=f"Sentence1: {p['premise']}\nSentence2: {p['hypothesis']}",
                           output=[p["label"]], output_was_str=True)


def _generative(paths: list[Path]) -> list[Instance]:
    grouped: dict[str, Instance] = {}
    for path in paths:
        for p in read_pairs(path):
            if p["label"] != "entailment":
                continue
            hyp = p["hypothesis"] if p["hypothesis"].endswith(".") else p["hypothesis"] + "."
            inst = grouped.setdefault(p["premise"], Instance(id=f"task42:{p['id']}", input=p["premise"], output=[]))
            if hyp not in inst.output:
                inst.output.append(hyp)
    for inst in grouped.values():
        inst.output_was_str = len(inst.output) == 1
    return list(grouped.values())


@register_source("mednli", description="MedNLI jsonl -> task41 (NLI) and task42 (hypothesis generation) (credentialed)",
                 raw_folder="mednli", tasks=["task41", "task42"])
def mednli(raw_dir: Path, out_dir: Path, **_: object) -> list[Path]:
    paths = {split: [require_file(raw_dir, name) for name in names] for split, names in FILES.items()}
    method = "official split: test = mli_test_v1.jsonl, train = mli_train_v1 + mli_dev_v1 minus inputs in test"
    return [
        *write_splits(out_dir, TaskSpec.bench("task41", definition=DEF41, source="MedNLI", url=URL, license=LICENSE),
                      {"test": _discriminative(paths["test"]), "train": _discriminative(paths["train"])},
                      split_method=method, require=("test",)),
        *write_splits(out_dir, TaskSpec.bench("task42", definition=DEF42, source="MedNLI", url=URL, license=LICENSE),
                      {"test": _generative(paths["test"]), "train": _generative(paths["train"])},
                      split_method=method, require=("test",)),
    ]
