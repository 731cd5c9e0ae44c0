"""`medsbench demo`: the paper's claim in miniature, offline on a 2-core CPU.

convert the shared raw data -> build a MedS-Ins mixture from the TRAIN splits of the evaluated
tasks only (decontaminated against every test split, equal share of training tokens per task) ->
LoRA-tune the default SmolLM2-135M-Instruct -> evaluate base and tuned on the same test items ->
add both runs to the board -> paired comparison of the two prediction files
(:func:`medsbench.metrics.compare.compare_predictions`: permutation p-value and paired bootstrap
95% CI of the delta, per task and per category, strict and reference mode), written to
WORK/demo_comparison.{json,md}.

Design (why these defaults): ten items on seven tasks cannot separate base from tuned (a 30-point
change is 3 items). The budget goes to two tasks with fixed, short answers where tuning on their
train split can plausibly help a 135M model under strict metrics: BC5CDR chemical NER (task126,
micro F1; ~100-token prompts, cheap) and PubMedQA yes/no/maybe (task123, accuracy; ~440-token
prompts). With 150 items per task a paired accuracy test detects (80% power, two-sided 0.05) a
delta of about 2.8 * sqrt(d / n): 14.5 points when the two runs disagree on d = 40% of the items,
10.2 points at d = 20%; each row also reports that number from its own CI width (``mde80``).
Evaluation is zero-shot like the mixture, with the paper's original definitions where
RewriteDefinitions.json has them (both runs get the same prompts) and at most 64 new tokens
(the catalog allows 200; both answers fit in a line: named in the comparison's settings).

Measured with the defaults on the idle 2-core machine (``/tmp/demo-full``): 19 min 0 s in all
(convert 16 s, mixture 15 s, 100 LoRA steps 558 s, base evaluation 310 s, tuned 238 s). Strict,
tuned - base [95% CI], permutation p: NER (task126) F1 0.0 -> 37.3, +37.3 [+29.7, +44.4],
p = 0.0005 (the floor of 2000 resamples), tuned better; PubMedQA (task123) accuracy 44.7 -> 51.3,
+6.7 [-0.7, +14.0], p = 0.11, no difference found (this n detects about 11 points; the tuned
model answers "yes", the majority label, on 145 of 150 items, the base model on 119).

Each stage is skipped when its output exists, so a rerun after a crash continues (training from
its last checkpoint, evaluation with ``--resume``). The settings are recorded in WORK/demo.json;
a rerun with other settings in the same folder is refused instead of mixing two experiments.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.board.publish import add_run
from medsbench.board.store import Store
from medsbench.errors import MedsbenchError
from medsbench.fileio import LOCK_NAME, atomic_write, read_json, write_json
from medsbench.ins import build_mixture
from medsbench.ins.config import InsConfig
from medsbench.metrics import primary_metric
from medsbench.metrics.compare import ALPHA as COMPARE_ALPHA
from medsbench.metrics.compare import compare_rows, difference
from medsbench.models.spec import ModelSpec
from medsbench.pipeline import evaluate
from medsbench.records.folder import RunFolder
from medsbench.models.training import training_record_path
from medsbench.reporter import LogReporter, Reporter
from medsbench.sources import convert_all
from medsbench.tasks.format import iter_instances
from medsbench.tasks.workspace import resolve_tasks
from medsbench.workspace import Workspace
from medsbench.tune.config import load_tune_config
from medsbench.tune.train import train

log = logging.getLogger(__name__)

DEFAULT_RAW = Path("../shared/data/raw")
DEMO_TASKS = "task126,task123"
DEFAULT_STEPS = 100
DEFAULT_ITEMS = 150
LEARNING_RATE = 5e-4  # LoRA on a 135M model for ~100 steps (the shipped cpu_small_lora config: 2e-4)
MAX_LENGTH = 768  # tokens per packed training row: keeps 99.8% of the PubMedQA examples whole (512: 80%)
MAX_NEW_TOKENS = 64
RESAMPLES = 2000
STATE = "demo.json"
# Characters of a training example besides input + output (definition, chat template), and
# characters per token, to size each task's share of the training tokens before tokenising
# (fitted on SmolLM2's tokenizer: 95 tokens per BC5CDR example, 440 per PubMedQA example), and the
# margin that keeps the packed rows (about 90% full) from running out before the last step.
_OVERHEAD_CHARS = 235
_CHARS_PER_TOKEN = 4.0
_MARGIN = 1.2

# ------------------------------------------------------------------------- comparison rows


def verdict(delta: float, ci: list[float], p_value: float) -> str:
    """Plain reading of one paired comparison (delta = tuned - base), by
    :func:`medsbench.metrics.compare.difference`: a difference is claimed only when the 95% CI of
    the delta excludes 0 AND the permutation p-value is below its alpha; otherwise (in particular
    whenever the CI contains 0) no difference was found.
    """
    return {"none": "no difference found", "higher": "tuned better",
            "lower": "tuned worse"}[difference(delta, ci[0], ci[1], p_value)]


def _flip(v: dict[str, Any]) -> tuple[float, list[float]]:
    """compare_predictions(base, tuned) reports base - tuned; the demo reports tuned - base."""
    lo, hi = v["ci"]
    return 0.0 - float(v["delta"]), [0.0 - float(hi), 0.0 - float(lo)]


def _row(level: str, name: str, category: str, n: int, metric: str, base: float, tuned: float,
         v: dict[str, Any]) -> dict[str, Any]:
    delta, ci = _flip(v)
    return {
        "level": level,
        "name": name,
        "category": category,
        "n": n,
        "metric": metric,
        "base": round(base, 2),
        "tuned": round(tuned, 2),
        "delta": round(delta, 2) + 0.0,  # + 0.0: no "-0.0"
        "ci": [round(ci[0], 2) + 0.0, round(ci[1], 2) + 0.0],
        "p_value": float(v["p_value"]),
        # smallest |delta| this n detects with 80% power at two-sided 0.05, from the CI width
        "mde80": round((2.8 / 3.92) * (ci[1] - ci[0]), 2),
        "verdict": verdict(delta, ci, float(v["p_value"])),
    }


def comparison_rows(cmp: dict[str, Any], mode: str = "strict") -> list[dict[str, Any]]:
    """Per-category rows, then per-task rows, from ``compare_predictions(base, tuned)``.

    Each row: base, tuned, delta = tuned - base, 95% CI of the delta, p-value, n, verdict.
    A category's base and tuned are the macro averages of its tasks' values (as its delta is).
    """
    rows: list[dict[str, Any]] = []
    tasks = cmp.get("tasks", {})
    for cat, c in cmp.get("categories", {}).items():
        members = [t for t in tasks.values() if t["category"] == cat]
        key = primary_metric(cat)
        if key not in c.get(mode, {}):  # a category of mixed scorers: a metric all its tasks share
            if not c.get(mode):
                continue
            key = next(iter(c[mode]))
        vals = [t[mode][key] for t in members if key in t[mode]]
        if not vals:
            continue
        base = sum(v["a"] for v in vals) / len(vals)
        tuned = sum(v["b"] for v in vals) / len(vals)
        rows.append(_row("category", cat, cat, sum(t["n"] for t in members), key, base, tuned, c[mode][key]))
    for tid, t in tasks.items():
        key = t["metric"]
        v = t[mode].get(key)
        if v is None:
            continue
        rows.append(_row("task", tid, t["category"], t["n"], key, v["a"], v["b"], v))
    return rows


def format_p(p: float) -> str:
    return f"{p:.4f}" if p >= 0.0001 else f"{p:.1e}"


def comparison_markdown(rows_by_mode: dict[str, list[dict[str, Any]]], header: str = "") -> str:
    lines = [header, ""] if header else []
    for mode, rows in rows_by_mode.items():
        lines += [f"### {mode} metrics (delta = tuned - base)", "",
                  "| level | name | n | metric | base | tuned | delta | 95% CI | p | MDE80 | verdict |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(
                f"| {r['level']} | {r['name']} | {r['n']} | {r['metric']} | {r['base']:.1f} | {r['tuned']:.1f} | "
                f"{r['delta']:+.1f} | [{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}] | {format_p(r['p_value'])} | "
                f"{r['mde80']:.1f} | {r['verdict']} |"
            )
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- stages


def select_tasks(selection: str, tasks_dir: Path) -> dict[str, dict[str, Path]]:
    """The evaluated tasks' files; each must have a train split (the mixture is built from them)."""
    entries, files, _skipped = resolve_tasks(selection, tasks_dir, validate=False)
    if not entries:
        raise MedsbenchError(f"--tasks '{selection}' selects no task with a test file in {tasks_dir}")
    missing = [e.id for e in entries if "train" not in files[e.id]]
    if missing:
        raise MedsbenchError(
            f"no train split for {', '.join(missing)}: the demo tunes on the evaluated tasks' train splits "
            "(choose tasks that `medsbench data convert` writes a .train file for)"
        )
    return {e.id: files[e.id] for e in entries}


