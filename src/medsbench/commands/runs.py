"""`medsbench runs`: operations on run folders (merging the shards of a sharded eval)."""

from __future__ import annotations

from pathlib import Path

import typer

runs_app = typer.Typer(help="Run folders: merge the shards of a sharded eval.", no_args_is_help=True)


@runs_app.command("merge")
def merge_cmd(
    shards: list[Path] = typer.Argument(..., help="Run folders of every shard (eval --shard I/N), in any order."),
    out: Path = typer.Option(..., "--out", help="Run folder of the merged run."),
    no_score: bool = typer.Option(False, "--no-score", help="Write predictions only (score later with --resume)."),
) -> None:
    """Merge shards into the run an unsharded eval writes (predictions, official CSV, results.json)."""
    from rich.console import Console

    from medsbench.runs.merge import merge_runs

    console = Console(stderr=True)
    manifest = merge_runs(shards, out, log=lambda s: console.print(s, markup=False, highlight=False), do_score=not no_score)
    console.print(f"run folder: {out} ({manifest.status})", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
