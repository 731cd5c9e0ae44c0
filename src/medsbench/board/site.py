"""Static leaderboard site: jinja2 templates (autoescape on), inline SVG charts, no server, no CDN.

The output depends only on the store (and this package's version): rows are sorted, JSON is dumped
with sorted keys, and the one date shown is the store's ``last_update``. Building twice from the same
store therefore gives byte-identical files.

Pages: ``index.html`` (the ranking, in both scoring modes, and a chart per category),
``tasks.html`` + ``tasks/<id>.html`` (test-set size, labels, full-file baseline, an example item,
source and licence), ``models/<slug>.html`` (categories, paired comparison with a baseline, judged
scores), ``runs/<slug>.html`` (scores per task and the item browser, whose items load lazily from
``runs/<slug>/index.js`` and ``runs/<slug>/items-NNNN.js``: JSON in a one-line script wrapper, so the
site also works from ``file://``), ``about.html``. Pending submissions never appear.

Every path written goes through :func:`medsbench.ids.inside` (a check, not only a sanitiser); every
identifier in a path was checked against :mod:`medsbench.ids` when the store gave it back.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

from medsbench import __version__
from medsbench.board.charts import category_bars, category_panel, reliability_diagram
from medsbench.board.names import LOGLIK_SUFFIX, POOLED_PREFIX, unique_slug
from medsbench.board.store import Store, load_seed
from medsbench.errors import MedsbenchError
from medsbench.ids import check_name, inside
from medsbench.metrics import METRIC_TITLES, headline_metrics, primary_metric
from medsbench.metrics.compare import difference
from medsbench.redact import redact as redact_value
from medsbench.tasks.catalog import LANGUAGE_NAMES
from medsbench.tasks.catalog import task_order as _task_order
from medsbench.tasks.catalog import catalog
from medsbench.judge.reliability import MIN_PROBE_PASS, UNUSABLE_PARSE_FAILURE
from medsbench.judge.rubric import GENERIC, load_rubrics

MARKER = ".medsbench-site"
KIND_LABEL = {"reported": "reported", "measured": "measured", "submission": "submitted"}
TIER_LABEL = {"complete": "complete", "sample": "sample", "partial": "partial run"}
METRIC_LABEL = METRIC_TITLES
# The columns shown per category are its scorer's headline metrics (text tasks show both BLEU-1 and ROUGE-L,
# as the paper's leaderboard); the one metric used for charts, the overall column and sorting is
# medsbench.metrics.primary_metric.
JUDGED_TITLE = "Judged free-text scores (model-graded, not part of the official scores)"
PROBE_LABEL = {"reference": "reference copy", "empty": "empty answer", "off_topic": "off-topic answer",
               "truncated": "truncated answer"}
AVAILABILITY = {
    "public-here": "public: the source data can be downloaded freely",
    "public-elsewhere": "public: the source data is downloaded separately from its publisher",
    "credentialed": "credentialed: the source data needs a data use agreement (for example PhysioNet) and is not "
                    "redistributed",
}
MIN_N_CI = 10  # below this many items a bootstrap CI is degenerate: "n too small" is shown instead
MIN_N_TEST = 10  # below this many paired items a comparison is not tested
Z_ALPHA, Z_POWER = 1.959964, 0.841621  # two-sided 5% test, 80% power
SHARD_ITEMS = 100  # items per item-browser shard (about 0.5 MB at the default --max-chars)


@dataclass(frozen=True)
class SiteReport:
    out: Path
    files: int
    bytes: int
    seconds: float
    models: int
    runs: int
    tasks: int
    largest_page: str = ""  # the heaviest HTML page
    largest_page_bytes: int = 0
    largest_shard_bytes: int = 0


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def script_json(obj: Any) -> str:
    """JSON safe inside ``<script>`` (and in a script file): no ``<``, ``>``, ``&`` or line separators
    survive literally, so no ``</script>`` can close a tag early."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text


def ci_text(score: Any, n: int | None) -> str:
    """A score's 95% CI in words: Wilson intervals always, bootstrap ones only from :data:`MIN_N_CI` items."""
    if score is None or score["ci_lo"] is None:
        return ""
    if score["ci_method"] != "wilson":
        if n is not None and n < MIN_N_CI:
            return "n too small for a CI"
        if score["ci_lo"] == score["ci_hi"]:
            return "no CI (every resample gave the same value)"
    return f"95% CI {score['ci_lo']:.1f}–{score['ci_hi']:.1f}"


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("medsbench.board", "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.globals.update(kind_label=KIND_LABEL, tier_label=TIER_LABEL, sample_text=sample_text,
                       coverage_text=coverage_text, judged_title=JUDGED_TITLE, probe_label=PROBE_LABEL, ci_text=ci_text,
                       availability=AVAILABILITY, language_names=LANGUAGE_NAMES)
    env.filters["num"] = _fmt
    env.filters["metric_label"] = lambda k: METRIC_LABEL.get(k, k)
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.1f}%"
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)
    env.filters["signed"] = lambda v: "" if v is None else f"{v:+.2f}"
    env.filters["pval"] = lambda v: "" if v is None else ("< 0.001" if v < 0.001 else f"{v:.3f}")
    return env


def _task_title(task_id: str, cat: Any) -> str:
    if task_id.startswith(POOLED_PREFIX):
        return f"MIMIC-IV {task_id[len(POOLED_PREFIX):]} reports (pooled)"
    entry = cat.get(task_id)
    return entry.title if entry else task_id


def task_file(task_id: str) -> str:
    """The page of a task, relative to ``tasks/`` (the id was checked against the NAME grammar)."""
    return check_name(task_id, "task id") + ".html"