def token_caps(train_files: dict[str, Path], budget_tokens: int) -> dict[str, int]:
    """Per-task instance caps giving every task an equal share of ``budget_tokens`` training tokens
    (estimated from characters), so long-prompt tasks do not crowd out short ones."""
    share = _MARGIN * budget_tokens / max(1, len(train_files))
    caps = {}
    for tid, path in train_files.items():
        n = chars = 0
        for inst in iter_instances(path):
            n += 1
            chars += len(inst.input) + len(inst.output[0] if inst.output else "")
        mean_tokens = (chars / max(1, n) + _OVERHEAD_CHARS) / _CHARS_PER_TOKEN
        caps[tid] = max(1, min(n, math.ceil(share / mean_tokens)))
    return caps


def _check_settings(work: Path, settings: dict[str, Any]) -> dict[str, Any]:
    path = work / STATE
    state = read_json(path) if path.is_file() else {"settings": settings, "seconds": {}}
    old = state.get("settings", {})
    changed = sorted(k for k in settings if k in old and old[k] != settings[k])
    if changed:
        was = ", ".join(f"{k}={old[k]!r}" for k in changed)
        raise MedsbenchError(f"this demo folder was started with {was}: rerun with the same settings or use a new --work",
                             where=str(path))
    state["settings"] = settings
    return state


