"""The one place that chains stages: convert -> eval -> score, shard merging, and the demo.

Stages below this layer never import each other sideways or to their right: ``medsbench.runs``
generates predictions and takes a scorer as a parameter; this module passes it the metrics
scorer (:func:`score_run`) and builds task files from raw data first when asked
(``--build-from``). Library users and the CLI call :func:`run_eval` and :func:`merge_runs` here;
:func:`evaluate` is the keyword form for scripts and notebooks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import ensure_writable
from medsbench.ids import slug
from medsbench.metrics import score_predictions
from medsbench.metrics.choices import task_choices
from medsbench.metrics.score import RunProtocol, TaskFileLabels
from medsbench.models.base import Backend
from medsbench.models.spec import ModelSpec
from medsbench.prices import Price, PriceTable, price_for
from medsbench.records.config import EvalConfig
from medsbench.records.folder import RunFolder
from medsbench.records.manifest import RunManifest
from medsbench.records.predictions import PredictionRow
from medsbench.records.results import InputFile, Results
from medsbench.reporter import LogReporter, Reporter
from medsbench.runs.merge import merge_shards
from medsbench.runs.run import RunOptions, RunPlaces, RunResult, execute_run, prepare
from medsbench.sources import convert_all


def score_run(rows: list[PredictionRow], manifest: RunManifest, folder: RunFolder, *,
              prices: Price | PriceTable | None = None) -> Results:
    """The metrics stage on a run's rows, with the run's protocol and deviations from its manifest;
    ``prices`` (``--price``/``--prices``) price its tokens by the run's model (:func:`run_price`)."""
    labels = TaskFileLabels(manifest.test_files())  # a --limit sample's label sets from the full test files
    results = score_predictions(rows, protocol=RunProtocol.of(manifest), labels=labels,
                                price=run_price(prices, manifest))
    results.inputs = [InputFile(path=str(folder.predictions_path), sha256=folder.predictions_sha256())]
    return results


def run_price(prices: Price | PriceTable | None, manifest: RunManifest | None) -> Price | None:
    """The price of a run's model: ``--price``, or the ``--prices`` entry matching its spec or model name."""
    if manifest is None or manifest.config is None:
        names: tuple[str | None, ...] = (manifest.model,) if manifest is not None else ()
    else:
        names = (manifest.config.model.redacted(), manifest.config.model.target)
    return price_for(prices, *names)


def build_tasks(raw: str | Path, tasks_dir: str | Path, reporter: Reporter | None = None) -> int:
    """Convert every raw source present under ``raw`` into ``tasks_dir``; returns the files written."""
    say = (reporter or LogReporter()).message
    tasks_dir = Path(tasks_dir)
    ensure_writable(tasks_dir, "task folder")

    def on_source(name: str, written: list[Path] | None, skipped: str | None) -> None:
        if written is not None:
            say(f"{name}: {len(written)} file(s)")
        elif skipped and not skipped.endswith("not present"):  # absent datasets are normal; say why others failed
            say(f"skip {name}: {skipped}")

    report = convert_all(Path(raw), tasks_dir, on_source)
    say(f"built {len(report.files)} task file(s) in {tasks_dir}")
    return len(report.files)


def run_eval(config: EvalConfig, places: RunPlaces, options: RunOptions | None = None, *,
             build_from: str | Path | None = None, score: bool = True) -> RunResult:
    """Evaluate and score (:func:`medsbench.runs.run.execute_run` with the metrics scorer), after building
    the task files from ``build_from`` (a raw data folder) on a new run."""
    options = options or RunOptions()
    if build_from is not None:
        if options.resume:
            raise MedsbenchError("--resume continues a run on its recorded task files; --build-from cannot be used with it")
        build_tasks(build_from, places.workspace.tasks, options.reporter)
    if score and options.scorer is None:
        options = dataclasses.replace(options, scorer=score_run)
    if config.scoring == "loglik" and options.choices is None:
        options = dataclasses.replace(options, choices=task_choices)
    return execute_run(config, places, options)


_PLACES = ("out", "workspace", "cache")
_OPTIONS = tuple(f.name for f in dataclasses.fields(RunOptions) if f.name not in ("backend", "scorer", "choices"))


def evaluate(model: str | ModelSpec | Backend | None = None, tasks: str | None = None, *, build_from: str | Path | None = None,
             score: bool = True, **kwargs: Any) -> RunResult:
    """Keyword form of :func:`run_eval`: ``evaluate("hf:/models/x", "mcqa", limit=20, workspace="ws")``.

    ``kwargs`` are :class:`EvalConfig` fields (``limit``, ``shots``, ``protocol``, ...), places
    (``out``, ``workspace``, ``cache``) and :class:`RunOptions` fields (``resume``, ``progress``,
    ``reporter``, ...). ``model`` may be a ready :class:`Backend` (recorded as ``spec=`` or its name).
    """
    unknown = sorted(set(kwargs) - set(EvalConfig.cli_fields()) - set(_PLACES) - set(_OPTIONS) - {"spec"})
    if unknown:
        raise TypeError(f"evaluate() got unknown argument(s): {', '.join(unknown)}")
    backend = model if model is not None and not isinstance(model, (str, ModelSpec)) else None
    given = {k: v for k, v in kwargs.items() if k in EvalConfig.cli_fields()}
    given["tasks"] = tasks
    given["model"] = kwargs.get("spec") or (f"instance:{slug(getattr(backend, 'name', 'backend'))}" if backend is not None else model)
    places_given = {k: kwargs.get(k) for k in _PLACES}
    behaviour = {k: v for k, v in kwargs.items() if k in _OPTIONS}
    if isinstance(behaviour.get("progress"), bool):  # True: a bar or heartbeat lines, as the reporter can
        behaviour["progress"] = "auto" if behaviour["progress"] else "off"
    options = RunOptions(backend=backend, **behaviour)
    config, places = prepare(given, resume=options.resume, **places_given)
    return run_eval(config, places, options, build_from=build_from, score=score)


def merge_runs(shards: Any, out: str | Path, *, score: bool = True, reporter: Reporter | None = None) -> RunManifest:
    """:func:`medsbench.runs.merge.merge_shards` with the metrics scorer (results.json of the merged run)."""
    options = RunOptions(reporter=reporter or LogReporter(), scorer=score_run if score else None)
    return merge_shards(shards, out, options=options)


__all__ = ["build_tasks", "evaluate", "merge_runs", "run_eval", "run_price", "score_run"]