def sample_text(info: Any) -> str:
    """"n=5 of 1273 (sample)" for a run limited with --limit, "" for a whole task."""
    planned, total = info["n_planned"], info["n_total"]
    if planned is None or total is None or planned >= total:
        return ""
    return f"n={info['n'] or 0} of {total} (sample)"


def coverage_text(info: Any) -> str:
    """"coverage 67% (2 failed)" when items failed or never ran, "" otherwise."""
    failed = info["n_failed"] or 0
    if not failed:
        return ""
    return f"coverage {100 * (info['coverage'] or 0):.0f}% ({failed} failed)"


class _Model:
    """Everything the templates need about one model and its headline run."""

    def __init__(self, row: Any, runs: list[Any], infos: dict[str, dict[str, Any]]):
        self.name: str = row["name"]
        self.kind: str = row["kind"]
        self.kind_label = KIND_LABEL.get(self.kind, self.kind)
        self.size: str | None = row["size"]
        self.link: str | None = row["link"] if (row["link"] or "").startswith(("https://", "http://")) else None
        self.description: str | None = row["description"]
        self.slug = unique_slug(self.name)
        self.runs = runs
        # The headline run: the latest approved one (seed rows have a single run); likelihood-scored runs are
        # another protocol and head a model only when it has no generative run (it then stays out of the ranking).
        generative = [r for r in runs if not is_loglik(r)]
        self.loglik_only = not generative
        self.run = sorted(generative or runs, key=lambda r: (r.added, r.name))[-1]
        own = [i for tid, i in infos[self.run.name].items() if not tid.startswith(POOLED_PREFIX)]
        if self.kind == "reported":
            self.tier = "complete"
        elif self.run.partial or any(i["n_failed"] for i in own):
            self.tier = "partial"
        elif any(sample_text(i) for i in own):
            self.tier = "sample"
        else:
            self.tier = "complete"
        answered = sum(i["n"] or 0 for i in own)
        self.sample_note = f"n={answered} items" if self.tier == "sample" else ""


def is_loglik(run: Any) -> bool:
    """A likelihood-scored run (protocol ``...+loglik``): ranked apart from generated answers."""
    return (run.protocol or "").endswith(LOGLIK_SUFFIX)


def _calibration_rows(data: dict[str, Any], run: str, task_id: str | None = None) -> list[dict[str, Any]]:
    """A loglik run's calibration rows (of one task, or all), each with its reliability diagram (inline SVG)."""
    out = []
    for c in data["calibration"].get(run, []):
        if task_id is not None and c["task_id"] != task_id:
            continue
        title = f"{c['task_id']} · {c['variant']}"
        out.append({**c, "ci_text": {k: _ci_range(*v) for k, v in c["ci"].items()},
                    "svg": reliability_diagram(title, c["reliability"], ece=c["metrics"].get("ece"))})
    return out


