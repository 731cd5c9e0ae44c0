"""`medsbench data`: task catalog, converters, validation and statistics."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from medsbench.commands import echo_import, group
from medsbench.tasks.catalog import catalog
from medsbench.workspace import DEFAULT_WORKSPACE, Workspace

data_app = group("Task files: catalog, convert raw data, pull the released benchmark, validate, audit, stats.")


@data_app.command("catalog")
def catalog_cmd(
    category: str = typer.Option(None, "--category", help="Only this category key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the MedS-Bench task catalog."""
    from medsbench.metrics import scorer_for_task

    cat = catalog()
    rows = [t for t in cat.tasks.values() if category is None or t.category == category]
    if as_json:
        import dataclasses

        from medsbench.fileio import dumps

        typer.echo(dumps([dataclasses.asdict(t) for t in rows], indent=True).decode())
        return
    table = Table(title=f"MedS-Bench catalog ({len(rows)} tasks)")
    for col in ("id", "name", "category", "dataset", "lang", "metric", "shots", "availability", "source"):
        # ids never wrap; other cells fold onto more lines rather than being cut with an ellipsis
        table.add_column(col, no_wrap=col == "id", overflow="fold", min_width=7 if col == "id" else None)
    for t in rows:
        table.add_row(t.id, t.name, t.category, t.dataset, t.language, (s.column if (s := scorer_for_task(t)) else "-"), str(t.shots), t.availability, t.source or "-")
    Console().print(table)


@data_app.command("sources")
def sources_cmd() -> None:
    """List the registered raw-source converters."""
    from medsbench.sources import sources

    table = Table(title="Registered converters")
    for col in ("name", "raw folder", "builds", "description"):
        table.add_column(col)
    for spec in sorted(sources().values(), key=lambda s: s.name):
        builds = "any corpus (generic)" if spec.generic else ", ".join(spec.tasks) or "-"
        table.add_row(spec.name, spec.raw_folder or "-", builds, spec.description)
    Console().print(table)


@data_app.command("convert")
def convert_cmd(
    name: str = typer.Argument(None, help="Converter name (see `medsbench data sources`); omit with --all."),
    raw: Path = typer.Option(..., "--raw", help="Raw dataset folder (with --all: the folder holding one folder per dataset)."),
    out: Path = typer.Option(Workspace().tasks, "--out", help="Where task files are written."),
    all_sources: bool = typer.Option(False, "--all", help="Run every converter whose raw folder exists under --raw."),
    task_id: str = typer.Option(None, "--task-id", help="Generic converters: task id of the new task."),
    task_name: str = typer.Option(None, "--name", help="Generic converters: short name (slug) of the new task."),
    entity: str = typer.Option(None, "--entity", help="Generic NER converters: entity type to extract (default: all)."),
    sample: int = typer.Option(None, "--sample", help="Converters that support it: seeded sample of N test items (the paper samples 1,500 for NER and DDXPlus)."),
    definitions: Path = typer.Option(None, "--definitions", help="RewriteDefinitions.json-shaped file: write its original_def as the Definition of every task id it has (ours otherwise)."),
) -> None:
    """Convert raw public releases into task files."""
    from medsbench.errors import MedsbenchError
    from medsbench.sources import convert
    from medsbench.sources.definitions import load_official_definitions

    console = Console()
    if all_sources == (name is not None):
        raise MedsbenchError("give either a converter NAME or --all")
    official = load_official_definitions(definitions) if definitions is not None else None
    if official is not None:
        console.print(f"definitions: {len(official)} task id(s) from {definitions}")
    if not all_sources:
        options = {
            k: v for k, v in (("task_id", task_id), ("name", task_name), ("entity", entity), ("sample", sample)) if v is not None
        }
        written = convert(name, raw, out, definitions=official, **options)
        for path in written:
            typer.echo(f"wrote {path}")  # plain echo: rich would wrap long paths
        return
    from medsbench.sources.registry import convert_all

    def progress(source: str, files, skipped) -> None:
        if skipped:
            console.print(f"[dim]skip {source}: {skipped}[/dim]")
        else:
            console.print(f"{source}: {len(files)} file(s)")

    report = convert_all(raw, out, on_source=progress, definitions=official)
    console.print(f"wrote {len(report.files)} task file(s) to {out}; skipped {len(report.skipped)} source(s)")


