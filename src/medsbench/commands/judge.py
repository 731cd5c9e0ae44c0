"""`medsbench judge`: model-graded scoring of a run's free-text answers, and its reliability report."""

from __future__ import annotations

from pathlib import Path

import typer

from medsbench.errors import MedsbenchError
from medsbench.prices import Price


def _specs(values: list[str] | None) -> list[str]:
    """Judge specs: repeat --judge, or separate several with ';' (a spec's own options use ',')."""
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(";") if part.strip())
    return out


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def render(judged, console) -> None:
    """Tables of judged.json: scores per task and judge, then the reliability report (fits 80 columns)."""
    from rich import box
    from rich.table import Table

    from medsbench.commands.score import fit_id_table
    from medsbench.judge.reliability import unusable_judges

    names = [j.name for j in judged.judges]
    cols = names + (["jury"] if len(names) > 1 else [])
    unusable = unusable_judges(judged)
    scores = Table(title=f"Judged scores (1-5, 95% CI) of {judged.run}; a separate scoring mode, not BLEU/ROUGE")
    for col in ("task", "rubric", "n", *cols, "parse fail"):
        scores.add_column(col)
    for tid, t in judged.tasks.items():
        cells = []
        for name in cols:
            s = t.jury if name == "jury" else t.judges[name]
            if name in unusable:  # its numbers are not scores: no mean is shown (the reason follows below)
                cells.append(f"unusable (n={s.n_scored})")
                continue
            ci = f" [{s.ci95[0]:.2f}, {s.ci95[1]:.2f}]" if s.ci95 else ""
            cells.append(f"{_f(s.mean)}{ci} (n={s.n_scored})")
        fails = ", ".join(f"{n} {_pct(t.judges[n].parse_failure_rate)}" for n in names)
        scores.add_row(tid, t.rubric, str(t.n), *cells, fails)
    console.print(scores)

    rel = Table(title="Reliability: probe pass rates (passed/scored): reference copy on top, empty / off-topic "
                "at the bottom, truncated lower; agreement (alpha, kappa); Spearman rho with ROUGE-L",
                box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 0))
    rows = []
    for tid, t in judged.tasks.items():
        for name in cols:
            probes = t.probes.get(name, {})

            def cell(kind: str, probes=probes) -> str:
                p = probes.get(kind)
                return "-" if p is None else f"{p.passed}/{p.n_scored} {_pct(p.pass_rate)}"

            agree = t.agreement if name == cols[0] else None
            rows.append([
                tid, name, cell("reference"), cell("empty"), cell("off_topic"), cell("truncated"),
                _f(agree.krippendorff_alpha) if agree else "", _f(agree.cohen_kappa) if agree else "",
                _f(t.rouge_l_spearman.get(name)),
            ])
    fit_id_table(rel, "task", rows, ("judge", "ref top", "empty", "off-topic", "truncated", "alpha", "kappa", "rho RL"),
                 console.width)
    console.print(rel)
    for name, table in judged.probe_totals.items():
        parts = [f"{k} {p.passed}/{p.n_scored} ({_pct(p.pass_rate)})" for k, p in table.items()]
        console.print(f"probes, all tasks, {name}: " + "; ".join(parts))
    for j in judged.judges:
        cost = f", ${j.cost_usd:.4f}" if j.cost_usd is not None else ""
        tokens = f"{j.prompt_tokens if j.prompt_tokens is not None else '?'} prompt + {j.output_tokens if j.output_tokens is not None else '?'} output tokens"
        console.print(f"judge {j.name} ({j.spec}): {j.requests} request(s) sent, {j.cached} cached, {j.errors} failed; "
                      f"{tokens}{cost}", markup=False, highlight=False)
    for name, why in unusable.items():
        what = "the jury" if name == "jury" else f"judge {name}"
        console.print(f"{what}: this judge is unusable ({why}); do not read its numbers as scores", markup=False)


def judge_cmd(
    run: Path = typer.Argument(..., help="Run folder (with predictions.jsonl)."),
    judge: list[str] = typer.Option(
        None, "--judge", "-j",
        help="Judge model spec (openai:MODEL,base_url=.. | hf:PATH | vllm:PATH | default). Repeat for a jury, "
        "or separate specs with ';'.",
    ),
    tasks: str = typer.Option(None, "--tasks", help="Only these tasks/categories (e.g. task114,explanation)."),
    limit: int = typer.Option(None, "--limit", min=1, help="At most N items per task."),
    cache: Path = typer.Option(None, "--cache", help="Result cache (default: the run's, WORKSPACE/cache.sqlite)."),
    max_tokens: int = typer.Option(300, "--max-tokens", min=8, help="Token limit of each judge reply."),
    probes: int = typer.Option(None, "--probes", min=0, help="Probe items per task (default: rubrics/probes.yaml; 0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the probe sample and the bootstrap."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs (0: none)."),
    price: str = typer.Option(None, "--price", help="USD per million prompt/output tokens, e.g. 2.5/10 (cost estimate)."),
    report: bool = typer.Option(False, "--report", help="Only show RUN/judged.json (scores and reliability); ask no judge."),
) -> None:
    """Grade a run's free-text answers with judge models against the references (rubric scores 1-5)."""
    from rich.console import Console

    from medsbench.records.folder import RunFolder

    console = Console()
    folder = RunFolder(run)
    if report:
        if not folder.has_judged():
            raise MedsbenchError("no judged.json in the run folder (judge it first: medsbench judge RUN --judge SPEC)",
                                 where=str(run))
        render(folder.judged(), console)
        return
    specs = _specs(judge)
    if not specs:
        raise MedsbenchError("give at least one --judge SPEC (e.g. --judge default, --judge openai:gpt-4o)")
    from medsbench.commands.render import ConsoleReporter
    from medsbench.judge.run import JudgeConfig, judge_run

    config = JudgeConfig(tasks=tasks, limit=limit, cache=cache, max_tokens=max_tokens, probes=probes != 0,
                         probe_sample=probes, seed=seed, bootstrap=bootstrap, price=Price.parse(price) if price is not None else None)
    reporter = ConsoleReporter()
    result = judge_run(run, specs, config, progress=lambda msg: reporter.message(msg, "detail"))
    render(result, console)
    console.print(f"wrote {folder.judged_path}")


def register(app: typer.Typer) -> None:
    app.command("judge", help="Judged scoring of free-text answers by model judges (rubrics, jury, reliability).")(judge_cmd)
