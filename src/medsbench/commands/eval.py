"""`medsbench eval`: evaluate a model on MedS-Bench tasks (a thin layer over medsbench.runs.run_eval)."""

from __future__ import annotations

from pathlib import Path

import typer


def _batch_size(value: str | None) -> int | str | None:
    from medsbench.errors import MedsbenchError

    if value is None or value == "auto":
        return value
    try:
        size = int(value)
    except ValueError:
        raise MedsbenchError(f"--batch-size must be a number or 'auto', got '{value}'") from None
    if size < 1:
        raise MedsbenchError("--batch-size must be at least 1")
    return size


def eval_cmd(
    model: str = typer.Option(None, "--model", "-m", help="[default: default] default | hf:PATH[,dtype=..,device=..] | vllm:PATH | openai:MODEL[,base_url=..,concurrency=..]"),
    tasks: str = typer.Option(None, "--tasks", "-t", help="Task ids, categories, 'all' or 'available' (comma-separated). [default: available]"),
    limit: int = typer.Option(None, "--limit", min=1, help="First N items of each task (a sample, not a failure)."),
    shots: int = typer.Option(None, "--shots", min=0, help="Demos per prompt (default: the catalog's, 3; MCQA 0)."),
    seed: int = typer.Option(None, "--seed", help="Seed of the demo choice (per task and item). [default: 0]"),
    batch_size: str = typer.Option(None, "--batch-size", help="Batch size or 'auto'."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Override the catalog's per-category limit."),
    out: Path = typer.Option(None, "--out", help="Run folder (default: WORKSPACE/runs/<model name>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue (or retry the failed items of) the run in --out, with every setting from its manifest."),
    workspace: Path = typer.Option(None, "--workspace", "-w", help="Workspace folder (tasks/, runs/). [default: medsbench-work]"),
    build_from: Path = typer.Option(None, "--build-from", help="Build the task files from this raw data folder first."),
    prompt_style: str = typer.Option(None, "--prompt-style", help="official (byte-exact paper prompt) | readable. [default: official]"),
    protocol: str = typer.Option(None, "--protocol", help="official | paper | medsbench: whose evaluation protocol to follow (recorded with its deviations). [default: medsbench]"),
    shard: str = typer.Option(None, "--shard", help="I/N: answer only the items at positions I, I+N, ... of each task (merge the N runs with `medsbench runs merge`)."),
    definitions: Path = typer.Option(None, "--definitions", help="RewriteDefinitions.json: use the paper's own definitions."),
    api_key_env: str = typer.Option(None, "--api-key-env", help="Environment variable holding the API key (openai)."),
    dtype: str = typer.Option(None, "--dtype", help="hf: float32 (default, reproducible) | bfloat16 | float16 | auto."),
    device: str = typer.Option(None, "--device", help="hf: cpu | cuda | cuda:N."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow model code from the model folder."),
    cache: Path = typer.Option(None, "--cache", help="Result cache (default: WORKSPACE/cache.sqlite)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar: a one-line heartbeat every 30 s instead."),
) -> None:
    """Evaluate a model on MedS-Bench tasks: predictions.jsonl, predictions.csv, results.json.

    Exit code 1 when items failed (they are missing from the scores); `--resume --out RUN` retries them.
    """
    from rich.console import Console

    from medsbench.models.spec import ModelSpec
    from medsbench.runs import run_eval
    from medsbench.runs.report import failure_lines, summary_table

    console = Console(stderr=True)
    options: dict[str, str | bool | None] = {"api_key_env": api_key_env, "dtype": dtype, "device": device}
    if trust_remote_code:
        options["trust_remote_code"] = True
    kind = ModelSpec.parse(model).kind if model is not None else None  # None: --resume, the manifest's model
    if kind == "openai":
        options.pop("dtype")
        options.pop("device")
    elif kind is not None:
        options.pop("api_key_env")
    result = run_eval(
        model,
        tasks,
        workspace=workspace,
        out=out,
        limit=limit,
        shots=shots,
        seed=seed,
        batch_size=_batch_size(batch_size),
        max_new_tokens=max_new_tokens,
        prompt_style=prompt_style,
        definitions=definitions,
        protocol=protocol,
        shard=shard,
        resume=resume,
        build_from=build_from,
        cache=cache,
        backend_options={k: v for k, v in options.items() if v is not None},
        progress="log" if no_progress else "auto",
        console=console,
    )
    import sys

    # Piped output (logs, CI) gets a fixed width so the table is never squeezed into ellipses.
    Console(width=None if sys.stdout.isatty() else 120).print(summary_table(result))
    console.print(f"run folder: {result.run_dir}", soft_wrap=True, markup=False, highlight=False)
    lines = failure_lines(result)
    for line in lines:  # whole lines (paths and commands are never wrapped)
        console.print(line, style="red", soft_wrap=True, markup=False, highlight=False)
    if result.status == "scoring":  # scoring refused the predictions (warned above)
        raise typer.Exit(1)
    if lines:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
