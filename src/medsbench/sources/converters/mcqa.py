"""Generic MCQA jsonl converter (``problem_text`` / ``choices`` / ``answer`` lines) and its datasets.

The format is the one of the medLLM_QA_benchmark redistribution (MedQA en/zh,
MedMCQA) and IgakuQA: one JSON object per line with ``problem_id``,
``problem_text``, ``choices`` (list of option texts) and ``answer`` (list of
lower-case letters indexing ``choices``). ``mcqa_jsonl`` works on any folder of
such files: files whose name says ``train``/``dev``/``valid`` feed the train
split, every other file the test split.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import iter_jsonl
from medsbench.sources.converters._qa import (
    MCQA_DEFINITION,
    MCQA_MULTI_DEFINITION,
    OFFICIAL_SPLIT,
    Splits,
    TaskSpec,
    instance,
    letter_indices,
    mcqa_input,
    mcqa_output,
    no_options,
    slugify,
    write_splits,
)
from medsbench.sources.registry import register_source, require_file
from medsbench.tasks.catalog import LANGUAGE_NAMES, catalog
from medsbench.tasks.format import Instance

MIT_AISTAIRC = "MIT (dataset authors; redistributed by aistairc/medLLM_QA_benchmark, MIT)"
_TRAIN_WORDS = ("train", "dev", "valid")


def read_mcqa_jsonl(path: Path, *, id_prefix: str = "", skip_unanswerable: bool = False) -> tuple[list[Instance], dict[str, int]]:
    """Instances of one MCQA jsonl file, plus counts (skipped items by reason, multi-answer items).

    With ``skip_unanswerable``, items without options (numeric entry) and items
    marked ``text_only: false`` (they need a figure that is not in the data) are
    skipped; otherwise they are errors.
    """
    out: list[Instance] = []
    skipped = {"no_options": 0, "needs_image": 0, "multi_answer": 0}
    for lineno, item in iter_jsonl(path, objects=True):
        where = f"{path}:{lineno}"
        for key in ("problem_text", "choices", "answer"):
            if key not in item:
                raise MedsbenchError(f"missing field '{key}' (expected problem_text/choices/answer lines)", where=where)
        question, choices, answer = item["problem_text"], item["choices"], item["answer"]
        if not isinstance(question, str) or not question.strip():
            raise MedsbenchError("problem_text must be a non-empty string", where=where)
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise MedsbenchError("choices must be a list of strings", where=where)
        if isinstance(answer, str):
            answer = [answer]
        if not isinstance(answer, list):
            raise MedsbenchError("answer must be a list of letters", where=where)
        if len(choices) < 2:
            if skip_unanswerable:
                skipped["no_options"] += 1
                continue
            raise MedsbenchError(f"need at least 2 choices, got {len(choices)}", where=where)
        if item.get("text_only") is False:
            if skip_unanswerable:
                skipped["needs_image"] += 1
                continue
        correct = letter_indices(answer, len(choices), where)
        skipped["multi_answer"] += len(set(correct)) > 1
        raw_id = item.get("problem_id", lineno - 1)
        out.append(instance(f"{id_prefix}{raw_id}", mcqa_input(question, choices), mcqa_output(choices, correct)))
    return out, skipped


def convert_mcqa_files(
    out_dir: Path,
    spec: TaskSpec,
    files: dict[str, list[Path]],
    *,
    split_method: str,
    id_prefix_by_file: bool = False,
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    splits = Splits()
    multi = 0
    for split, paths in files.items():
        for path in paths:
            prefix = f"{path.stem}-" if id_prefix_by_file else ""
            items, counts = read_mcqa_jsonl(path, id_prefix=prefix)
            multi += counts["multi_answer"]
            getattr(splits, split).extend(items)
    if not splits.test:
        raise MedsbenchError("no test items found (every non-train file was empty)", where=str(files["test"][0]))
    if multi and spec.definition == MCQA_DEFINITION:
        spec = replace(spec, definition=MCQA_MULTI_DEFINITION)
    return write_splits(out_dir, spec, splits, split_method=split_method, extra=extra)


@register_source(
    "mcqa_jsonl",
    description="Any folder of MCQA jsonl files (problem_text/choices/answer); needs --task-id and --name",
    generic=True,
)
def mcqa_jsonl(
    raw_dir: Path,
    out_dir: Path,
    *,
    task_id: str | None = None,
    name: str | None = None,
    language: str | None = None,
    **options: Any,
) -> list[Path]:
    """Convert every ``*.jsonl`` in ``raw_dir``: train/dev/valid files -> train split, the rest -> test."""
    no_options("mcqa_jsonl", options)
    if not task_id:
        raise MedsbenchError("mcqa_jsonl needs --task-id (e.g. task900) for the new task")
    files = sorted(p for p in raw_dir.glob("*.jsonl") if p.is_file())
    if not files:
        raise MedsbenchError("no *.jsonl files here (expected problem_text/choices/answer lines)", where=str(raw_dir))
    by_split: dict[str, list[Path]] = {"test": [], "train": []}
    for path in files:
        split = "train" if any(w in path.stem.lower() for w in _TRAIN_WORDS) else "test"
        by_split[split].append(path)
    if not by_split["test"]:
        raise MedsbenchError("only train/dev files here: a test file (any other *.jsonl) is needed", where=str(raw_dir))
    entry = catalog().get(task_id)
    lang = language or (entry.language if entry else "en")
    if lang not in LANGUAGE_NAMES:
        raise MedsbenchError(f"unknown language '{lang}' (known: {', '.join(LANGUAGE_NAMES)})")
    spec = TaskSpec(
        task_id=task_id,
        slug=entry.slug if entry else slugify(name or raw_dir.name),
        definition=MCQA_DEFINITION,
        source=raw_dir.name,
        url=str(raw_dir),
        license="see the source release",
        entry=entry,
        category="Question Answering",
        language=lang,
    )
    return convert_mcqa_files(
        out_dir,
        spec,
        by_split,
        split_method="by file name: train/dev/valid files -> train, other files -> test",
        id_prefix_by_file=len(files) > 1,
        extra={"files": {s: [p.name for p in ps] for s, ps in by_split.items() if ps}},
    )


def _test_only(
    raw_dir: Path, out_dir: Path, task_id: str, file: str, source: str, url: str, which: str = "test"
) -> list[Path]:
    path = require_file(raw_dir, file)
    spec = TaskSpec.bench(task_id, definition=MCQA_DEFINITION, source=source, url=url, license=MIT_AISTAIRC)
    return convert_mcqa_files(
        out_dir,
        spec,
        {"test": [path]},
        split_method=f"{OFFICIAL_SPLIT}: {file} is the official {which} set (no train split available here)",
        extra={"raw_file": file},
    )


@register_source("medqa_usmle", description="MedQA USMLE English, 4 options (test)", raw_folder="medqa_usmle", tasks=("task57",))
def medqa_usmle(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("medqa_usmle", options)
    return _test_only(raw_dir, out_dir, "task57", "medqa_en_4op.jsonl", "MedQA (USMLE)", "https://github.com/jind11/MedQA")


@register_source(
    "medqa_mcmle_zh", description="MedQA MCMLE simplified Chinese, 4 options (test)", raw_folder="medqa_mcmle_zh", tasks=("task58",)
)
def medqa_mcmle_zh(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("medqa_mcmle_zh", options)
    return _test_only(raw_dir, out_dir, "task58", "medqa_zh_4op.jsonl", "MedQA (MCMLE)", "https://github.com/jind11/MedQA")


@register_source("medmcqa", description="MedMCQA dev set (the public test set)", raw_folder="medmcqa", tasks=("task122",))
def medmcqa(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("medmcqa", options)
    return _test_only(
        raw_dir, out_dir, "task122", "medmcqa_dev.jsonl", "MedMCQA", "https://github.com/medmcqa/medmcqa",
        which="dev (its test answers are not public; the dev set is the community's test set)",
    )
