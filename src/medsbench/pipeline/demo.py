"""`medsbench demo`: the paper in miniature, offline on one CPU.

convert the shared raw data -> build a small MedS-Ins mixture from the train splits (decontaminated
against the test splits) -> LoRA-tune the default SmolLM2-135M-Instruct for a bounded number of steps
-> evaluate base and tuned on the same benchmark items -> add both runs to the board -> print the
per-category comparison (also written to WORK/demo_comparison.{md,json}).

Each stage is skipped when its output already exists, so a rerun after a crash continues.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import atomic_write, read_json, write_json

DEFAULT_RAW = Path("../shared/data/raw")
PRIMARY = ("accuracy", "f1", "rougeL", "bleu1")
# One or two public tasks per category that the shared raw data provides (test splits), for a bounded eval.
DEMO_TASKS = "task57,task123,task12,task106,task114,task126,task1"


def primary_metric(metrics: dict[str, Any]) -> str | None:
    return next((k for k in PRIMARY if k in metrics), None)


def compare(base: dict[str, Any], tuned: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-category rows from two results.json (medsbench.records.Results), strict metrics, same primary key on both sides."""
    rows = []
    for cat in sorted(set(base.get("categories", {})) | set(tuned.get("categories", {}))):
        b = base.get("categories", {}).get(cat, {})
        t = tuned.get("categories", {}).get(cat, {})
        key = primary_metric(b.get("metrics", {})) or primary_metric(t.get("metrics", {}))
        if key is None:
            continue
        bv, tv = b.get("metrics", {}).get(key), t.get("metrics", {}).get(key)
        rows.append({
            "category": cat,
            "metric": key,
            "n_tasks": b.get("n_tasks") or t.get("n_tasks"),
            "base": bv,
            "tuned": tv,
            "delta": (tv - bv) if isinstance(bv, (int, float)) and isinstance(tv, (int, float)) else None,
        })
    return rows


def _fmt(v: Any) -> str:
    return f"{v:.1f}" if isinstance(v, (int, float)) else "-"


def comparison_markdown(rows: list[dict[str, Any]], header: str = "") -> str:
    lines = [header, ""] if header else []
    lines += ["| category | metric | tasks | base | tuned | delta |", "|---|---|---|---|---|---|"]
    for r in rows:
        delta = f"{r['delta']:+.1f}" if r["delta"] is not None else "-"
        lines.append(f"| {r['category']} | {r['metric']} | {r['n_tasks']} | {_fmt(r['base'])} | "
                     f"{_fmt(r['tuned'])} | {delta} |")
    return "\n".join(lines) + "\n"


