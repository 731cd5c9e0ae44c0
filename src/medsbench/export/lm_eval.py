"""Export MedS-Bench tasks as an lm-evaluation-harness (0.4.x) task group.

``write_lm_eval(settings, out)`` writes into ``out``::

    medsbench_<name>.yaml         the group (every exported task)
    medsbench_<name>_<task>.yaml  one generate_until task per MedS-Bench task
    data/<task>.jsonl             the items with OUR rendered prompts (medsbench.export.items)
    utils.py                      loads the items; process_results/aggregations call medsbench's scorers

``lm_eval --model hf --model_args pretrained=MODEL --include_path OUT --tasks medsbench_<name>
--apply_chat_template`` then sends each item the prompt ``medsbench eval`` sends under the same
protocol: the instruction block (definition + demos, fixed per item as ours) is the task's
``description`` (lm-eval's system message), the query is ``doc_to_text`` (the user message);
``num_fewshot`` is 0 because the demos are already in the instruction block. Stop strings
(``until``) and ``max_gen_toks`` are the protocol's; decoding is greedy.

Chat templates: ``medsbench eval`` renders chat models through the tokenizer's own template
(system = instruction block, user = query); lm-eval does the same only with
``--apply_chat_template`` (a "chat" export, the default). For a model without a chat template,
export with ``chat=False``: ``doc_to_text`` is then our plain prompt (instruction block, a newline,
the query), sent without ``--apply_chat_template``.

Scores: ``process_results`` turns each output into a medsbench prediction row; the aggregation
of each metric scores the task's rows with :func:`medsbench.metrics.score_predictions` (the
function behind ``medsbench score``), so the numbers equal ``medsbench score`` on the same outputs
(strict metrics by name, the official scripts' as ``ref_<metric>``; 0-100 scale).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from medsbench.errors import MedsbenchError
from medsbench.export.items import ExportSettings, ExportTask, export_tasks, prediction, read_items, score_rows, write_items
from medsbench.fileio import atomic_write, dumps, sha256_text
from medsbench.ids import inside

GROUP_PREFIX = "medsbench_"


def group_name(name: str) -> str:
    """``medsbench_<name>`` with every character lm-eval task names avoid replaced by ``_``."""
    clean = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    if not clean:
        raise MedsbenchError(f"export name {name!r} has no letters or digits")
    return GROUP_PREFIX + clean


class _Function(str):
    """A YAML scalar lm-eval reads as a Python function (``!function utils.NAME``)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Function, lambda d, v: d.represent_scalar("!function", str(v)))


def _metric_names(task: ExportTask) -> list[str]:
    return list(task.metrics) + [f"ref_{m}" for m in task.metrics]


def _task_config(task: ExportTask, name: str, chat: bool, data_file: str) -> dict[str, Any]:
    key = re.sub(r"\W", "_", task.task_id)
    config: dict[str, Any] = {
        "task": name,
        "tag": ["medsbench"],
        "custom_dataset": _Function("utils.load"),
        "dataset_kwargs": {"items": data_file},
        "test_split": "test",
        "output_type": "generate_until",
        "num_fewshot": 0,
        "doc_to_text": "user" if chat else "plain",
        "doc_to_target": "{{references[0] if references else ''}}",
        "generation_kwargs": {"until": list(task.stop), "max_gen_toks": task.max_new_tokens, "do_sample": False, "temperature": 0.0},
        "process_results": _Function(f"utils.process_{key}"),
        "metric_list": [
            {"metric": m, "aggregation": _Function(f"utils.agg_{key}_{m}"), "higher_is_better": True}
            for m in _metric_names(task)
        ],
        "metadata": {"version": 1.0, "medsbench": task.settings()},
    }
    if chat:
        config["description"] = "system"
    return config


def _utils_source(tasks: Sequence[ExportTask]) -> str:
    lines = [
        '"""Written by `medsbench export lm-eval`: loads the exported items; scores go through medsbench."""',
        "",
        "from pathlib import Path",
        "",
        "from medsbench.export import lm_eval as _medsbench",
        "",
        "HERE = Path(__file__).resolve().parent",
        "",
        "",
        "def load(items, **_ignored):",
        "    return _medsbench.load_split(HERE, items)",
        "",
    ]
    for task in tasks:
        key = re.sub(r"\W", "_", task.task_id)
        lines += ["", f"process_{key} = _medsbench.results_for({_metric_names(task)!r})"]
        for m in _metric_names(task):
            lines.append(f"agg_{key}_{m} = _medsbench.aggregation({task.task_id!r}, {m!r})")
    return "\n".join(lines) + "\n"


def write_lm_eval(settings: ExportSettings, out: str | os.PathLike, *, name: str, chat: bool = True) -> dict[str, Any]:
    """Write the task group into ``out``; returns a summary (group name, tasks, item counts, files)."""
    group = group_name(name)
    tasks = export_tasks(settings)
    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    names = []
    for task in tasks:
        data_file = f"data/{task.task_id}.jsonl"
        sha = write_items(inside(out, "data", f"{task.task_id}.jsonl"), task.items)
        task_name = f"{group}_{re.sub(r'[^A-Za-z0-9_]+', '_', task.task_id)}"
        cfg = _task_config(task, task_name, chat, data_file)
        cfg["metadata"]["medsbench"].update({"items_sha256": sha, "protocol": settings.config.protocol, "chat": chat})
        _write_yaml(inside(out, f"{task_name}.yaml"), cfg)
        names.append(task_name)
    _write_yaml(inside(out, f"{group}.yaml"), {"group": group, "task": names, "metadata": {"version": 1.0}})
    with atomic_write(inside(out, "utils.py")) as fh:
        fh.write(_utils_source(tasks))
    return {"group": group, "tasks": names, "items": {t.task_id: len(t.items) for t in tasks}, "out": str(out)}


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path) as fh:
        fh.write(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000))


# ----------------------------------------------------------------- run inside lm-eval (called by utils.py)


def load_split(root: Path, items: str) -> dict[str, Any]:
    """The ``test`` split of an exported task as a ``datasets.Dataset`` (path checked inside ``root``)."""
    import datasets

    path = inside(root, *Path(items).parts)
    rows = read_items(path)
    return {"test": datasets.Dataset.from_list(rows)}


def results_for(metrics: Sequence[str]) -> Callable[[dict[str, Any], list[str]], dict[str, dict[str, Any]]]:
    """lm-eval's ``process_results``: each metric gets the item's prediction row (scored on aggregation)."""

    def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict[str, Any]]:
        row = prediction(doc, results[0] if results else None)
        return {m: row for m in metrics}

    return process_results


_LAST: dict[str, dict[str, dict[str, float]]] = {}


def _scores(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """score_rows, computed once for the rows every metric of a task aggregates (lm-eval asks per metric)."""
    key = sha256_text(dumps(rows).decode())
    if key not in _LAST:
        _LAST.clear()
        _LAST[key] = score_rows(rows)
    return _LAST[key]


def aggregation(task_id: str, metric: str) -> Callable[[list[dict[str, Any]]], float]:
    """lm-eval's aggregation of ``metric``: :func:`medsbench.metrics.score_predictions` on the task's rows."""

    def aggregate(rows: list[dict[str, Any]]) -> float:
        value = _scores(rows).get(task_id, {}).get(metric)
        return math.nan if value is None else float(value)

    aggregate.__name__ = f"medsbench_{metric}"
    return aggregate
