"""`medsbench eval`: evaluate a model on MedS-Bench tasks (a thin layer over medsbench.pipeline.run_eval).

The flags that define a run are the fields of :class:`medsbench.records.config.EvalConfig` (their
help texts are the fields' descriptions; a test checks that every field has its flag and no flag
exists here only); backend flags (``--dtype``, ``--device``, ``--batch-size``, ``--api-key-env``,
``--trust-remote-code``) are written into the model spec, so the config records them.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import typer

from medsbench.records.config import EvalConfig
from medsbench.workspace import DEFAULT_WORKSPACE

HELP = EvalConfig.cli_fields()

#: Flags that are not EvalConfig fields: where a run lives and how it behaves, backend options
#: (merged into the model spec), and how results.json prices the tokens (not what a run measures).
PLACE_FLAGS = ("out", "workspace", "cache", "build_from", "resume", "overwrite", "no_progress")
BACKEND_FLAGS = ("batch_size", "dtype", "device", "api_key_env", "trust_remote_code", "chat_template")
SCORE_FLAGS = ("price", "prices")
PRICE_HELP = "USD per million prompt/completion tokens of the model, IN/OUT (e.g. 2.5/10): results.json's cost."
PRICES_HELP = ("Price table (YAML/JSON: {model or spec pattern: {input: USD per 1M, output: USD per 1M}}): "
               "results.json's cost.")


def eval_cmd(
    model: str = typer.Option(None, "--model", "-m", help=HELP["model"] + " [default: default]", show_default=False),
    tasks: str = typer.Option(None, "--tasks", "-t", help=HELP["tasks"] + " [default: available]", show_default=False),
    protocol: str = typer.Option(None, "--protocol", help=HELP["protocol"] + " [default: medsbench]", show_default=False),
    limit: str = typer.Option(None, "--limit", help=HELP["limit"]),
    shots: int = typer.Option(None, "--shots", min=0, help=HELP["shots"]),
    seed: int = typer.Option(None, "--seed", help=HELP["seed"] + " [default: 0]", show_default=False),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, help=HELP["max_new_tokens"]),
    stop: list[str] = typer.Option(None, "--stop", help=HELP["stop"] + " (repeatable)"),
    prompt_style: str = typer.Option(None, "--prompt-style", help=HELP["prompt_style"] + " [default: official]", show_default=False),
    definitions: Path = typer.Option(None, "--definitions", help=HELP["definitions"]),
    shard: str = typer.Option(None, "--shard", help=HELP["shard"]),
    scoring: str = typer.Option(None, "--scoring", help=HELP["scoring"] + " [default: generate]", show_default=False),
    batch_size: str = typer.Option(None, "--batch-size", help="Batch size or 'auto' (written into the model spec)."),
    dtype: str = typer.Option(None, "--dtype", help="hf: float32 (default, reproducible) | bfloat16 | float16 | auto."),
    device: str = typer.Option(None, "--device", help="hf: cpu | cuda | cuda:N."),
    api_key_env: str = typer.Option(None, "--api-key-env", help="Environment variable holding the API key (openai)."),
    chat_template: str = typer.Option(None, "--chat-template", help="hf, vllm: model (the model's own chat template, the default) | none (the official plain prompt: BOS, instruction, newline, query)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow model code from the model folder."),
    out: Path = typer.Option(None, "--out", help="Run folder (default: WORKSPACE/runs/<model name>-<config digest>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue (or retry the failed items of) the run in --out, with every setting from its manifest."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run of another configuration in --out."),
    workspace: Path = typer.Option(None, "--workspace", "-w", help=f"Workspace folder (tasks/, runs/, cache.sqlite). [default: {DEFAULT_WORKSPACE}]", show_default=False),
    cache: Path = typer.Option(None, "--cache", help="Result cache (default: WORKSPACE/cache.sqlite)."),
    build_from: Path = typer.Option(None, "--build-from", help="Build the task files from this raw data folder first."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar: a one-line heartbeat every 30 s instead."),
    price: str = typer.Option(None, "--price", help=PRICE_HELP),
    prices: Path = typer.Option(None, "--prices", help=PRICES_HELP),
) -> None:
    """Evaluate a model on MedS-Bench tasks: predictions.jsonl, predictions.csv, results.json.

    Exit code 1 when items failed (they are missing from the scores); `--resume --out RUN` retries them.
    """
    from rich.console import Console

    from medsbench.commands.render import ConsoleReporter, failure_lines, summary_table
    from medsbench.errors import MedsbenchError
    from medsbench.models.spec import ModelSpec
    from medsbench.pipeline import run_eval, score_run
    from medsbench.prices import resolve_price
    from medsbench.runs.run import RunOptions, prepare

    backend_flags = {"batch_size": batch_size, "dtype": dtype, "device": device, "api_key_env": api_key_env,
                     "trust_remote_code": True if trust_remote_code else None, "chat_template": chat_template}
    spec = None
    if model is not None or any(v is not None for v in backend_flags.values()):
        spec = ModelSpec.parse(model or "default").with_overrides(**backend_flags)
    given = {"model": spec, "tasks": tasks, "protocol": protocol, "limit": limit, "shots": shots, "seed": seed,
             "max_new_tokens": max_new_tokens, "stop": tuple(stop) if stop else None, "prompt_style": prompt_style,
             "definitions": definitions, "shard": shard, "scoring": scoring}
    if resume and model is None and spec is not None:
        raise MedsbenchError("--resume takes the backend options from the run's model spec: give --model SPEC with them")
    config, places = prepare(given, out=out, workspace=workspace, cache=cache, resume=resume)
    reporter = ConsoleReporter(Console(stderr=True))
    priced = resolve_price(price, prices)
    options = RunOptions(resume=resume, overwrite=overwrite, progress="log" if no_progress else "auto", reporter=reporter,
                         scorer=functools.partial(score_run, prices=priced) if priced is not None else None)
    result = run_eval(config, places, options, build_from=build_from)
    # Piped output (logs, CI) gets a fixed width so the table is never squeezed into ellipses.
    Console(width=None if sys.stdout.isatty() else 120).print(summary_table(result))
    if priced is not None and result.results is not None and result.results.price is None:
        reporter.message(f"warning: no price in {prices} matches the run's model {config.model.redacted()}: not priced",
                         "warning")
    reporter.message(f"run folder: {result.run_dir}")
    lines = failure_lines(result)
    for line in lines:  # whole lines (paths and commands are never wrapped)
        reporter.message(line, "error")
    if result.status == "scoring" or lines:  # scoring refused the predictions (warned above), or items failed
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
