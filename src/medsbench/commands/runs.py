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


@runs_app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="Run folder (predictions.jsonl, manifest.json)."),
    out: Path = typer.Option(..., "--out", help="Folder to write the dataset and its card (README.md) into."),
    fmt: str = typer.Option("parquet", "--format", help="parquet (Hub layout, load_dataset) | hf (save_to_disk folders)."),
    push_to_hub: str = typer.Option(None, "--push-to-hub", help="Also upload to this Hugging Face dataset repo (parquet only)."),
) -> None:
    """A run's items with their per-item scores (both modes) as a Hugging Face dataset with a card."""
    from medsbench.export.hf import export_run_dataset, push_to_hub as push

    block = export_run_dataset(run, out, fmt=fmt)
    typer.echo(f"wrote {sum(sum(c.values()) for c in block['counts'].values())} item(s) of {len(block['counts'])} task(s) to {out}")
    if push_to_hub:
        typer.echo(f"pushed: {push(out, push_to_hub)}")


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