def _move_aside(folder: Path) -> Path:
    """A training folder left without any checkpoint (killed in its first steps): keep it, start over."""
    k = 1
    while (target := folder.with_name(f"{folder.name}.incomplete-{k}")).exists():
        k += 1
    folder.rename(target)
    return target


@dataclass(frozen=True)
class DemoConfig:
    """Settings of one demo (recorded in WORK/demo.json; a rerun with others is refused)."""

    work: Path
    raw: Path = DEFAULT_RAW
    steps: int = DEFAULT_STEPS
    items: int = DEFAULT_ITEMS
    tasks: str = DEMO_TASKS
    per_task: int | None = None
    shots: int | None = 0
    seed: int = 0
    threads: int | None = None
    max_new_tokens: int = MAX_NEW_TOKENS
    max_length: int = MAX_LENGTH
    base_model: str = "default"
    resamples: int = RESAMPLES

    def recorded(self) -> dict[str, Any]:
        """The settings that define the experiment (not where it runs or how fast)."""
        return {"tasks": self.tasks, "steps": self.steps, "items": self.items, "per_task": self.per_task,
                "shots": self.shots, "seed": self.seed, "max_new_tokens": self.max_new_tokens,
                "max_length": self.max_length, "base_model": self.base_model}


def run_demo(config: DemoConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run (or continue) the demo in ``config.work``; returns the comparison record also written to
    ``WORK/demo_comparison.json`` (``rows`` per mode, ``seconds`` per stage, ``settings``)."""
    if config.steps < 1 or config.items < 1:
        raise MedsbenchError("--steps and --items must be at least 1")
    return _Demo(config, reporter or LogReporter()).run()


class _Demo:
    """The demo's six stages; each is skipped when its output exists."""

    def __init__(self, config: DemoConfig, reporter: Reporter):
        self.cfg, self.reporter, self.say = config, reporter, reporter.message
        self.ws = Workspace(Path(config.work))
        self.definitions: Path | None = None
        self.ws.root.mkdir(parents=True, exist_ok=True)
        self.state = _check_settings(self.ws.root, config.recorded())
        self.seconds: dict[str, float] = self.state.setdefault("seconds", {})
        write_json(self.ws.root / STATE, self.state)

    def done(self, stage: str, t0: float) -> None:
        self.seconds[stage] = round(time.time() - t0, 1)
        write_json(self.ws.root / STATE, self.state)

    def run(self) -> dict[str, Any]:
        t_all = time.time()
        if self.cfg.threads:
            import torch

            torch.set_num_threads(int(self.cfg.threads))
        files = self.tasks()
        sidecar = Path(self.cfg.raw) / "meds_ins_definitions" / "RewriteDefinitions.json"  # the paper's words, by path
        definitions: Path | None = sidecar if sidecar.is_file() else None
        self.definitions = definitions
        mixture = self.mixture(files, definitions)
        model_dir, train_info = self.tune(mixture)
        runs = self.evaluate(files, model_dir, definitions)
        return self.compare(files, runs, train_info, t_all)

    # 1. task files
    def tasks(self) -> dict[str, dict[str, Path]]:
        tasks_dir, raw = self.ws.tasks, Path(self.cfg.raw)
        if not any(tasks_dir.glob("*.json*")):
            if not raw.is_dir():
                raise MedsbenchError("raw data folder not found (pass --raw)", where=str(raw))
            t0 = time.time()
            report = convert_all(raw, tasks_dir)
            self.done("convert", t0)
            self.say(f"1/6 converted {len(report.files)} task file(s) from {raw}")
        else:
            self.say(f"1/6 task files already in {tasks_dir}")
        return select_tasks(self.cfg.tasks, tasks_dir)

    # 2. mixture: the evaluated tasks' train splits, decontaminated against every test split
    def mixture(self, files: dict[str, dict[str, Path]], definitions: Path | None) -> Path:
        mixture = self.ws.mixture_dir("demo")
        if (mixture / "stats.json").is_file():
            self.say(f"2/6 mixture already in {mixture}")
            return mixture
        t0 = time.time()
        train_files = {tid: f["train"] for tid, f in files.items()}
        caps = token_caps(train_files, self.cfg.steps * self.cfg.max_length)
        if self.cfg.per_task:
            caps = {tid: min(c, self.cfg.per_task) for tid, c in caps.items()}
        # Zero-shot like the evaluation; every chosen instance once (T = 1, no repeats), sized by tokens.
        changes: dict[str, Any] = {"seed": self.cfg.seed, "shots.probs": {0: 1.0}, "balance.caps": caps,
                                   "balance.temperature": 1.0, "balance.max_repeats": 1}
        if definitions is not None:
            changes["instructions.definitions"] = definitions
        cfg = InsConfig().updated(**changes)
        stats = build_mixture(list(train_files.values()), mixture, cfg, bench_tasks=[self.ws.tasks], log=lambda m: None)
        self.done("mixture", t0)
        self.say(f"2/6 built mixture {mixture} ({stats.get('totals', {}).get('examples', '?')} rows; caps {caps})")
        return mixture

    # 3. LoRA tuning of the default model
    def tune(self, mixture: Path) -> tuple[Path, dict[str, Any]]:
        model_dir = self.ws.model_dir("smollm2-demo-lora")
        training = training_record_path(model_dir)
        if training.is_file():
            self.say(f"3/6 tuned model already in {model_dir}")
            return model_dir, read_json(training)

        t0 = time.time()
        ckpts = model_dir / "checkpoints"
        resume = ckpts.is_dir() and any(p.name.startswith("checkpoint-") for p in ckpts.iterdir())
        if model_dir.is_dir() and not resume and any(p.name != LOCK_NAME for p in model_dir.iterdir()):
            self.say(f"3/6 no checkpoint in {model_dir}: moved to {_move_aside(model_dir)}, training again")
        # One packed row of max_length tokens per optimizer step; LoRA on the top 8 of 30 layers
        # (backward stops there: about half the compute of all layers).
        steps = self.cfg.steps
        tcfg = load_tune_config("cpu_small_lora", max_steps=steps, save_steps=max(10, steps // 5), seed=self.cfg.seed,
                           max_length=self.cfg.max_length, gradient_accumulation_steps=1, warmup_ratio=0.1,
                           learning_rate=LEARNING_RATE)
        tcfg.lora.top_layers = 8
        res = train(self.cfg.base_model, mixture, model_dir, tcfg, resume=resume)
        self.done("tune", t0)
        self.say(f"3/6 LoRA-tuned {res.steps} steps on {res.examples} examples, mean loss {res.train_loss:.3f} "
                 f"({res.seconds:.0f}s) -> {model_dir}")
        return model_dir, read_json(training)

    # 4-5. evaluate base and tuned on the same items (same seed, limit, prompts)
    def evaluate(self, files: dict[str, dict[str, Path]], model_dir: Path, definitions: Path | None) -> dict[str, RunFolder]:
        runs = {"base": RunFolder(self.ws.run_dir("smollm2-base")), "tuned": RunFolder(self.ws.run_dir("smollm2-demo-lora"))}
        specs = {"base": self.cfg.base_model, "tuned": f"hf:{model_dir.resolve()}"}
        for step, key in ((4, "base"), (5, "tuned")):
            folder = runs[key]
            if not folder.has_results():
                t0 = time.time()
                resume = folder.is_run()
                spec = ModelSpec.parse(specs[key]).with_overrides(threads=self.cfg.threads)
                evaluate(None if resume else spec, ",".join(files), workspace=self.ws.root, out=folder.path,
                         limit=self.cfg.items, seed=self.cfg.seed, shots=self.cfg.shots,
                         max_new_tokens=self.cfg.max_new_tokens, definitions=definitions, resume=resume,
                         reporter=self.reporter)
                self.done(f"eval_{key}", t0)
            self.say(f"{step}/6 evaluated {key} on up to {self.cfg.items} item(s) per task -> {folder.path}")
        return runs

    # 6. board, then the paired comparison
    def compare(self, files: dict[str, dict[str, Path]], runs: dict[str, RunFolder], train_info: dict[str, Any],
                t_all: float) -> dict[str, Any]:
        t0 = time.time()
        task_list = ", ".join(files)
        with Store(self.ws.board_store) as store:
            add_run(store, runs["base"].path, model_name="SmolLM2-135M-Instruct (base)",
                    description=f"medsbench demo: base, zero-shot on {task_list}")
            # the tuned model's page shows the paired comparison with the base run (the board's baseline)
            add_run(store, runs["tuned"].path, model_name="SmolLM2-135M-Instruct + MedS-Ins LoRA (demo)",
                    description=f"medsbench demo: LoRA, {train_info.get('steps')} steps on the train splits of "
                                f"{task_list} (mixtures/demo)", baseline=runs["base"].name)
        cmp = compare_rows(runs["base"].predictions(), runs["tuned"].predictions(), resamples=self.cfg.resamples,
                           seed=self.cfg.seed)
        rows = {mode: comparison_rows(cmp, mode) for mode in ("strict", "reference")}
        seconds = self.seconds
        seconds["board_compare"] = round(time.time() - t0, 1)
        seconds["this_invocation"] = round(time.time() - t_all, 1)
        seconds["total_measured"] = round(sum(v for k, v in seconds.items() if k not in ("this_invocation", "total_measured")), 1)
        write_json(self.ws.root / STATE, self.state)
        self.say(f"6/6 added both runs to {self.ws.board_store} (build the site: medsbench board build)")
        out = {
            "settings": {**self.cfg.recorded(), "definitions": str(self.definitions) if self.definitions else None, "resamples": self.cfg.resamples,
                         "p_value": "paired permutation test", "ci": "paired bootstrap, 95%",
                         "delta": "tuned - base", "verdict": f"a difference needs CI excluding 0 and p < {COMPARE_ALPHA}"},
            "training": {k: train_info.get(k) for k in ("steps", "examples", "train_loss", "seconds")},
            "seconds": dict(seconds),
            "rows": rows,
            "comparison": cmp,
        }
        write_json(self.ws.root / "demo_comparison.json", out)
        header = (f"## base vs LoRA-tuned SmolLM2-135M-Instruct ({self.cfg.items} items/task, {self.cfg.shots}-shot, "
                  f"{train_info.get('steps')} LoRA steps)")
        with atomic_write(self.ws.root / "demo_comparison.md") as fh:
            fh.write(comparison_markdown(rows, header))
        return out
