"""`medsbench runs`: operations on run folders (merging the shards of a sharded eval)."""

from __future__ import annotations

from pathlib import Path

import typer

from medsbench.commands import group

runs_app = group("Run folders: merge the shards of a sharded eval.")


@runs_app.command("merge")
def merge_cmd(
    shards: list[Path] = typer.Argument(..., help="Run folders of every shard (eval --shard I/N, I = 1..N), in any order."),
    out: Path = typer.Option(..., "--out", help="Run folder of the merged run."),
    no_score: bool = typer.Option(False, "--no-score", help="Write predictions only (score later with --resume)."),
) -> None:
    """Merge shards into the run an unsharded eval writes (predictions, official CSV, results.json)."""
    from medsbench.commands.render import ConsoleReporter
    from medsbench.pipeline import merge_runs

    reporter = ConsoleReporter()
    manifest = merge_runs(shards, out, reporter=reporter, score=not no_score)
    reporter.message(f"run folder: {out} ({manifest.status})")


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