def run_demo(
    work: Path,
    raw: Path | None = None,
    *,
    steps: int = 300,
    items: int = 10,
    tasks: str | None = None,
    per_task: int = 40,
    shots: int | None = 0,
    seed: int = 0,
    console: Any = None,
) -> list[dict[str, Any]]:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    say = console.print
    work = Path(work)
    raw = Path(raw) if raw else DEFAULT_RAW
    timings: dict[str, float] = {}
    t_all = time.time()

    # 1. task files
    t0 = time.time()
    tasks_dir = work / "tasks"
    if not any(tasks_dir.glob("*.json*")):
        if not raw.is_dir():
            raise MedsbenchError("raw data folder not found (pass --raw)", where=str(raw))
        from medsbench.sources import convert_all

        report = convert_all(raw, tasks_dir)
        say(f"[bold]1/5[/bold] converted {len(report.files)} task file(s) from {raw}")
    else:
        say(f"[bold]1/5[/bold] task files already in {tasks_dir}")
    timings["convert"] = time.time() - t0

    # 2. mixture (train splits; decontaminated against the test splits used below)
    t0 = time.time()
    mixture = work / "mixtures" / "demo"
    if not (mixture / "stats.json").is_file():
        from medsbench.ins import build_mixture
        from medsbench.ins.config import InsConfig

        # Mostly zero-shot: few-shot prompts are long and training tokens are the scarce resource on a CPU.
        changes: dict[str, Any] = {"seed": seed, "balance.cap": per_task, "shots.probs": {0: 1.0}}
        definitions = raw / "meds_ins_definitions" / "RewriteDefinitions.json"  # the paper's paraphrases, by path
        if definitions.is_file():
            changes["instructions.definitions"] = definitions
        cfg = InsConfig().updated(**changes)
        stats = build_mixture([tasks_dir], mixture, cfg, bench_tasks=[tasks_dir], log=lambda m: None)
        n = stats.get("totals", {}).get("examples", "?")
        say(f"[bold]2/5[/bold] built mixture {mixture} ({n} rows)")
    else:
        say(f"[bold]2/5[/bold] mixture already in {mixture}")
    timings["mixture"] = time.time() - t0

    # 3. LoRA tuning of the default model
    t0 = time.time()
    model_dir = work / "models" / "smollm2-demo-lora"
    if not (model_dir / "medsbench_training.json").is_file():
        from medsbench.tune.config import load_config
        from medsbench.tune.train import train

        # Sized for 2 shared CPU cores: SmolLM2-135M fp32 trains ~20-40 tokens/s with LoRA on the top 8 of
        # its 30 layers (backward stops there; all layers: about half that), so 512 tokens per step.
        tcfg = load_config("cpu_small_lora", max_steps=steps, save_steps=max(10, steps // 3), seed=seed,
                           max_length=512, gradient_accumulation_steps=1, warmup_ratio=0.1)
        tcfg.lora.top_layers = 8
        resume = (model_dir / "checkpoints").is_dir() and any((model_dir / "checkpoints").iterdir())
        res = train("default", mixture, model_dir, tcfg, resume=resume)
        say(f"[bold]3/5[/bold] LoRA-tuned {res.steps} steps on {res.examples} examples, mean loss "
            f"{res.train_loss:.3f} ({res.seconds:.0f}s) -> {model_dir}")
    else:
        say(f"[bold]3/5[/bold] tuned model already in {model_dir}")
    timings["tune"] = time.time() - t0

    # 4. evaluate base and tuned on the same items (same seed, limit, prompts)
    from medsbench.pipeline import run_eval

    t0 = time.time()
    selection = tasks or DEMO_TASKS
    runs = {"base": work / "runs" / "smollm2-base", "tuned": work / "runs" / "smollm2-demo-lora"}
    specs = {"base": "default", "tuned": f"hf:{model_dir}"}
    results: dict[str, dict[str, Any]] = {}
    for key in ("base", "tuned"):
        run_dir = runs[key]
        if not (run_dir / "results.json").is_file():
            resume = (run_dir / "manifest.json").is_file()
            # zero-shot like the demo mixture (few-shot prompts multiply the CPU cost of every item)
            run_eval(None if resume else specs[key], selection, workspace=work, out=run_dir, limit=items, seed=seed,
                     shots=shots, resume=resume, progress=False)
        results[key] = read_json(run_dir / "results.json")
    say(f"[bold]4/5[/bold] evaluated base and tuned on {items} item(s) per task")
    timings["eval"] = time.time() - t0

    # 5. board
    from medsbench.board.store import Store
    from medsbench.fileio import exclusive_lock

    with exclusive_lock(work, "board store folder"), Store(work / "board.sqlite") as store:
        store.add_run(runs["base"], model_name="SmolLM2-135M-Instruct (base)", description="medsbench demo: base")
        store.add_run(runs["tuned"], model_name="SmolLM2-135M-Instruct + MedS-Ins LoRA (demo)",
                      description=f"medsbench demo: LoRA, {steps} steps on mixtures/demo")
    say(f"[bold]5/5[/bold] added both runs to {work / 'board.sqlite'} (build the site: medsbench board build)")

    rows = compare(results["base"], results["tuned"])
    timings["total"] = time.time() - t_all
    table = Table(title=f"base vs LoRA-tuned SmolLM2-135M-Instruct ({items} items/task, {shots}-shot, strict metrics)")
    for col in ("category", "metric", "tasks", "base", "tuned", "delta"):
        table.add_column(col, justify="left" if col in ("category", "metric") else "right")
    for r in rows:
        delta = f"{r['delta']:+.1f}" if r["delta"] is not None else "-"
        table.add_row(r["category"], r["metric"], str(r["n_tasks"]), _fmt(r["base"]), _fmt(r["tuned"]), delta)
    console.print(table)
    say("stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    write_json(work / "demo_comparison.json", {"rows": rows, "seconds": timings, "steps": steps, "items": items})
    with atomic_write(work / "demo_comparison.md") as fh:
        fh.write(comparison_markdown(rows))
    return rows
