"""Export MedS-Bench tasks as inspect_ai (0.3.x) tasks scored by medsbench's scorers.

``write_inspect(settings, out, name=...)`` writes ``out/data/<task>.jsonl`` (our rendered prompts,
:mod:`medsbench.export.items`) and ``out/medsbench_<name>.py`` with one ``@task`` per MedS-Bench
task, so ``inspect eval out/medsbench_<name>.py --model hf/NAME -M model_path=DIR`` (or any
provider: ``openai-api/...`` against a local OpenAI-compatible server) runs them.

Each sample's input is our prompt as chat messages (system = instruction block with the demos
fixed per item, user = query; no system message when the instruction block is empty), so a
provider that applies the model's chat template sends what ``medsbench eval`` sends. Generation:
the protocol's ``max_tokens`` and stop strings (``stop_seqs``), temperature 0. The scorer cuts the
completion before the first stop string (as medsbench's backends do; inspect's ``hf`` provider
stops at a stop string but keeps it) and the metric ``medsbench`` scores all samples of the task
with :func:`medsbench.metrics.score_predictions`: strict metrics by name, the official scripts'
as ``ref_<metric>``, 0-100, equal to ``medsbench score`` on the same outputs. Each sample's own
value is its strict primary metric scored alone.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

from medsbench.export.items import ExportSettings, export_tasks, prediction, read_items, score_rows, write_items
from medsbench.export.lm_eval import group_name
from medsbench.fileio import atomic_write
from medsbench.ids import inside
from medsbench.models.base import cut_at_stop


def write_inspect(settings: ExportSettings, out: str | os.PathLike, *, name: str) -> dict[str, Any]:
    """Write the items and the ``@task`` file into ``out``; returns a summary (file, task names, item counts)."""
    prefix = group_name(name)
    tasks = export_tasks(settings)
    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    lines = [
        '"""Written by `medsbench export inspect`: MedS-Bench tasks scored by medsbench."""',
        "",
        "from pathlib import Path",
        "",
        "from inspect_ai import task",
        "",
        "from medsbench.export.inspect_tasks import build_task",
        "",
        "HERE = Path(__file__).resolve().parent",
    ]
    names = []
    for t in tasks:
        write_items(inside(out, "data", f"{t.task_id}.jsonl"), t.items)
        task_name = f"{prefix}_{re.sub(r'[^A-Za-z0-9_]+', '_', t.task_id)}"
        names.append(task_name)
        generation = {"max_new_tokens": t.max_new_tokens, "stop": list(t.stop), "metric": t.metrics[0]}
        lines += ["", "", "@task", f"def {task_name}():",
                  f"    return build_task(HERE, {f'data/{t.task_id}.jsonl'!r}, **{generation!r})"]
    target = inside(out, f"{prefix}.py")
    with atomic_write(target) as fh:
        fh.write("\n".join(lines) + "\n")
    return {"file": str(target), "tasks": names, "items": {t.task_id: len(t.items) for t in tasks}}


def build_task(root: str | os.PathLike, items: str, *, max_new_tokens: int, stop: list[str], metric: str) -> Any:
    """The inspect ``Task`` of one exported items file (path checked inside ``root``)."""
    from inspect_ai import Task
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig
    from inspect_ai.solver import generate

    rows = read_items(inside(root, *Path(items).parts))
    samples = []
    for row in rows:
        messages: list[Any] = [ChatMessageSystem(content=row["system"])] if row["system"] else []
        messages.append(ChatMessageUser(content=row["user"]))
        samples.append(Sample(input=messages, target=list(row["references"]), id=row["id"], metadata=row))
    scorer_factory, _metric = _components()
    return Task(
        dataset=MemoryDataset(samples, name=Path(items).stem),
        solver=generate(),
        scorer=scorer_factory(stop=list(stop), metric=metric),
        config=GenerateConfig(max_tokens=max_new_tokens, stop_seqs=list(stop) or None, temperature=0.0),
    )


@functools.cache
def _components() -> tuple[Any, Any]:
    """The ``medsbench`` scorer and metric, registered with inspect once (on first use)."""
    from inspect_ai.scorer import Score, metric, scorer

    @metric(name="medsbench")
    def medsbench_metric() -> Any:
        def compute(scores: list[Any]) -> dict[str, float]:
            rows = [s.score.metadata["row"] for s in scores if s.score.metadata and "row" in s.score.metadata]
            by_task = score_rows(rows) if rows else {}
            return {k: float(v) for metrics in by_task.values() for k, v in metrics.items()}

        return compute

    @scorer(metrics=[medsbench_metric()], name="medsbench")
    def medsbench_scorer(stop: list[str], metric: str) -> Any:
        async def score(state: Any, target: Any) -> Any:
            output, _found = cut_at_stop(state.output.completion, stop)
            row = prediction(state.metadata, output)
            value = score_rows([row]).get(row["task_id"], {}).get(metric)
            return Score(value=float("nan") if value is None else float(value), answer=output, metadata={"row": row})

        return score

    return medsbench_scorer, medsbench_metric
