"""`medsbench ins`: build MedS-Ins instruction-tuning mixtures."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from medsbench.commands import echo_import, group
from medsbench.errors import MedsbenchError
from medsbench.workspace import DEFAULT_WORKSPACE, Workspace

ins_app = group("MedS-Ins: import the release, build instruction-tuning mixtures, rewrite instructions, show stats.")

WORKSPACE = DEFAULT_WORKSPACE


@ins_app.command("build")
def build_cmd(
    out: Path = typer.Option(..., "--out", help="Mixture folder, e.g. WORKSPACE/mixtures/NAME."),
    tasks: list[Path] = typer.Option([], "--tasks", help="Task folder or file (repeatable); files of the configured splits (default train) are used."),
    ins_files: list[Path] = typer.Option([], "--ins-files", help="Official MedS-Ins task files or folders (repeatable); every instance is training data."),
    config: Path = typer.Option(None, "--config", help="Build config (.yaml/.yml/.toml)."),
    bench_tasks: list[Path] = typer.Option(None, "--bench-tasks", help="Folders whose test-split files are decontaminated against (repeatable; default: the --tasks folders and WORKSPACE/tasks)."),
    workspace: Path = typer.Option(WORKSPACE, "--workspace", "-w", help="Workspace folder: its tasks/ test splits are decontaminated against by default."),
    no_decontamination: bool = typer.Option(False, "--no-decontamination", help="Build without checking against any benchmark test file (the card says so)."),
    definitions: Path = typer.Option(None, "--definitions", help="The official RewriteDefinitions.json (original definitions + the paper's ~19K paraphrases), loaded by path."),
    instructions: list[Path] = typer.Option([], "--instructions", help="More RewriteDefinitions.json-shaped sidecars (repeatable)."),
    seed: int = typer.Option(None, "--seed", help="Override the config's seed."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Also write JSONL shards (jsonl/)."),
    fail_on_contamination: bool = typer.Option(False, "--fail-on-contamination", help="Exit 1 if any training example overlaps a test instance."),
    no_near: bool = typer.Option(False, "--no-near-dup", help="Skip MinHash near-duplicate search (dedupe and decontamination)."),
    workers: int = typer.Option(None, "--workers", min=1, help="Processes for the parallel stages (default: the CPUs available); the output does not depend on it."),
) -> None:
    """Build a mixture: shards in OUT/data, card.md and stats.json (built beside OUT and swapped in whole)."""
    from medsbench.ins import build_mixture, load_ins_config
    from medsbench.ins.inputs import bench_folders

    if not tasks and not ins_files:
        raise MedsbenchError("give at least one --tasks or --ins-files")
    if no_decontamination and bench_tasks:
        raise MedsbenchError("--no-decontamination and --bench-tasks contradict each other: give one")
    cfg = load_ins_config(config)
    changes: dict = {}
    if definitions is not None:
        changes["instructions.definitions"] = definitions
    if instructions:
        changes["instructions.sidecars"] = [*cfg.instructions.sidecars, *instructions]
    if seed is not None:
        changes["seed"] = seed
    if jsonl:
        changes["export.jsonl"] = True
    if fail_on_contamination:
        changes["decontam.fail"] = True
    if no_near:
        changes["dedupe.near"] = False
        changes["decontam.near"] = False
    if no_decontamination:
        changes["decontam.enabled"] = False
    if changes:
        cfg = cfg.updated(**changes)
    bench = list(bench_tasks) if bench_tasks else bench_folders(tasks, Workspace(workspace).tasks)
    from medsbench.fileio import LOCK_NAME, exclusive_lock

    console = Console(stderr=True)
    created = not out.exists()
    try:
        with exclusive_lock(out, "mixture folder"):  # one writer per mixture folder
            stats = build_mixture(
                tasks, out, cfg, ins_files=ins_files, bench_tasks=bench, log=lambda m: console.print(m, highlight=False),
                workers=workers,
            )
    except BaseException:
        # A build that fails before writing anything leaves no folder behind (the lock made it).
        if created and out.is_dir() and [p.name for p in out.iterdir()] == [LOCK_NAME]:
            (out / LOCK_NAME).unlink(missing_ok=True)
            out.rmdir()
        raise
    t = stats["totals"]
    typer.echo(
        f"{out}: {t['examples']} examples from {t['tasks']} task(s) in {t['shards']} shard(s); dropped "
        f"{t['exact_duplicate']} exact dup, {t['near_duplicate']} near dup, {t['contaminated']} contaminated"
    )


@ins_app.command("pull")
def pull_cmd(
    source: Path = typer.Option(None, "--from", help="Local copy of the release (task<N>_<name>.json files) instead of the Hub."),
    repo: str = typer.Option(None, "--repo", help="Dataset repository (default Henrychur/MedS-Ins)."),
    revision: str = typer.Option(None, "--revision", help="Hub revision to pin (commit hash, tag or branch; default main)."),
    workspace: Path = typer.Option(WORKSPACE, "--workspace", "-w", help="Workspace folder: files go to WORKSPACE/meds-ins."),
    out: Path = typer.Option(None, "--out", help="Folder for the imported task files (default WORKSPACE/meds-ins)."),
    definitions: Path = typer.Option(None, "--definitions", help="RewriteDefinitions.json: definitions for files that carry none."),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="Hugging Face cache folder (default: HF_HUB_CACHE / HF_HOME)."),
) -> None:
    """Import the released MedS-Ins (Hugging Face dataset, or --from DIR) as train-split task files, streamed."""
    from medsbench.ins.release import HF_REPO, import_release, pull_release, summarize
    from medsbench.tasks.workspace import load_definitions

    defs = load_definitions(definitions)
    defs_name = definitions.name if definitions is not None else None
    target = out or Workspace(workspace).meds_ins
    if source is not None:
        if revision or repo or cache_dir:
            raise MedsbenchError("--revision, --repo and --cache-dir apply to the Hub, not to --from DIR")
        report = import_release(source, target, definitions=defs, definitions_name=defs_name)
    else:
        report = pull_release(target, repo=repo or HF_REPO, revision=revision, cache_dir=cache_dir, definitions=defs,
                              definitions_name=defs_name)
    origin = echo_import(summarize(report), report)
    unknown = sum(1 for t in report.tasks if t.category is None)
    typer.echo(f"imported {len(report.tasks)} task(s) ({sum(t.instances for t in report.tasks)} instances) from {origin} "
               f"into {target}; {unknown} with an unknown category; {len(report.missing)} of the paper's 122 tasks not in this copy; "
               f"{len(report.warnings)} warning(s), {len(report.errors)} error(s)")
    if report.errors:
        raise typer.Exit(1)


@ins_app.command("rewrite")
def rewrite_cmd(
    tasks: list[Path] = typer.Option(..., "--tasks", help="Task folder or file (repeatable): one rewrite set per task id."),
    model: str = typer.Option(..., "--model", help="Backend spec (default, hf:PATH, openai:MODEL, ...)."),
    n: int = typer.Option(20, "--n", help="Paraphrases per task."),
    out: Path = typer.Option(Workspace().definitions_sidecar, "--out", help="Sidecar to write."),
    max_chars: int = typer.Option(None, "--max-chars", help="Drop longer rewrites (default 3x the original, >= 400)."),
) -> None:
    """Generate instruction paraphrases with a model; writes a RewriteDefinitions.json-shaped sidecar."""
    from medsbench.ins.inputs import describe, task_files
    from medsbench.ins.instructions import rewrite, write_sidecar

    definitions: dict[str, str] = {}
    for root in tasks:
        for p in task_files(root):
            f = describe(p, "tasks")
            definitions.setdefault(f.task_id, f.definition)
    if not definitions:
        raise MedsbenchError(f"no task files in {', '.join(map(str, tasks))}")
    from medsbench.models import load_backend  # imported lazily (torch)

    backend = load_backend(model)
    variants, drops = rewrite(definitions, backend, n=n, max_chars=max_chars)
    write_sidecar(out, variants)
    kept = sum(len(v.paraphrases) for v in variants.values())
    typer.echo(f"wrote {out}: {kept} paraphrase(s) for {len(variants)} task(s); dropped " + ", ".join(f"{k} {v}" for k, v in drops.items()))


@ins_app.command("stats")
def stats_cmd(
    mixture: Path = typer.Argument(..., help="Mixture folder (with stats.json and data/)."),
    as_json: bool = typer.Option(False, "--json", help="Print stats.json."),
) -> None:
    """Print a mixture's numbers (and check the shards' row counts against them)."""
    from medsbench.fileio import dumps, read_json
    from medsbench.ins.stats import check_shards

    path = mixture / "stats.json"
    if not path.exists():
        raise MedsbenchError("not a mixture folder (no stats.json)", where=str(mixture))
    stats = read_json(path)
    check_shards(mixture, stats)
    if as_json:
        typer.echo(dumps(stats, indent=True).decode())
        return
    console = Console()
    t = stats["totals"]
    table = Table(title=f"mixture {stats['name']}")
    table.add_column("")
    table.add_column("n", justify="right")
    for k, v in t.items():
        table.add_row(k.replace("_", " "), str(v))
    console.print(table)
    before_all = stats.get("shares_before_balancing", {})
    for key in ("category", "language", "source", "task"):
        before = before_all.get(key, {})
        tb = Table(title=f"{key} share" + (" (before: clean instances, after: examples written)" if before else ""))
        for col in (key, *(("before", "share") if before else ()), "examples", "share"):
            tb.add_column(col, overflow="fold")
        for name, v in stats["shares"][key].items():
            b = before.get(name)
            cells = (str(b["n"]), f"{100 * b['share']:.2f}%") if b else ("-", "-")
            tb.add_row(name, *(cells if before else ()), str(v["n"]), f"{100 * v['share']:.2f}%")
        console.print(tb)
    console.print("shots: " + ", ".join(f"{k}-shot {v}" for k, v in stats["shots"].items()))
    ins = stats["instructions"]
    console.print(f"instructions: {ins['original']} original, {ins['paraphrase']} paraphrased")


def register(app: typer.Typer) -> None:
    app.add_typer(ins_app, name="ins")
