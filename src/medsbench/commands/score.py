"""`medsbench score` and `medsbench compare`."""

from __future__ import annotations

import io
from pathlib import Path

import typer


SHORT_ID = 8  # ids up to this long ("task1001") are never wrapped


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


def fit_id_table(table, header: str, rows: list[list[str]], headers: tuple[str, ...], width: int) -> None:
    """Fill ``table`` (rows: an id, then one cell per header) so that it fits ``width`` columns:
    value columns never wrap (they are what the table is for); ids as wide as the rest leaves
    stay on one line, longer ones wrap (fold) at that width; ids up to :data:`SHORT_ID`
    characters are never wrapped."""
    from rich.console import Console

    longest = max([len(header), *(len(r[0]) for r in rows)])
    table.add_column(header, justify="left", overflow="fold", min_width=longest, max_width=longest)
    for col in headers:
        table.add_column(col, justify="left" if col in ("metric", "judge") else "right", no_wrap=True)
    for r in rows:
        table.add_row(*r)
    floor = max(min(longest, SHORT_ID), len(header))
    for _ in range(3):  # measured on the rendered lines: rich's own measure is off by a column here and there
        lines = Console(width=10_000, file=io.StringIO(), color_system=None).render_lines(table, pad=False)
        excess = max((sum(len(seg.text) for seg in line) for line in lines), default=0) - width
        current = table.columns[0].max_width or longest
        if excess <= 0 or current <= floor:
            break
        table.columns[0].min_width = table.columns[0].max_width = max(current - excess, floor)


def task_table(results, title: str, width: int = 80):
    """The per-task table of ``medsbench score`` (readable at 80 columns)."""
    from rich import box
    from rich.table import Table

    from medsbench.metrics import get_scorer

    rows = []
    for tid, t in results.tasks.items():
        keys = get_scorer(t.scorer).headline if t.scorer else (t.metric,)
        ci = t.ci.get(t.metric)
        rows.append([
            tid, f"{t.n}/{t.n + t.n_failed}" if t.n_failed else str(t.n), get_scorer(t.scorer).column if t.scorer else t.metric,
            _fmt(t.metrics, keys) if t.metrics else "[red]all failed[/red]", _fmt(t.reference, keys),
            f"{ci[0]:.1f}-{ci[1]:.1f}" if ci else "-",
            "-" if t.parse_failure_rate is None else f"{100 * t.parse_failure_rate:.1f}%",
            "-" if t.empty_rate is None else f"{100 * t.empty_rate:.1f}%",
            "-" if t.majority_baseline is None else f"{t.majority_baseline:.0f}" + ("[yellow]![/yellow]" if t.degenerate else ""),
        ])
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 0),
                  caption="n: scored/all when items failed; B1/RL: BLEU-1/ROUGE-L; maj: majority baseline, ! degenerate")
    fit_id_table(table, "task", rows, ("n", "metric", "strict", "reference", "95% CI", "parse", "empty", "maj"), width)
    return table


def category_table(results):
    """Categories (macro and micro averages), their language and source slices, and pooled groups."""
    from rich import box
    from rich.table import Table

    from medsbench.metrics import headline_metrics

    cats = Table(title="Categories: macro = mean of tasks (as the official scripts), micro = pooled items",
                 box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 0))
    rows = []
    for cat, c in results.categories.items():
        keys = headline_metrics(cat)
        missing = f" (+{len(c.missing_tasks)} without metrics)" if c.missing_tasks else ""
        micro = c.micro
        rows.append([cat, f"{c.n_tasks}{missing}", _fmt(c.metrics, keys), _fmt(c.reference, keys),
                     _fmt(micro.metrics, keys) if micro else "-", _fmt(micro.reference, keys) if micro else "-"])
        for kind, slices in c.slices.items():
            for key, sl in slices.items():
                rows.append([f"  {kind} {key}", str(len(sl.tasks)), _fmt(sl.macro.metrics, keys),
                             _fmt(sl.macro.reference, keys), _fmt(sl.micro.metrics, keys) if sl.micro else "-",
                             _fmt(sl.micro.reference, keys) if sl.micro else "-"])
    for name, pooled in results.pooled.items():
        keys = headline_metrics(name)
        rows.append([f"pooled {name}", str(len(pooled.tasks)), "-", "-", _fmt(pooled.metrics, keys),
                     _fmt(pooled.reference, keys)])
    cats.add_column("category", overflow="fold")
    cats.add_column("tasks", overflow="fold")
    for col in ("macro strict", "macro ref", "micro strict", "micro ref"):
        cats.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        cats.add_row(*r)
    return cats


def score_cmd(
    predictions: Path = typer.Argument(..., help="A run folder, its predictions.jsonl, or the official CSV (task_id,input,GT,output)."),
    fmt: str = typer.Option("auto", "--format", help="auto | csv | jsonl"),
    out: Path = typer.Option(None, "--out", help="Where to write results.json (default: beside the predictions)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    strict_ids: bool = typer.Option(False, "--strict-ids", help="Fail on task ids that are not in the catalog."),
    tasks_dir: Path = typer.Option(
        None, "--tasks-dir",
        help="Task folder: closed-label tasks take their label sets from their full test files (for a --limit "
        "sample); else from their scorer and the catalog."),
    price: str = typer.Option(None, "--price", help="USD per million prompt/completion tokens of the model, IN/OUT "
                              "(e.g. 2.5/10): results.json's cost."),
    prices: Path = typer.Option(None, "--prices", help="Price table (YAML/JSON: {model or spec pattern: {input: USD "
                                "per 1M, output: USD per 1M}}), looked up by the run's model."),
) -> None:
    """Score predictions: strict and official (reference) metrics per task and category, with CIs."""
    from rich.console import Console

    from medsbench.fileio import sha256_file
    from medsbench.metrics import score_predictions, write_results
    from medsbench.metrics.score import RunProtocol, TaskFileLabels
    from medsbench.pipeline import run_price
    from medsbench.prices import resolve_price
    from medsbench.records.folder import RESULTS
    from medsbench.records.results import InputFile

    rows, manifest, folder, label = _load(predictions, fmt)
    if tasks_dir is not None:
        labels = TaskFileLabels.folder(tasks_dir)
    else:  # a run folder: the full test files it recorded (unchanged ones), for the label sets of a sample
        labels = TaskFileLabels(manifest.test_files()) if manifest is not None else None
    results = score_predictions(rows, bootstrap=bootstrap, seed=seed, strict_ids=strict_ids, labels=labels,
                                protocol=RunProtocol.of(manifest),
                                price=run_price(resolve_price(price, prices), manifest) if price or prices else None)
    source = folder.predictions_path if folder is not None else predictions
    results.inputs = [InputFile(path=str(source), sha256=sha256_file(source))]
    if out is None and folder is not None:
        target = folder.results_path
        folder.save_results(results)
    else:
        target = out or predictions.with_name(RESULTS)
        write_results(results, target)
    console = Console()
    console.print(task_table(results, f"{label}: strict | reference (official scripts)", console.width))
    console.print(category_table(results))
    if results.usage is not None:
        from medsbench.commands.render import usage_line

        console.print(usage_line(results.usage.model_dump(), results.price.model_dump() if results.price else None),
                      markup=False, highlight=False)
    if (price or prices) and results.price is None:
        console.print(f"[yellow]warning:[/yellow] no price in {prices} matches the run's model: not priced")
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
