"""`medsbench tune` (train / merge) and `medsbench demo` (the paper in miniature)."""

from __future__ import annotations

from pathlib import Path

import typer

tune_app = typer.Typer(
    help="Instruction-tune a model on a MedS-Ins mixture (TRL/PEFT; LoRA or full), merge LoRA adapters.",
    invoke_without_command=True,
    rich_markup_mode=None,
)

_BASE = typer.Option(None, "--base", help="Base model: default | hf:PATH | PATH.")
_DATA = typer.Option(None, "--data", help="Mixture folder (mixtures/NAME with data/*.parquet).")
_OUT = typer.Option(None, "--out", help="Output folder for the tuned model (models/NAME).")
_CONFIG = typer.Option(None, "--config", help="Config YAML path or shipped name (cpu_small_lora, paper_8b_full).")
_METHOD = typer.Option(None, "--method", help="lora | full (overrides the config).")
_RESUME = typer.Option(False, "--resume", help="Continue from the last checkpoint in OUT/checkpoints.")
_STEPS = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps (overrides the config).")
_LR = typer.Option(None, "--lr", help="Learning rate (overrides the config).")
_MERGE = typer.Option(True, "--merge/--no-merge", help="LoRA: also write the merged model into OUT.")


def _run(base, data, out, config, method, resume, max_steps, lr, merge) -> None:
    from medsbench.errors import MedsbenchError
    from medsbench.tune.config import load_tune_config

    missing = [flag for flag, v in (("--base", base), ("--data", data), ("--out", out)) if v is None]
    if missing:
        raise MedsbenchError(f"missing {', '.join(missing)} (see `medsbench tune --help`)")
    if method not in (None, "lora", "full"):
        raise MedsbenchError(f"--method must be lora or full, not '{method}'")
    cfg = load_tune_config(config, method=method, max_steps=max_steps, learning_rate=lr)
    from medsbench.tune.train import train

    result = train(base, data, out, cfg, resume=resume, merge=merge)
    if result.seconds is not None:
        loss = f"{result.train_loss:.4f}" if result.train_loss is not None else "-"
        typer.echo(
            f"tuned {result.examples} examples, {result.steps} steps, mean loss {loss}, "
            f"{result.seconds:.0f}s -> {result.out}"
        )


@tune_app.callback()
def tune_main(
    ctx: typer.Context,
    base: str = _BASE,
    data: Path = _DATA,
    out: Path = _OUT,
    config: str = _CONFIG,
    method: str = _METHOD,
    resume: bool = _RESUME,
    max_steps: int = _STEPS,
    lr: float = _LR,
    merge: bool = _MERGE,
) -> None:
    """Train when no subcommand is given: `medsbench tune --base SPEC --data mixtures/NAME --out models/NAME`."""
    if ctx.invoked_subcommand is None:
        _run(base, data, out, config, method, resume, max_steps, lr, merge)


@tune_app.command("run")
def run_cmd(
    base: str = _BASE,
    data: Path = _DATA,
    out: Path = _OUT,
    config: str = _CONFIG,
    method: str = _METHOD,
    resume: bool = _RESUME,
    max_steps: int = _STEPS,
    lr: float = _LR,
    merge: bool = _MERGE,
) -> None:
    """Train (same options as `medsbench tune`); the form for `accelerate launch -m medsbench tune run ...`."""
    _run(base, data, out, config, method, resume, max_steps, lr, merge)


@tune_app.command("merge")
def merge_cmd(
    adapter: Path = typer.Argument(..., help="A `tune` output folder (with adapter/) or an adapter/checkpoint folder."),
    out: Path = typer.Option(..., "--out", help="Folder for the merged model."),
    base: str = typer.Option(None, "--base", help="Base model if not the one recorded in the adapter."),
) -> None:
    """Merge LoRA adapters into the base model: a standalone HF folder for `hf:PATH`."""
    from medsbench.tune.merge import merge

    typer.echo(f"merged -> {merge(adapter, out, base)}")


@tune_app.command("configs")
def configs_cmd() -> None:
    """List the shipped training configs."""
    from medsbench.tune.config import shipped_configs

    for name, path in shipped_configs().items():
        typer.echo(f"{name}\t{path}")


def demo_cmd(
    work: Path = typer.Option(None, "--work", help="Workspace for the demo. [default: WORKSPACE/demo]", show_default=False),
    raw: Path = typer.Option(None, "--raw", help="Raw data root (default: ../shared/data/raw if present)."),
    steps: int = typer.Option(100, "--steps", min=1, help="LoRA optimizer steps (one 768-token packed row each)."),
    items: int = typer.Option(150, "--items", min=1, help="Test items per task for the base-vs-tuned evaluation."),
    tasks: str = typer.Option(None, "--tasks", help="Tasks to tune on (train split) and evaluate (test split); default: task126,task123."),
    per_task: int = typer.Option(None, "--per-task", min=1, help="Mixture: upper cap of training instances per task (default: an equal token share)."),
    shots: int = typer.Option(0, "--shots", help="Demos per evaluation prompt (the catalog's paper setting: -1)."),
    threads: int = typer.Option(None, "--threads", min=1, help="Torch threads for training and evaluation (default: torch's choice)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """The paper's claim in miniature, offline: tune SmolLM2 on a few tasks' train splits, test base vs tuned (paired)."""
    from rich.console import Console
    from rich.table import Table

    from medsbench.commands.render import ConsoleReporter
    from medsbench.workspace import Workspace
    from medsbench.pipeline.demo import DEFAULT_RAW, DEMO_TASKS, DemoConfig, format_p, run_demo

    console = Console()
    work = work or Workspace().root / "demo"
    config = DemoConfig(work=work, raw=raw or DEFAULT_RAW, steps=steps, items=items, tasks=tasks or DEMO_TASKS,
                        per_task=per_task, shots=None if shots < 0 else shots, threads=threads, seed=seed)
    out = run_demo(config, ConsoleReporter(Console(stderr=True)))
    for mode, rows in out["rows"].items():
        table = Table(title=f"{mode} metrics: tuned - base, paired bootstrap 95% CI, permutation p")
        for col in ("level", "name", "n", "metric", "base", "tuned", "delta", "95% CI", "p", "MDE80", "verdict"):
            table.add_column(col, justify="left" if col in ("level", "name", "metric", "verdict") else "right")
        for r in rows:
            table.add_row(r["level"], r["name"], str(r["n"]), r["metric"], f"{r['base']:.1f}", f"{r['tuned']:.1f}",
                          f"{r['delta']:+.1f}", f"[{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}]", format_p(r["p_value"]),
                          f"{r['mde80']:.1f}", r["verdict"])
        console.print(table, width=max(console.width, 150))
    console.print("stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in out["seconds"].items()))
    console.print(f"wrote {work / 'demo_comparison.md'} and {work / 'demo_comparison.json'}")


def register(app: typer.Typer) -> None:
    app.add_typer(tune_app, name="tune")
    app.command("demo")(demo_cmd)