def _loglik_overview(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The likelihood-scoring table of the overview: per loglik run its primary variant per task."""
    rows = []
    for r in data["runs"]:
        if not is_loglik(r):
            continue
        cal = [c for c in data["calibration"].get(r.name, []) if c["primary"]]
        rows.append({"run": r, "run_slug": unique_slug(r.name), "model": data["model_of"][r.name],
                     "tasks": [{**c, "ci_text": {k: _ci_range(*v) for k, v in c["ci"].items()}} for c in cal]})
    return rows


def _collect(store: Store) -> dict[str, Any]:
    """Everything the pages show, read from the store once (in one read transaction)."""

    cat = catalog()
    runs = store.runs()
    by_model: dict[str, list[Any]] = defaultdict(list)
    for r in runs:
        by_model[r.model].append(r)
    cat_scores: dict[str, dict[tuple[str, str, str], Any]] = {}
    task_scores: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    task_infos: dict[str, dict[str, Any]] = {}
    for r in runs:
        cat_scores[r.name] = {(c["category"], c["mode"], c["metric"]): c for c in store.category_scores(r.name)}
        ts: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
        for s in store.task_scores(r.name):
            ts[s["task_id"]][s["mode"]][s["metric"]] = s
        task_scores[r.name] = ts
        task_infos[r.name] = {i["task_id"]: i for i in store.task_info(r.name)}
    models = [_Model(row, by_model[row["name"]], task_infos) for row in store.models() if by_model.get(row["name"])]
    models.sort(key=lambda m: (m.kind == "reported", m.name.lower(), m.name))
    judged = {r.name: j for r in runs if (j := _judged_view(store, r.name, cat)) is not None}
    approved = {r.name for r in runs}
    comparisons = {r.name: c for r in runs if (c := store.comparison(r.name)) is not None and c["baseline"] in approved}
    categories = [
        {"key": k, "title": c.title, "headline": list(headline_metrics(c)),
         "primary": primary_metric(c), "shots": c.shots, "max_new_tokens": c.max_new_tokens}
        for k, c in cat.categories.items()
    ]
    model_of = {r.name: m for m in models for r in m.runs}
    calibration = {r.name: store.calibration(r.name) for r in runs if is_loglik(r)}
    contam = {r.name: c for r in runs if (c := store.contamination(r.name)) is not None}
    return {"cat": cat, "seed": load_seed(), "runs": runs, "models": models, "categories": categories,
            "model_of": model_of, "calibration": calibration,
            "cat_scores": cat_scores, "task_scores": task_scores, "task_infos": task_infos, "judged": judged,
            "comparisons": comparisons, "task_files": store.task_files(), "versions": _mixed_versions(runs, task_infos),
            "contam": contam, "clean": {run: _clean_cells(c) for run, c in contam.items()}}


def _clean_cells(report: dict[str, Any]) -> dict[str, Any]:
    """Per category of a run with a contamination report: its clean scores by (mode, metric), the contaminated
    and all items of its tasks, and the tasks without a clean score."""
    out: dict[str, Any] = {}
    for t in report["tasks"]:
        if t["mode"] == "strict" and t["primary_metric"]:
            c = out.setdefault(t["category"], {"scores": {}, "contaminated": 0, "items": 0, "without": []})
            c["contaminated"] += t["n_contaminated"]
            c["items"] += t["n_items"]
    for row in report["categories"]:
        c = out.setdefault(row["category"], {"scores": {}, "contaminated": 0, "items": 0, "without": []})
        c["scores"][(row["mode"], row["metric"])] = row
        c["without"] = row["without_clean"]
    return out


def _mixed_versions(runs: list[Any], infos: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Tasks whose rows on this board ran on more than one version of the test file: {task id: versions}."""
    seen: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        for tid, i in infos[r.name].items():
            if i["version"]:
                seen[tid].add(i["version"])
    return {tid: sorted(v) for tid, v in seen.items() if len(v) > 1}


def _ci_range(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f"{lo:.2f}–{hi:.2f}"


def _probe_text(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Probe pass rates of one judge (or the jury), in the order of the probe settings."""
    out = []
    for kind in PROBE_LABEL:
        p = table.get(kind)
        if p:
            out.append({"kind": kind, "label": PROBE_LABEL[kind], "passed": p.get("passed", 0),
                        "n_scored": p.get("n_scored", 0), "pass_rate": p.get("pass_rate")})
    return out


def _judged_view(store: Store, run: str, cat: Any) -> dict[str, Any] | None:
    """A run's judged scores shaped for the templates (categories in catalog order); an unusable judge's
    numbers are flagged so the templates never show them as scores."""
    j = store.judged(run)
    if j is None:
        return None
    head = j["run"]
    names = [x["name"] for x in head["judges"]]
    key = head["headline"]
    unusable = head["unusable"]
    order = list(cat.categories)
    cats = sorted(j["categories"], key=lambda c: (order.index(c["category"]) if c["category"] in order else 99,
                                                  c["category"]))
    categories = []
    for c in cats:
        title = cat.categories[c["category"]].title if c["category"] in cat.categories else c["category"]
        categories.append({**c, "title": title, "ci": _ci_range(c["ci_lo"], c["ci_hi"]), "unusable": key in unusable,
                           "per_judge": [(n, c["judges"].get(n), n in unusable) for n in names]})
    tasks = []
    for t in j["tasks"]:
        tasks.append({**t, "title": _task_title(t["task_id"], cat), "file": task_file(t["task_id"]),
                      "ci": _ci_range(t["ci_lo"], t["ci_hi"]), "unusable": key in unusable,
                      "per_judge": [(n, t["judges"].get(n, {}), n in unusable) for n in names],
                      "probe_rows": _probe_text(t["probes"].get(key, {}))})
    probes = [{"judge": n, "rows": _probe_text(head["probe_totals"].get(n, {}))}
              for n in ([*names, "jury"] if len(names) > 1 else names) if head["probe_totals"].get(n)]
    return {"head": head, "judges": head["judges"], "names": names, "jury": key == "jury" and len(names) > 1,
            "headline": key, "scale": f"{head['scale'][0]}–{head['scale'][1]}", "categories": categories,
            "by_category": {c["category"]: c for c in categories}, "tasks": tasks, "probes": probes,
            "headline_probes": _probe_text(head["probe_totals"].get(key, {})), "rubrics": sorted(head["rubrics"].values()),
            "unusable": unusable, "headline_unusable": unusable.get(key)}


def verdict(delta: float, ci_lo: float, ci_hi: float, p_value: float) -> tuple[str, str]:
    """A comparison row in plain words: a difference is claimed only when the 95% CI of the delta
    excludes 0 and p < 0.05; anything else is "no difference found" (not "no difference")."""
    return {"none": ("no difference found", "same"), "higher": ("tuned is better", "better"),
            "lower": ("tuned is worse", "worse")}[difference(delta, ci_lo, ci_hi, p_value)]


def detectable_difference(ci_lo: float, ci_hi: float) -> float | None:
    """The smallest difference this comparison would detect 4 times in 5 (two-sided 5% test, 80% power),
    from the standard error implied by the 95% CI of the delta: (z_0.975 + z_0.8) x SE."""
    se = (ci_hi - ci_lo) / (2 * Z_ALPHA)
    return None if se <= 0 else round((Z_ALPHA + Z_POWER) * se, 2)


def _comparison_row(metrics: dict[str, Any], metric: str | None) -> dict[str, Any]:
    m = metric if metric in metrics else sorted(metrics)[0]
    r = metrics[m]
    if r["n"] < MIN_N_TEST:
        text, cls = f"n too small to test (n={r['n']})", "small"
    else:
        text, cls = verdict(r["delta"], r["ci_lo"], r["ci_hi"], r["p_value"])
    mdd = detectable_difference(r["ci_lo"], r["ci_hi"]) if r["n"] >= MIN_N_TEST else None
    return {"metric": m, "base": r["base"], "tuned": r["tuned"], "delta": r["delta"],
            "ci": f"{r['ci_lo']:+.2f} to {r['ci_hi']:+.2f}", "p_value": r["p_value"], "n": r["n"],
            "n_tasks": r["n_tasks"], "only_in_run": r["only_in_run"], "only_in_baseline": r["only_in_baseline"],
            "verdict": text, "verdict_class": cls, "mdd": mdd}


def _comparison_view(data: dict[str, Any], run: Any, model_of: dict[str, Any]) -> dict[str, Any] | None:
    c = data["comparisons"].get(run.name)
    if c is None:
        return None
    cat = data["cat"]
    infos = data["task_infos"][run.name]
    by: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in c["rows"]:
        by.setdefault((r["scope"], r["key"], r["mode"]), {})[r["metric"]] = r
    order = list(cat.categories)
    cat_keys = sorted({k for (scope, k, _) in by if scope == "category"},
                      key=lambda k: (order.index(k) if k in order else 99, k))
    task_keys = sorted({k for (scope, k, _) in by if scope == "task"}, key=_task_order)
    modes = [("strict", "strict"), ("reference", "official")]
    categories = []
    for k in cat_keys:
        primary = primary_metric(cat.categories[k]) if k in cat.categories else None
        title = cat.categories[k].title if k in cat.categories else k
        categories += [{"key": k, "title": title, "mode": label, **_comparison_row(by[("category", k, mode)], primary)}
                       for mode, label in modes if by.get(("category", k, mode))]
    tasks = []
    for k in task_keys:
        info = infos.get(k)
        tasks += [{"key": k, "title": _task_title(k, cat), "file": task_file(k), "mode": label,
                   **_comparison_row(by[("task", k, mode)], info["metric"] if info is not None else None)}
                  for mode, label in modes if by.get(("task", k, mode))]
    return {"baseline": c["baseline"], "baseline_slug": unique_slug(c["baseline"]),
            "base_model": model_of.get(c["baseline"]), "method": c["method"], "resamples": c["resamples"],
            "seed": c["seed"], "run": run, "categories": categories, "tasks": tasks,
            "found": sum(r["verdict_class"] in ("better", "worse") for r in categories),
            "none_found": sum(r["verdict_class"] == "same" for r in categories),
            "too_small": sum(r["verdict_class"] == "small" for r in categories), "min_n": MIN_N_TEST}


def _cell(data: dict[str, Any], run: str, category: dict[str, Any], mode: str) -> dict[str, Any] | None:
    """One overview cell: headline values, CI text, notes, the primary value (overall column) and the data
    versions of tasks that ran on more than one version on this board."""
    scores = data["cat_scores"][run]
    values = [scores.get((category["key"], mode, k)) for k in category["headline"]]
    infos = data["task_infos"][run]
    own = [tid for tid in sorted(infos, key=_task_order)
           if infos[tid]["category"] == category["key"] and not tid.startswith(POOLED_PREFIX)]
    notes, warn = _cell_notes([infos[tid] for tid in own], category)
    clean = data["clean"].get(run, {}).get(category["key"]) if own else None
    if clean is not None:  # a contamination report: the clean score is shown, and said to be
        values = [clean["scores"].get((mode, k)) for k in category["headline"]]
        notes.insert(0, f"clean score: {clean['contaminated']} of {clean['items']} items contaminated, left out"
                     + (f"; no clean item in {', '.join(clean['without'])}" if clean["without"] else ""))
        primary = clean["scores"].get((mode, category["primary"]))
        if all(v is None for v in values):
            return {"text": "–", "sort": "", "ci": "", "n_tasks": None, "derived": False, "title": "", "notes": notes,
                    "warn": True, "primary": None, "versions": []}
        parts = ["–" if v is None else f"{v['value']:.2f}" for v in values]
        first = next(v for v in values if v is not None)
        return {"text": " / ".join(parts), "sort": f"{first['value']:.4f}", "ci": "", "n_tasks": first["n_tasks"],
                "derived": False, "title": "mean of the tasks' scores on their clean items", "notes": notes,
                "warn": warn, "primary": None if primary is None else primary["value"], "versions": [], "clean": True}
    versions = [f"{tid} v{infos[tid]['version']}" for tid in own if tid in data["versions"] and infos[tid]["version"]]
    if all(v is None for v in values):
        if not notes:
            return None
        # Tasks were run but nothing was answered: say so instead of showing a score.
        return {"text": "–", "sort": "", "ci": "", "n_tasks": None, "derived": False, "title": "", "notes": notes,
                "warn": warn, "primary": None, "versions": versions}
    parts, n_tasks, derived = [], None, False
    for v in values:
        parts.append("–" if v is None else f"{v['value']:.2f}")
        if v is not None:
            n_tasks = v["n_tasks"] if v["n_tasks"] is not None else n_tasks
            derived = derived or bool(v["derived"])
    ci = ""
    if len(own) == 1:  # a one-task category: the task's CI is the category's CI
        ms = data["task_scores"][run].get(own[0], {}).get(mode, {})
        ci = ci_text(ms.get(category["primary"]), infos[own[0]]["n"])
    tips = [_task_tip(tid, infos[tid], data["task_scores"][run].get(tid, {}).get(mode, {}), category)
            for tid in own if data["task_scores"][run].get(tid, {}).get(mode)]
    if derived:
        tips.insert(0, f"mean of the {n_tasks} task(s) reported for this category")
    first = next(v for v in values if v is not None)
    primary = scores.get((category["key"], mode, category["primary"]))
    return {"text": " / ".join(parts), "sort": f"{first['value']:.4f}", "ci": ci, "n_tasks": n_tasks,
            "derived": derived, "title": "\n".join(tips), "notes": notes, "warn": warn or bool(versions),
            "primary": None if primary is None else primary["value"], "versions": versions}


def _task_tip(tid: str, info: Any, ms: dict[str, Any], category: dict[str, Any]) -> str:
    shown = [f"{METRIC_LABEL.get(k, k)} {ms[k]['value']:.1f}" for k in category["headline"] if k in ms]
    return f"{tid}: {', '.join(shown)}" + (f" (n={info['n']})" if info["n"] else "")


def _cell_notes(infos: list[Any], category: dict[str, Any]) -> tuple[list[str], bool]:
    """Small print under an overview cell: coverage, sample size, full-file majority baseline, degenerate tasks."""
    notes: list[str] = []
    measured = [i for i in infos if i["coverage"] is not None or i["n_planned"] is not None]
    if not measured:
        return notes, False
    failed = sum(i["n_failed"] or 0 for i in measured)
    answered = sum(i["n"] or 0 for i in measured)
    if failed:
        notes.append(f"coverage {100 * answered / (answered + failed):.0f}% ({failed} failed)")
    if any(sample_text(i) for i in measured):
        notes.append(f"n={answered} (sample)")
    if category["primary"] == "accuracy":
        baselines = [i["majority_baseline"] for i in measured]
        if all(b is not None for b in baselines):
            notes.append(f"majority baseline {sum(baselines) / len(baselines):.1f}")
        elif any(i["baseline_note"] for i in measured):
            notes.append(next(i["baseline_note"] for i in measured if i["baseline_note"]))
    degenerate = [i["task_id"] for i in measured if i["degenerate"]]
    if degenerate:
        notes.append("degenerate gold: " + ", ".join(degenerate))
    return notes, bool(failed or degenerate)


def _overview(data: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    """The ranking in one scoring mode: complete runs first, then samples and partial runs; within a tier by the
    overall score (the mean of the primary metric over the categories the model covers)."""
    rows = []
    for m in data["models"]:
        if (mode == "strict" and m.kind == "reported") or m.loglik_only:
            continue
        cells = [_cell(data, m.run.name, c, mode) for c in data["categories"]]
        values = [c["primary"] for c in cells if c is not None and c["primary"] is not None]
        overall = sum(values) / len(values) if values else None
        rows.append({"model": m, "cells": cells, "overall": overall, "covered": len(values),
                     "mixed": sum(1 for c in cells if c is not None and c["versions"])})
    rows.sort(key=lambda r: (list(TIER_LABEL).index(r["model"].tier), r["overall"] is None, -(r["overall"] or 0),
                             r["model"].name.lower()))
    rank = 0
    for r in rows:
        if r["model"].tier == "complete" and r["overall"] is not None:
            rank += 1
            r["rank"] = rank
        else:
            r["rank"] = None
    return rows


def _chart_panels(data: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The overview chart: one inline SVG per category, bars for the complete rows of the official ranking."""
    panels = []
    for i, c in enumerate(data["categories"]):
        bars = [(r["model"].name, r["cells"][i]["primary"], r["model"].kind) for r in rows
                if r["model"].tier == "complete" and r["cells"][i] is not None and r["cells"][i]["primary"] is not None]
        bars.sort(key=lambda b: (-b[1], b[0]))
        panels.append(category_panel(c["title"], METRIC_LABEL.get(c["primary"], c["primary"]), bars))
    return panels


def _model_chart(data: dict[str, Any], model: _Model) -> str:
    rows = []
    for c in data["categories"]:
        key = c["primary"]
        vals = {}
        for mode in ("reference", "strict"):
            s = data["cat_scores"][model.run.name].get((c["key"], mode, key))
            vals[mode] = None if s is None else float(s["value"])
        rows.append((c["title"], METRIC_LABEL.get(key, key), vals))
    return category_bars(f"{model.name}: category scores", rows)


def _manifest_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    manifest = redact_value(manifest)  # stored redacted already; a page never shows a credential
    rows = []
    for key in sorted(manifest):
        value = manifest[key]
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if isinstance(value, (dict, list)) else (
            "" if value is None else str(value))
        rows.append((key, text))
    return rows


class _Pages:
    """The files of one build, by path relative to the site root."""

    def __init__(self, env: Any, common: dict[str, Any]):
        self.env, self.common = env, common
        self.files: dict[str, str] = {}

    def page(self, rel: str, template: str, **ctx: Any) -> None:
        depth = rel.count("/")
        self.files[rel] = self.env.get_template(template).render(root="../" * depth, page=rel, **self.common, **ctx)


def build_site(
    store: Store,
    out: str | os.PathLike,
    *,
    max_items_per_task: int | None = None,
    max_chars: int = 2000,
    rubrics_dir: str | os.PathLike | None = None,
) -> SiteReport:
    """Write the static site into ``out`` (replacing a previous build there). ``max_items_per_task``: items
    of each task in a run's browser (default: all); ``max_chars``: characters kept per text field. The about
    page explains the judged mode with the rubrics of ``rubrics_dir`` (default: the packaged rubrics)."""
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise MedsbenchError(f"{out} exists and is not a medsbench site (no {MARKER}); choose an empty folder")
    with store.snapshot():
        data = _collect(store)
        last_update = store.last_update or "never"
        pages = _Pages(_env(), {"last_update": last_update, "last_update_date": last_update[:10],
                                "version": __version__, "categories": data["categories"]})
        model_of = {r.name: m for m in data["models"] for r in m.runs}
        _index_pages(pages, data)
        _model_pages(pages, data, model_of)
        n_tasks = _task_pages(pages, data, model_of)
        n_runs, shard_bytes = _run_pages(pages, data, store, model_of, (max_items_per_task, max_chars))
        pages.page("about.html", "about.html", seed=data["seed"], cat=data["cat"], judge=_judge_about(rubrics_dir),
                   versions=_versions_view(data, model_of))
    static = resources.files("medsbench.board").joinpath("static")
    for name in ("style.css", "board.js"):
        pages.files[f"static/{name}"] = static.joinpath(name).read_text(encoding="utf-8")
    pages.files[MARKER] = "built by medsbench board build; this folder is replaced on every build\n"
    total = _write_tree(out, pages.files)
    html = {rel: len(text.encode("utf-8")) for rel, text in pages.files.items() if rel.endswith(".html")}
    largest = max(html, key=lambda rel: (html[rel], rel))
    return SiteReport(out=out, files=len(pages.files), bytes=total, seconds=time.perf_counter() - started,
                      models=len(data["models"]), runs=n_runs, tasks=n_tasks, largest_page=largest,
                      largest_page_bytes=html[largest], largest_shard_bytes=shard_bytes)


def _write_tree(out: Path, files: dict[str, str]) -> int:
    """Write ``files`` into a fresh folder beside ``out`` and swap it into place; returns the bytes written.
    Every path is checked to stay inside the new folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a published site is world-readable
    total = 0
    try:
        for rel in sorted(files):
            path = inside(tmp, *rel.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            blob = files[rel].encode("utf-8")
            path.write_bytes(blob)
            total += len(blob)
        old = None  # swap the new build into place; the old one is removed only after the swap
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "site")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return total


def _index_pages(pages: _Pages, data: dict[str, Any]) -> None:
    overview = {mode: _overview(data, mode) for mode in ("reference", "strict")}
    mixed = {c["key"]: any(r["cells"][i] is not None and r["cells"][i]["versions"] for r in overview["reference"])
             for i, c in enumerate(data["categories"])}
    judged_rows = [{"model": m, "judged": data["judged"][m.run.name]} for m in data["models"]
                   if m.run.name in data["judged"]]
    judged_cats = [c for c in data["categories"] if any(c["key"] in r["judged"]["by_category"] for r in judged_rows)]
    pages.page("index.html", "index.html", overview=overview, models=data["models"], judged_rows=judged_rows,
               judged_cats=judged_cats, panels=_chart_panels(data, overview["reference"]), mixed=mixed,
               n_categories=len(data["categories"]), loglik_rows=_loglik_overview(data))


def _model_pages(pages: _Pages, data: dict[str, Any], model_of: dict[str, Any]) -> None:
    cat = data["cat"]
    for m in data["models"]:
        runs = []
        for r in sorted(m.runs, key=lambda r: r.name):
            infos, scores = data["task_infos"][r.name], data["task_scores"][r.name]
            tasks = [{"id": tid, "file": task_file(tid), "title": _task_title(tid, cat), "info": infos[tid],
                      "scores": scores.get(tid, {})} for tid in sorted(infos, key=_task_order)]
            runs.append({"run": r, "slug": unique_slug(r.name), "tasks": tasks,
                         "source": data["seed"]["sources"].get(r.source or "") if r.kind == "reported" else None,
                         "judged": data["judged"].get(r.name), "comparison": _comparison_view(data, r, model_of)})
        cells = {mode: [_cell(data, m.run.name, c, mode) for c in data["categories"]] for mode in ("reference", "strict")}
        pages.page(f"models/{m.slug}.html", "model.html", model=m, runs=runs, cells=cells, chart=_model_chart(data, m),
                   head_slug=unique_slug(m.run.name))


def _task_pages(pages: _Pages, data: dict[str, Any], model_of: dict[str, Any]) -> int:
    """A page per task with at least one score, and the tasks index; returns the number of task pages."""
    cat = data["cat"]
    task_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in data["runs"]:
        for tid, info in data["task_infos"][r.name].items():
            scores = data["task_scores"][r.name].get(tid, {})
            if scores:
                task_rows[tid].append({"model": model_of[r.name], "run": r, "run_slug": unique_slug(r.name),
                                       "info": info, "scores": scores,
                                       "calibration": _calibration_rows(data, r.name, tid) if is_loglik(r) else None})
    task_list = []
    for tid in sorted(task_rows, key=_task_order):
        entry = cat.get(tid)
        category = (entry.category if entry else task_rows[tid][0]["info"]["category"]) or ""
        metrics = sorted({k for row in task_rows[tid] for mode in row["scores"].values() for k in mode},
                         key=lambda k: list(METRIC_LABEL).index(k) if k in METRIC_LABEL else 99)
        primary = metrics[0] if entry is None and metrics else (primary_metric(entry) if entry else None)
        rows = sorted((r for r in task_rows[tid] if r["calibration"] is None), key=lambda r: _task_row_order(r, primary))
        loglik_rows = sorted((r for r in task_rows[tid] if r["calibration"] is not None),
                             key=lambda r: _task_row_order(r, primary))
        judged_rows = [{"model": r["model"], "run": r["run"], "run_slug": r["run_slug"],
                        "judged": data["judged"][r["run"].name], "task": jt}
                       for r in rows if r["run"].name in data["judged"]
                       for jt in data["judged"][r["run"].name]["tasks"] if jt["task_id"] == tid]
        shas = sorted({r["info"]["file_sha256"] for r in rows if r["info"]["file_sha256"]})
        t = {"id": tid, "file": task_file(tid), "title": _task_title(tid, cat), "entry": entry, "category": category,
             "category_title": cat.categories[category].title if category in cat.categories else category,
             "primary": primary,
             "metrics": metrics, "rows": rows, "loglik_rows": loglik_rows, "judged_rows": judged_rows,
             "mixed": tid in data["versions"],
             "files": [data["task_files"][s] for s in shas if s in data["task_files"]]}
        task_list.append(t)
        pages.page(f"tasks/{t['file']}", "task.html", task=t)
    pages.page("tasks.html", "tasks.html", tasks=task_list)
    return len(task_list)


def _task_row_order(row: dict[str, Any], primary: str | None) -> tuple[Any, ...]:
    """Rows of a task page: complete runs first, then by the official primary score, best first."""
    score = row["scores"].get("reference", {}).get(primary or "")
    value = score["value"] if score is not None else None
    return (row["model"].tier != "complete", value is None, -(value or 0.0), row["model"].name, row["run"].name)


def _run_pages(pages: _Pages, data: dict[str, Any], store: Store, model_of: dict[str, Any],
               limits: tuple[int | None, int]) -> tuple[int, int]:
    """A page per measured or submitted run, with its item shards; returns (pages, largest shard bytes)."""
    cat = data["cat"]
    n_runs, largest = 0, 0
    for r in data["runs"]:
        if r.kind == "reported":
            continue
        n_runs += 1
        slug = unique_slug(r.name)
        judged = data["judged"].get(r.name)
        shards, counts = _item_shards(store, r.name, judged["unusable"] if judged else {}, limits)
        for i, text in enumerate(shards):
            name = "index" if i == 0 else f"items-{i - 1:04d}"
            pages.files[f"runs/{slug}/{name}.js"] = text
            largest = max(largest, len(text.encode("utf-8"))) if i else largest
        tasks = [{"id": tid, "file": task_file(tid), "title": _task_title(tid, cat), "info": data["task_infos"][r.name][tid],
                  "scores": data["task_scores"][r.name].get(tid, {})}
                 for tid in sorted(data["task_infos"][r.name], key=_task_order)]
        pages.page(f"runs/{slug}.html", "run.html", run=r, model=model_of[r.name], tasks=tasks, slug=slug,
                   manifest=_manifest_rows(r.manifest), counts=counts, max_items_per_task=limits[0],
                   max_chars=limits[1], judged=judged, calibration=_calibration_rows(data, r.name),
                   contam=_contam_view(data["contam"].get(r.name), cat),
                   averages=_averages_view(store.averages(r.name), cat), usage=_usage_view(store.usage(r.name)))
    return n_runs, largest


def _ci_of(row: Any, lo: str = "ci_lo", hi: str = "ci_hi") -> str:
    return "" if row[lo] is None else f"95% CI {row[lo]:.1f}–{row[hi]:.1f}"


def _contam_view(report: dict[str, Any] | None, cat: Any) -> dict[str, Any] | None:
    """A run's contamination report for its page: corpora, rule, and per task the primary metric in both modes."""
    if report is None:
        return None
    tasks: dict[str, dict[str, Any]] = {}
    for t in report["tasks"]:
        if not t["primary_metric"]:
            continue
        row = tasks.setdefault(t["task_id"], {"id": t["task_id"], "title": _task_title(t["task_id"], cat),
                                               "metric": t["metric"], "n_items": t["n_items"],
                                               "n_contaminated": t["n_contaminated"]})
        row[t["mode"]] = {"clean": t["clean"], "clean_ci": _ci_of(t, "clean_ci_lo", "clean_ci_hi"),
                          "contaminated": t["contaminated"], "diff": t["diff"], "n_clean": t["n_clean"],
                          "n_dirty": t["n_dirty"], "diff_ci": _ci_of(t, "diff_ci_lo", "diff_ci_hi")}
    head = report["run"]
    # A corpus is named by its file or folder name (a public page shows no local directories); its sha256 identifies it.
    corpora = [{"path": PurePath(c["path"]).name or c["path"], "kind": c["kind"], "files": len(c["files"]),
                "records": sum(f["records"] for f in c["files"]),
                "sha256": c["files"][0]["sha256"][:12] if len(c["files"]) == 1 else ""} for c in head["corpora"]]
    return {"head": head, "rule": head["rule"], "corpora": corpora,
            "tasks": sorted(tasks.values(), key=lambda t: _task_order(t["id"]))}


def _averages_view(rows: list[Any], cat: Any) -> list[dict[str, Any]]:
    """Per category (catalog order): its macro and micro averages and those of its slices, primary metric, both modes."""

    by: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        metric = primary_metric(cat.categories[r["category"]]) if r["category"] in cat.categories else r["metric"]
        if r["metric"] != metric:
            continue
        entry = by[r["category"]].setdefault((r["slice_kind"], r["slice_key"]), {
            "kind": r["slice_kind"], "key": r["slice_key"], "metric": metric, "tasks": ", ".join(json.loads(r["tasks"])),
            "n_tasks": r["n_tasks"]})
        entry[f"{r['average']}_{r['mode']}"] = {"value": r["value"], "ci": _ci_of(r), "n": r["n"]}
    order = list(cat.categories)
    out = []
    for key in sorted(by, key=lambda k: (order.index(k) if k in order else len(order), k)):
        slices = sorted(by[key].values(), key=lambda e: (("all", "language", "source").index(e["kind"]), e["key"]))
        if len(slices) == 1 and slices[0]["n_tasks"] == 1:
            continue  # one task: its averages are the task's own scores
        for e in slices:
            e["label"] = "all tasks" if e["kind"] == "all" else (
                f"{LANGUAGE_NAMES.get(e['key'], e['key'])} ({e['key']})" if e["kind"] == "language" else e["key"])
        out.append({"key": key, "title": cat.categories[key].title if key in cat.categories else key, "rows": slices})
    return out


def _usage_view(rows: list[Any]) -> dict[str, Any] | None:
    """Tokens, time and cost of a run (``run``) and per task; None when the run recorded no usage."""
    if not rows:
        return None
    shaped = [{**dict(r), "price": json.loads(r["price"]) if r["price"] else None} for r in rows]
    run = next((r for r in shaped if r["task_id"] == ""), None)
    return {"run": run, "tasks": [r for r in shaped if r["task_id"]]}


# Item flags in a run's index shard (the browser filters on them without loading the items).
F_REF_WRONG, F_STRICT_WRONG, F_FAILED, F_PARSE, F_JUDGED, F_REF_RIGHT, F_STRICT_RIGHT, F_NO_VERDICT = (
    1, 2, 4, 8, 16, 32, 64, 128)


def _item_shards(store: Store, run: str, unusable: dict[str, str], limits: tuple[int | None, int]
                 ) -> tuple[list[str], dict[str, list[int]]]:
    """The item browser's data: an index (task and flags per item) and shards of :data:`SHARD_ITEMS` items, each
    a script calling ``medsbenchData(name, data)``. Returns (texts, {task: [shown, total]})."""
    max_items, max_chars = limits
    judgements: dict[tuple[str, str], list[list[Any]]] = defaultdict(list)
    for j in store.judgements(run):
        judgements[(j["task_id"], j["item_id"])].append(
            [j["judge"], j["score"], j["status"], _cut(j["reply"], max_chars), int(j["judge"] in unusable)])
    tasks: dict[str, int] = {}
    index: list[list[int]] = []
    items: list[list[Any]] = []
    counts: dict[str, list[int]] = {}
    for p in store.predictions(run):
        shown_total = counts.setdefault(p["task_id"], [0, 0])
        shown_total[1] += 1
        if max_items is not None and shown_total[0] >= max_items:
            continue
        shown_total[0] += 1
        js = judgements.get((p["task_id"], p["item_id"]), [])
        index.append([tasks.setdefault(p["task_id"], len(tasks)), _flags(p, bool(js))])
        items.append([p["task_id"], p["item_id"], _cut(p["input"], max_chars),
                      None if p["error"] is not None else _cut(p["output"], max_chars), _cut(p["reference"], max_chars),
                      p["correct"], p["strict_correct"], p["error"], p["parsed"], p["parse_note"],
                      _cut_tail(p["prompt"], 2 * max_chars) if p["prompt"] else None, js])
    head = {"run": run, "tasks": list(tasks), "items": index, "shard_size": SHARD_ITEMS,
            "shards": (len(items) + SHARD_ITEMS - 1) // SHARD_ITEMS, "max_chars": max_chars}
    texts = [f"medsbenchData(\"index\",{script_json(head)});\n"]
    for start in range(0, len(items), SHARD_ITEMS):
        name = f"items-{start // SHARD_ITEMS:04d}"
        texts.append(f"medsbenchData(\"{name}\",{script_json(items[start:start + SHARD_ITEMS])});\n")
    return texts, counts


def _flags(p: Any, judged: bool) -> int:
    f = 0
    if p["error"] is not None:
        f |= F_FAILED
    f |= {0: F_REF_WRONG, 1: F_REF_RIGHT}.get(p["correct"], 0) | {0: F_STRICT_WRONG, 1: F_STRICT_RIGHT}.get(
        p["strict_correct"], 0)
    if p["correct"] is None and p["strict_correct"] is None:
        f |= F_NO_VERDICT
    if p["parsed"] == 0:
        f |= F_PARSE
    return f | (F_JUDGED if judged else 0)


def _cut(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more characters]"


def _cut_tail(text: str, limit: int) -> str:
    """The end of a long prompt (where the query is), with how much was left out before it."""
    return text if len(text) <= limit else f"[… {len(text) - limit} earlier characters …] " + text[-limit:]


def _versions_view(data: dict[str, Any], model_of: dict[str, Any]) -> dict[str, Any]:
    """The data versions on the board: per task, each test-file version and the runs that used it."""
    users: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in data["runs"]:
        for tid, i in data["task_infos"][r.name].items():
            if i["file_sha256"]:
                users[(tid, i["file_sha256"])].append(r.name)
    tasks = [{"task_id": tid, "sha256": sha, "version": sha[:8], "runs": sorted(names), "mixed": tid in data["versions"],
              "n": data["task_files"].get(sha, {}).get("n_instances")}
             for (tid, sha), names in sorted(users.items(), key=lambda kv: (_task_order(kv[0][0]), kv[0][1]))]
    runs = [{"run": r.name, "model": model_of[r.name].name, "version": r.benchmark_version,
             "n_tasks": sum(1 for i in data["task_infos"][r.name].values() if i["file_sha256"])}
            for r in data["runs"] if r.kind != "reported"]
    return {"tasks": tasks, "runs": runs, "mixed": sorted(data["versions"], key=_task_order)}


def _judge_about(rubrics_dir: str | os.PathLike | None) -> dict[str, Any]:
    """The judge rubrics, prompt template and probe settings, as the about page shows them."""

    rubrics, template, probes = load_rubrics(None if rubrics_dir is None else Path(rubrics_dir))
    ordered = sorted(rubrics.values(), key=lambda r: (r.id == GENERIC, r.id))
    return {
        "rubrics": [{"ref": r.ref, "title": r.title, "task": r.task.strip(), "categories": r.applies_to.categories,
                     "tasks": r.applies_to.tasks, "generic": r.id == GENERIC,
                     "criteria": [(c.name, c.ask) for c in r.criteria],
                     "scale": [(score, r.scale[score]) for score in sorted(r.scale, reverse=True)]} for r in ordered],
        "template": template.ref, "scale_min": template.scale_min, "scale_max": template.scale_max,
        "probes": {"version": probes.version, "sample": probes.sample,
                   "reference_min": _g(probes.checks.reference.get("min")), "empty_max": _g(probes.checks.empty.get("max")),
                   "off_topic_max": _g(probes.checks.off_topic.get("max")),
                   "truncated_fraction": _pct(probes.checks.truncated.get("fraction"))},
        "unusable_parse": _pct(UNUSABLE_PARSE_FAILURE), "min_probe_pass": _pct(MIN_PROBE_PASS),
    }


def _g(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.0f}%"


__all__ = ["MARKER", "SiteReport", "build_site", "ci_text", "detectable_difference", "script_json",
           "verdict"]