@data_app.command("validate")
def validate_cmd(
    paths: list[Path] = typer.Argument(..., help="Task files or folders of task files."),
    quiet_warnings: bool = typer.Option(False, "--no-warnings", help="Only print errors."),
) -> None:
    """Check task files; prints `file:instance-index: field: message`, exit 1 on any error."""
    from medsbench.tasks.validate import task_files_in, validate_file

    files = task_files_in(paths)
    errors = warnings = 0
    for path in files:
        for problem in validate_file(path):
            if problem.level == "error":
                errors += 1
                typer.echo(f"error: {problem}", err=True)
            else:
                warnings += 1
                if not quiet_warnings:
                    typer.echo(f"warning: {problem}", err=True)
    typer.echo(f"{len(files)} file(s): {errors} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


@data_app.command("stats")
def stats_cmd(
    paths: list[Path] = typer.Argument(..., help="Task files or folders of task files."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Per task: instances, category, language, split, mean input/output length (characters)."""
    from medsbench.tasks.stats import folder_stats

    rows = folder_stats(paths)
    if as_json:
        from medsbench.fileio import dumps

        typer.echo(dumps([r.as_dict() for r in rows], indent=True).decode())
        return
    table = Table(title=f"{len(rows)} task file(s), {sum(r.instances for r in rows)} instances")
    for col in ("task", "split", "category", "language", "instances", "mean input", "mean output", "file"):
        table.add_column(col, justify="right" if col.startswith(("inst", "mean")) else "left")
    for r in rows:
        table.add_row(r.task_id or "-", r.split, r.category, r.language, str(r.instances),
                      f"{r.mean_input_chars:.0f}", f"{r.mean_output_chars:.0f}", r.file)
    Console(width=max(Console().width, 140)).print(table)


@data_app.command("pull")
def pull_cmd(
    source: Path = typer.Option(None, "--from", help="Local copy of the release (MCQA/, NER/, ...) instead of the Hub."),
    revision: str = typer.Option(None, "--revision", help="Hub revision to pin (commit hash, tag or branch; default main)."),
    category: list[str] = typer.Option(None, "--category", "-c", help="Only these categories (key such as mcqa, or a release folder such as NER); repeatable."),
    workspace: Path = typer.Option(DEFAULT_WORKSPACE, "--workspace", "-w", help="Workspace folder: files go to WORKSPACE/tasks."),
    definitions: Path = typer.Option(None, "--definitions", help="RewriteDefinitions.json: definitions for files that carry none."),
    repo: str = typer.Option(None, "--repo", help="Dataset repository (default Henrychur/MedS-Bench)."),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="Hugging Face cache folder (default: HF_HUB_CACHE / HF_HOME)."),
) -> None:
    """Import the released MedS-Bench test files (Hugging Face dataset, or --from DIR) into the workspace."""
    from medsbench.tasks.pull import HF_REPO, import_release, pull_hub, summarize
    from medsbench.tasks.workspace import load_definitions

    defs = load_definitions(definitions)
    defs_name = definitions.name if definitions is not None else None
    tasks_dir = Workspace(workspace).tasks
    if source is not None:
        if revision or repo or cache_dir:
            from medsbench.errors import MedsbenchError

            raise MedsbenchError("--revision, --repo and --cache-dir apply to the Hub, not to --from DIR")
        report = import_release(source, tasks_dir, categories=category or None, definitions=defs, definitions_name=defs_name)
    else:
        report = pull_hub(tasks_dir, repo=repo or HF_REPO, revision=revision, categories=category or None,
                          cache_dir=cache_dir, definitions=defs, definitions_name=defs_name)
    origin = echo_import(summarize(report), report)
    typer.echo(f"imported {len(report.tasks)} task(s) from {origin} into {tasks_dir}; "
               f"{len(report.warnings)} warning(s), {len(report.errors)} error(s)")
    if report.errors:
        raise typer.Exit(1)


@data_app.command("audit")
def audit_cmd(
    paths: list[Path] = typer.Argument(..., help="Task files or folders of task files."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Per task: label distribution, majority baseline, degenerate labels, conflicting duplicates, truncated spans, train overlap.

    Findings never fail the command; exit 1 only when a file cannot be read.
    """
    from rich.markup import escape

    from medsbench.metrics.audit import audit_paths

    report = audit_paths(paths)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        table = Table(title=f"Audit of {len(report.tasks)} task file(s)")
        for col in ("task", "split", "category", "n", "majority (baseline %)", "findings"):
            table.add_column(col, justify="right" if col == "n" else "left", overflow="fold")
        for t in report.tasks:
            base = "-"
            if t.majority_baseline is not None:
                label = t.majority_label if len(t.majority_label or "") <= 24 else (t.majority_label or "")[:23] + "…"
                base = f"{label} ({t.majority_baseline:.1f}){' DEGENERATE' if t.degenerate else ''}"
            elif t.open_ended:
                base = f"open-ended ({t.n_labels} golds)"
            cells = (t.task_id or "-", t.split, t.category or "?", str(t.instances), base, "; ".join(t.findings()) or "-")
            table.add_row(*(escape(c) for c in cells))
        Console(width=max(Console().width, 140), emoji=False).print(table)
    for line in report.errors:
        typer.echo(f"error: {line}", err=True)
    if report.errors:
        raise typer.Exit(1)


@data_app.command("export")
def export_cmd(
    out: Path = typer.Option(..., "--out", help="Folder to write the dataset and its card (README.md) into."),
    tasks: str = typer.Option("available", "--tasks", "-t", help="Task ids, categories, 'all', 'available' or 'quick'."),
    workspace: Path = typer.Option(DEFAULT_WORKSPACE, "--workspace", "-w", help="Workspace folder (tasks/)."),
    fmt: str = typer.Option("parquet", "--format", help="parquet (Hub layout, load_dataset) | hf (save_to_disk folders)."),
    push_to_hub: str = typer.Option(None, "--push-to-hub", help="Also upload to this Hugging Face dataset repo (parquet only)."),
) -> None:
    """Task files as a Hugging Face dataset (one config per task, one split per file) with a dataset card."""
    from medsbench.export.hf import export_task_dataset, push_to_hub as push

    block = export_task_dataset(tasks, workspace, out, fmt=fmt)
    n = sum(sum(c.values()) for c in block["counts"].values())
    typer.echo(f"wrote {n} instance(s) of {len(block['counts'])} task(s) to {out}")
    if push_to_hub:
        typer.echo(f"pushed: {push(out, push_to_hub)}")


@data_app.command("new-task")
def new_task_cmd(
    name: str = typer.Argument(..., help="Short name (slug) of the task: file names and the converter's name, e.g. my_qa."),
    category: str = typer.Option(..., "--category", "-c", help="MedS-Bench category key (mcqa, ner, summarization, ...): picks the scorer."),
    task_id: str = typer.Option(None, "--task-id", help="Task id (default: the name)."),
    title: str = typer.Option(None, "--title", help="A readable title."),
    language: str = typer.Option("en", "--language", help="Language code: en, zh, ja, fr, ru, es."),
    source: str = typer.Option(None, "--source", help="Dataset name."),
    url: str = typer.Option(None, "--url", help="Where the raw release is published."),
    license: str = typer.Option(None, "--license", help="The release's licence, e.g. 'CC BY 4.0'."),
    definition: str = typer.Option(None, "--definition", help="The task definition (what to do, the answer format)."),
    split: str = typer.Option("hash", "--split", help="hash (9:1 by a hash of the item id) | official (the release's test/train files)."),
    out: Path = typer.Option(Workspace().new_tasks, "--out", help="Folder for the task file, converter stub and test."),
) -> None:
    """Scaffold a new task: a task file, a converter stub in the registry's shape, and its test."""
    from medsbench.sources.scaffold import NewTask, scaffold_task

    given = {k: v for k, v in (("source", source), ("url", url), ("license", license)) if v is not None}
    task = NewTask(name=name, category=category, task_id=task_id, title=title, language=language,
                   definition=definition, split=split, **given)
    for path in scaffold_task(task, out):
        typer.echo(f"wrote {path}")
    typer.echo(f"next: edit {name}.py (read_rows, TODO texts), move it to src/medsbench/sources/converters/, then "
               f"`medsbench data convert {name} --raw RAW/{name} --out {Workspace().tasks}` and `medsbench data validate`")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
