"""`medsbench score` and `medsbench compare`."""

from __future__ import annotations

from pathlib import Path

import typer


def _fmt(values: dict, key: str | None) -> str:
    if not values:
        return "-"
    if key in ("rougeL", "bleu1") and "bleu1" in values:
        return f"{values['bleu1']:.2f}/{values['rougeL']:.2f}"
    return f"{values.get(key, float('nan')):.2f}"


def score_cmd(
    predictions: Path = typer.Argument(..., help="predictions.jsonl or the official CSV (task_id,input,GT,output)."),
    fmt: str = typer.Option("auto", "--format", help="auto | csv | jsonl"),
    out: Path = typer.Option(None, "--out", help="Where to write results.json (default: beside the predictions)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    strict_ids: bool = typer.Option(False, "--strict-ids", help="Fail on task ids that are not in the catalog."),
) -> None:
    """Score predictions: strict and official (reference) metrics per task and category, with CIs."""
    from rich.console import Console
    from rich.table import Table

    from medsbench.metrics import score_predictions, write_results

    results = score_predictions(predictions, bootstrap=bootstrap, seed=seed, strict_ids=strict_ids, format=fmt)
    target = out or predictions.with_name("results.json")
    write_results(results, target)
    console = Console()
    table = Table(title=f"{predictions.name}: strict | reference (BLEU-1/ROUGE-L for text tasks)")
    for col in ("task", "category", "n", "metric", "strict", "reference", "95% CI (strict)", "parse fail", "empty"):
        table.add_column(col, justify="right" if col not in ("task", "category", "metric") else "left")
    for tid, t in results["tasks"].items():
        key = t["metric"]
        ci = t["ci"].get(key)
        table.add_row(
            tid, t["category"], str(t["n"]), "bleu1/rougeL" if key == "rougeL" else key,
            _fmt(t["metrics"], key), _fmt(t["reference"], key),
            f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "-",
            "-" if t["parse_failure_rate"] is None else f"{100 * t['parse_failure_rate']:.1f}%",
            f"{100 * t['empty_rate']:.1f}%",
        )
    console.print(table)
    cats = Table(title="Categories (macro average over tasks)")
    for col in ("category", "tasks", "strict", "reference"):
        cats.add_column(col)
    for cat, c in results["categories"].items():
        key = "rougeL" if "rougeL" in c["metrics"] else ("accuracy" if "accuracy" in c["metrics"] else "f1")
        cats.add_row(cat, str(c["n_tasks"]), _fmt(c["metrics"], key), _fmt(c["reference"], key))
    for name, p in results["pooled"].items():
        cats.add_row(f"pooled {name}", str(len(p["tasks"])), _fmt(p["metrics"], "rougeL"), _fmt(p["reference"], "rougeL"))
    console.print(cats)
    for w in results["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if results["unknown_task_ids"]:
        console.print(f"[yellow]task ids not in the catalog:[/yellow] {', '.join(results['unknown_task_ids'])}")
    console.print(f"wrote {target}")


def compare_cmd(
    a: Path = typer.Argument(..., help="Predictions of system A."),
    b: Path = typer.Argument(..., help="Predictions of system B (same items)."),
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
    from medsbench.metrics import compare_predictions

    if method not in ("permutation", "bootstrap"):
        raise MedsbenchError(f"unknown --method '{method}' (permutation or bootstrap)")
    res = compare_predictions(a, b, resamples=resamples, seed=seed, method=method, format=fmt)
    table = Table(title=f"A = {a.name}, B = {b.name} (strict; delta = A - B, {method} p-value)")
    for col in ("task / category", "n", "metric", "A", "B", "delta", "95% CI", "p"):
        table.add_column(col)
    for tid, t in res["tasks"].items():
        key = t["metric"]
        v = t["strict"][key]
        table.add_row(tid, str(t["n"]), key, f"{v['a']:.2f}", f"{v['b']:.2f}", f"{v['delta']:+.2f}",
                      f"[{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]", f"{v['p_value']:.4f}")
    for cat, c in res["categories"].items():
        key = next(iter(c["strict"]))
        for k in ("accuracy", "rougeL", "f1"):
            if k in c["strict"]:
                key = k
                break
        v = c["strict"][key]
        table.add_row(f"[bold]{cat}[/bold]", f"{c['n_tasks']} tasks", key, "", "", f"{v['delta']:+.2f}",
                      f"[{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]", f"{v['p_value']:.4f}")
    Console().print(table)
    if out:
        write_json(out, res)


def register(app: typer.Typer) -> None:
    app.command("score", help="Score predictions (strict and official reference metrics, CIs).")(score_cmd)
    app.command("compare", help="Paired test between two prediction files over the same items.")(compare_cmd)
