"""`medsbench contam`: which items of a run a corpus contains, and the run's scores on the clean items."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def contam_table(report, width: int | None = None):
    """Per task: items, contaminated, clean and contaminated primary scores (strict | reference), the difference."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"{report.run}: {report.n_contaminated} of {report.n_items} items contaminated "
                        f"(rule: {report.rule.text}, {report.rule.ngram}-grams)", box=box.SIMPLE_HEAD, pad_edge=False,
                  caption="clean / contaminated: primary metric, strict | reference; diff = clean - contaminated, "
                          "strict, 95% CI (each subset resampled)")
    for col in ("task", "items", "contam.", "clean", "contaminated", "diff", "95% CI"):
        table.add_column(col, justify="left" if col == "task" else "right", no_wrap=col == "task")
    for tid, t in report.tasks.items():
        m = t.metric
        clean = f"{_fmt(t.clean.metrics.get(m))} | {_fmt(t.clean.reference.get(m))}" if t.clean else "-"
        dirty = f"{_fmt(t.contaminated.metrics.get(m))} | {_fmt(t.contaminated.reference.get(m))}" if t.contaminated else "-"
        diff = t.difference
        ci = diff.ci.get(m) if diff else None
        table.add_row(tid, str(t.n_items), str(t.n_contaminated), clean, dirty,
                      f"{diff.metrics[m]:+.2f}" if diff and m in diff.metrics else "-",
                      f"[{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "-")
    return table


def contam_cmd(
    run: Path = typer.Argument(..., help="A run folder (scored or not)."),
    against: list[Path] = typer.Option(..., "--against", help="Corpus: a MedS-Ins mixture folder or .parquet, a task "
                                       "file or folder, a .jsonl or .txt file, a datasets save_to_disk folder "
                                       "(repeatable)."),
    text: str = typer.Option("input", "--text", help="What of an item is checked: input | input+gold."),
    ngram: int = typer.Option(None, "--ngram", min=1, help="n-gram size for Latin-script text [default: the "
                              "decontamination rule's, 13]", show_default=False),
    no_near: bool = typer.Option(False, "--no-near", help="Leave out MinHash near-duplicates (exact input and n-grams only)."),
    max_ngram_freq: int = typer.Option(None, "--max-ngram-freq", min=1, help="n-grams found in more of the run's "
                                       "items are boilerplate and ignored [default: the rule's, 5]", show_default=False),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
) -> None:
    """Flag the run's items found in a corpus (the ins decontamination rule) and score clean vs contaminated items.

    Writes RUN/contamination.json; `medsbench board add RUN` then shows the clean scores.
    """
    from rich.console import Console

    from medsbench.contam import ContamOptions, check_run
    from medsbench.ins.config import DecontamConfig
    from medsbench.records.folder import RunFolder

    settings: dict[str, Any] = {"near": not no_near}
    if ngram is not None:
        settings["ngram"] = ngram
    if max_ngram_freq is not None:
        settings["max_ngram_test_freq"] = max_ngram_freq
    options = ContamOptions(text=text, decontam=DecontamConfig(**settings), bootstrap=bootstrap, seed=seed)
    err = Console(stderr=True)
    report = check_run(run, against, options, progress=lambda m: err.print(m, style="dim", markup=False, highlight=False))
    Console(width=None if sys.stdout.isatty() else 120).print(contam_table(report))
    files = sum(len(c.files) for c in report.corpora)
    records = sum(f.records for c in report.corpora for f in c.files)
    err.print(f"checked {report.n_items} items against {records} records in {files} file(s) in {report.seconds:.1f} s; "
              f"wrote {RunFolder(run).contamination_path}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("contam", help="Flag a run's items found in a corpus; scores on clean vs contaminated items.")(contam_cmd)
