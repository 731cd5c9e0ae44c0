"""`medsbench score` and `medsbench compare`."""

from __future__ import annotations

from pathlib import Path

import typer


SHORT = {"accuracy": "acc", "bleu1": "B1", "rougeL": "RL", "f1": "F1"}


def _fmt(values: dict[str, float], keys: tuple[str, ...]) -> str:
    """The headline metrics of a row, e.g. ``71.20`` or ``31.05/28.40`` (BLEU-1/ROUGE-L)."""
    if not values:
        return "-"
    return "/".join(f"{values[k]:.2f}" if k in values else "-" for k in keys)


def _load(path: Path, fmt: str):
    """(rows, manifest or None, run folder or None, label) of a run folder or a predictions file.

    A run folder (or its predictions.jsonl) is read through RunFolder: rows checked against its plan,
    its protocol taken from its manifest; any other file is a bare predictions file.
    """
    from medsbench.records.folder import RunFolder
    from medsbench.records.predictions import read_predictions

    if path.is_dir() or (path.is_file() and RunFolder(path.parent).is_run() and path == RunFolder(path.parent).predictions_path):
        folder = RunFolder.of(path)
        return folder.predictions(), folder.manifest(), folder, folder.path.resolve().name
    return read_predictions(path, format=fmt), None, None, path.name


def score_cmd(
    predictions: Path = typer.Argument(..., help="A run folder, its predictions.jsonl, or the official CSV (task_id,input,GT,output)."),
    fmt: str = typer.Option("auto", "--format", help="auto | csv | jsonl"),
    out: Path = typer.Option(None, "--out", help="Where to write results.json (default: beside the predictions)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    strict_ids: bool = typer.Option(False, "--strict-ids", help="Fail on task ids that are not in the catalog."),
) -> None:
    """Score predictions: strict and official (reference) metrics per task and category, with CIs."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from medsbench.fileio import sha256_file
    from medsbench.metrics import get_scorer, headline_metrics, score_predictions, write_results
    from medsbench.records.results import InputFile

    rows, manifest, folder, label = _load(predictions, fmt)
    results = score_predictions(rows, bootstrap=bootstrap, seed=seed, strict_ids=strict_ids,
                                protocol=manifest.protocol if manifest else None,
                                protocol_deviations=manifest.deviations if manifest else ())
    source = folder.predictions_path if folder is not None else predictions
    results.inputs = [InputFile(path=str(source), sha256=sha256_file(source))]
    if out is None and folder is not None:
        target = folder.results_path
        folder.save_results(results)
    else:
        target = out or predictions.with_name("results.json")
        write_results(results, target)
    console = Console()
    table = Table(title=f"{label}: strict | reference (official scripts)", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1, 0, 0),
                  caption="n: scored/all when items failed; B1/RL: BLEU-1/ROUGE-L; maj: majority baseline, ! degenerate")
    width = max(len(t) for t in results.tasks)
    for col in ("task", "n", "metric", "strict", "reference", "95% CI", "parse", "empty", "maj"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right", no_wrap=col == "task",
                         min_width=width if col == "task" else None, overflow="fold")
    for tid, t in results.tasks.items():
        scorer = get_scorer(t.scorer) if t.scorer else None
        keys = scorer.headline if scorer else (t.metric,)
        ci = t.ci.get(t.metric)
        table.add_row(
            tid, f"{t.n}/{t.n + t.n_failed}" if t.n_failed else str(t.n), "/".join(SHORT.get(k, k) for k in keys),
            _fmt(t.metrics, keys) if t.metrics else "[red]all failed[/red]", _fmt(t.reference, keys),
            f"{ci[0]:.1f}-{ci[1]:.1f}" if ci else "-",
            "-" if t.parse_failure_rate is None else f"{100 * t.parse_failure_rate:.1f}%",
            "-" if t.empty_rate is None else f"{100 * t.empty_rate:.1f}%",
            "-" if t.majority_baseline is None else f"{t.majority_baseline:.0f}" + ("[yellow]![/yellow]" if t.degenerate else ""),
        )
    console.print(table)
    cats = Table(title="Categories (macro average over tasks)", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("category", "tasks", "strict", "reference"):
        cats.add_column(col, no_wrap=col == "category")
    for cat, c in results.categories.items():
        keys = headline_metrics(cat)
        missing = f" (+{len(c.missing_tasks)} without metrics)" if c.missing_tasks else ""
        cats.add_row(cat, f"{c.n_tasks}{missing}", _fmt(c.metrics, keys), _fmt(c.reference, keys))
    for name, p in results.pooled.items():
        keys = headline_metrics(name)
        cats.add_row(f"pooled {name}", str(len(p.tasks)), _fmt(p.metrics, keys), _fmt(p.reference, keys))
    console.print(cats)
    for w in results.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if results.unknown_task_ids:
        console.print(f"[yellow]task ids not in the catalog:[/yellow] {', '.join(results.unknown_task_ids)}")
    console.print(f"wrote {target}")


def compare_cmd(
    a: Path = typer.Argument(..., help="Run folder or predictions of system A."),
    b: Path = typer.Argument(..., help="Run folder or predictions of system B (same items)."),
    fmt: str = typer.Option("auto", "--format", help="auto | csv | jsonl"),
    resamples: int = typer.Option(1000, "--resamples", min=100, help="Bootstrap / permutation resamples."),
    seed: int = typer.Option(0, "--seed"),
    method: str = typer.Option("permutation", "--method", help="p-value from: permutation | bootstrap"),
    out: Path = typer.Option(None, "--out", help="Also write the comparison as JSON."),
) -> None:
    """Paired test of A vs B per task and category over the items both files contain."""
    from rich.console import Console
    from rich.table import Table

    from medsbench.errors import MedsbenchError
    from medsbench.fileio import write_json
    from medsbench.metrics import primary_metric
    from medsbench.metrics.compare import compare_rows

    if method not in ("permutation", "bootstrap"):
        raise MedsbenchError(f"unknown --method '{method}' (permutation or bootstrap)")
    rows_a, _, _, label_a = _load(a, fmt)
    rows_b, _, _, label_b = _load(b, fmt)
    if label_a == label_b:
        label_a, label_b = str(a), str(b)
    res = {"a": str(a), "b": str(b), **compare_rows(rows_a, rows_b, resamples=resamples, seed=seed, method=method)}
    table = Table(title=f"A = {label_a}, B = {label_b} (strict; delta = A - B, {method} p-value)")
    for col in ("task / category", "n", "metric", "A", "B", "delta", "95% CI", "p"):
        table.add_column(col)
    for tid, t in res["tasks"].items():
        key = t["metric"]
        v = t["strict"][key]
        table.add_row(tid, str(t["n"]), key, f"{v['a']:.2f}", f"{v['b']:.2f}", f"{v['delta']:+.2f}",
                      f"[{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]", f"{v['p_value']:.4f}")
    for cat, c in res["categories"].items():
        key = primary_metric(cat)
        if key not in c["strict"]:  # a category of mixed scorers compared on other tasks only
            key = next(iter(c["strict"]))
        v = c["strict"][key]
        table.add_row(f"[bold]{cat}[/bold]", f"{c['n_tasks']} tasks", key, "", "", f"{v['delta']:+.2f}",
                      f"[{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]", f"{v['p_value']:.4f}")
    Console().print(table)
    if out:
        write_json(out, res)


def register(app: typer.Typer) -> None:
    app.command("score", help="Score predictions (strict and official reference metrics, CIs).")(score_cmd)
    app.command("compare", help="Paired test between two prediction files over the same items.")(compare_cmd)
