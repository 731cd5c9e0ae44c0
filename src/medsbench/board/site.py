"""Static leaderboard site: jinja2 templates (autoescape on), build-time SVG charts, no server, no CDN.

The output depends only on the store (and this package's version): rows are sorted, JSON is
dumped with sorted keys, and the one date shown is the store's ``last_update``. Building twice from
the same store therefore gives byte-identical files.

Pages: ``index.html`` (overview in both scoring modes), ``tasks.html`` + ``tasks/<id>.html``,
``models/<slug>.html`` (with ``charts/<slug>.svg``), ``runs/<slug>.html`` (predictions browser),
``about.html`` (protocol, judge rubrics). Pending submissions never appear.

Judged (model-graded) scores have their own section and tables everywhere, never a column of the
official (reference / strict) tables. A run compared with a baseline (``board add --baseline``) shows
the stored paired test on its model page, each row with a plain verdict.
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
from pathlib import Path
from typing import Any

from medsbench import __version__
from medsbench.board.charts import category_bars
from medsbench.metrics import METRIC_TITLES, headline_metrics, primary_metric, scorer_for_task
from medsbench.metrics.compare import difference
from medsbench.redact import redact as redact_value
from medsbench.board.store import Store, load_seed, slugify
from medsbench.errors import MedsbenchError
from medsbench.tasks.workspace import task_order as _task_order

MARKER = ".medsbench-site"
KIND_LABEL = {"reported": "reported", "measured": "measured", "submission": "submitted"}
METRIC_LABEL = METRIC_TITLES
# The columns shown per category are its scorer's headline metrics (text tasks show both BLEU-1 and
# ROUGE-L, as the paper's leaderboard); the one metric used for charts and sorting is medsbench.metrics.primary_metric.
JUDGED_TITLE = "Judged free-text scores (model-graded, not part of the official scores)"
PROBE_LABEL = {"reference": "reference copy", "empty": "empty answer", "off_topic": "off-topic answer",
               "truncated": "truncated answer"}


@dataclass(frozen=True)
class SiteReport:
    out: Path
    files: int
    bytes: int
    seconds: float
    models: int
    runs: int
    tasks: int


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def script_json(obj: Any) -> str:
    """JSON safe to place inside ``<script type="application/json">``: no ``<``, ``>``, ``&``
    or line separators survive literally, so no ``</script>`` can close the tag early."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text


def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("medsbench.board", "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["kind_label"] = KIND_LABEL
    env.globals["sample_text"] = sample_text
    env.globals["coverage_text"] = coverage_text
    env.filters["num"] = _fmt
    env.filters["metric_label"] = lambda k: METRIC_LABEL.get(k, k)
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.1f}%"
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)
    env.filters["signed"] = lambda v: "" if v is None else f"{v:+.2f}"
    env.filters["pval"] = lambda v: "" if v is None else ("< 0.001" if v < 0.001 else f"{v:.3f}")
    env.globals["judged_title"] = JUDGED_TITLE
    env.globals["probe_label"] = PROBE_LABEL
    return env


def _task_title(task_id: str, cat: Any) -> str:
    if task_id.startswith("pooled:"):
        return f"MIMIC-IV {task_id.split(':', 1)[1]} reports (pooled)"
    entry = cat.get(task_id)
    return entry.title if entry else task_id


def _task_file(task_id: str) -> str:
    return task_id.replace(":", "-") + ".html"


class _Model:
    """Everything the templates need about one model and its headline run."""

    def __init__(self, row: Any, runs: list[Any]):
        self.name: str = row["name"]
        self.kind: str = row["kind"]
        self.kind_label = KIND_LABEL.get(self.kind, self.kind)
        self.size: str | None = row["size"]
        self.link: str | None = row["link"] if (row["link"] or "").startswith(("https://", "http://")) else None
        self.description: str | None = row["description"]
        self.slug = slugify(self.name)
        self.runs = runs
        # The headline run: the latest approved one (seed rows have a single run).
        self.run = sorted(runs, key=lambda r: (r.added, r.name))[-1]


def _collect(store: Store) -> dict[str, Any]:
    from medsbench.tasks.catalog import catalog

    cat = catalog()
    seed = load_seed()
    runs = store.runs()
    by_model: dict[str, list[Any]] = defaultdict(list)
    for r in runs:
        by_model[r.model].append(r)
    models = [_Model(row, by_model[row["name"]]) for row in store.models() if by_model.get(row["name"])]
    # Measured rows first, then reported; the table is sortable anyway.
    models.sort(key=lambda m: (m.kind == "reported", m.name.lower(), m.name))

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
    judged = {r.name: j for r in runs if (j := _judged_view(store, r.name, cat)) is not None}
    approved = {r.name for r in runs}
    comparisons = {r.name: c for r in runs if (c := store.comparison(r.name)) is not None and c["baseline"] in approved}

    categories = [
        {"key": k, "title": c.title, "headline": list(headline_metrics(c)),
         "primary": primary_metric(c), "shots": c.shots, "max_new_tokens": c.max_new_tokens}
        for k, c in cat.categories.items()
    ]
    return {"cat": cat, "seed": seed, "runs": runs, "models": models, "categories": categories,
            "cat_scores": cat_scores, "task_scores": task_scores, "task_infos": task_infos,
            "judged": judged, "comparisons": comparisons}


def _ci_text(lo: float | None, hi: float | None) -> str:
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
    """A run's judged scores shaped for the templates (categories in catalog order)."""
    j = store.judged(run)
    if j is None:
        return None
    head = j["run"]
    names = [x["name"] for x in head["judges"]]
    key = head["headline"]
    order = list(cat.categories)
    cats = sorted(j["categories"], key=lambda c: (order.index(c["category"]) if c["category"] in order else 99, c["category"]))
    categories = []
    for c in cats:
        title = cat.categories[c["category"]].title if c["category"] in cat.categories else c["category"]
        categories.append({**c, "title": title, "ci": _ci_text(c["ci_lo"], c["ci_hi"]),
                           "per_judge": [(n, c["judges"].get(n)) for n in names]})
    tasks = []
    for t in j["tasks"]:
        tasks.append({**t, "title": _task_title(t["task_id"], cat), "file": _task_file(t["task_id"]),
                      "ci": _ci_text(t["ci_lo"], t["ci_hi"]),
                      "per_judge": [(n, t["judges"].get(n, {})) for n in names],
                      "probe_rows": _probe_text(t["probes"].get(key, {}))})
    probes = [{"judge": n, "rows": _probe_text(head["probe_totals"].get(n, {}))}
              for n in ([*names, "jury"] if len(names) > 1 else names) if head["probe_totals"].get(n)]
    headline_probes = _probe_text(head["probe_totals"].get(key, {}))
    scale = head["scale"]
    return {"head": head, "judges": head["judges"], "names": names, "jury": key == "jury" and len(names) > 1,
            "headline": key, "scale": f"{scale[0]}–{scale[1]}", "categories": categories,
            "by_category": {c["category"]: c for c in categories}, "tasks": tasks, "probes": probes,
            "headline_probes": headline_probes, "rubrics": sorted(head["rubrics"].values())}


def verdict(delta: float, ci_lo: float, ci_hi: float, p_value: float) -> tuple[str, str]:
    """A comparison row in plain words: a difference is claimed only when the 95% CI of the delta
    excludes 0 and p < 0.05; anything else is "no difference found" (not "no difference")."""
    return {"none": ("no difference found", "same"), "higher": ("tuned is better", "better"),
            "lower": ("tuned is worse", "worse")}[difference(delta, ci_lo, ci_hi, p_value)]


def _comparison_view(data: dict[str, Any], run: Any, model_of: dict[str, Any]) -> dict[str, Any] | None:
    c = data["comparisons"].get(run.name)
    if c is None:
        return None
    cat = data["cat"]
    infos = data["task_infos"][run.name]
    by: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in c["rows"]:
        by.setdefault((r["scope"], r["key"], r["mode"]), {})[r["metric"]] = r

    def row(scope: str, key: str, mode: str, metric: str | None) -> dict[str, Any] | None:
        metrics = by.get((scope, key, mode))
        if not metrics:
            return None
        m = metric if metric in metrics else sorted(metrics)[0]
        r = metrics[m]
        text, cls = verdict(r["delta"], r["ci_lo"], r["ci_hi"], r["p_value"])
        return {"metric": m, "base": r["base"], "tuned": r["tuned"], "delta": r["delta"],
                "ci": f"{r['ci_lo']:+.2f} to {r['ci_hi']:+.2f}", "p_value": r["p_value"], "n": r["n"],
                "n_tasks": r["n_tasks"], "only_in_run": r["only_in_run"], "only_in_baseline": r["only_in_baseline"],
                "verdict": text, "verdict_class": cls}

    order = list(cat.categories)
    cat_keys = sorted({k for (scope, k, _) in by if scope == "category"},
                      key=lambda k: (order.index(k) if k in order else 99, k))
    task_keys = sorted({k for (scope, k, _) in by if scope == "task"}, key=_task_order)
    modes = [("strict", "strict"), ("reference", "official")]
    categories = []
    for k in cat_keys:
        primary = primary_metric(cat.categories[k]) if k in cat.categories else None
        title = cat.categories[k].title if k in cat.categories else k
        for mode, label in modes:
            r = row("category", k, mode, primary)
            if r:
                categories.append({"key": k, "title": title, "mode": label, **r})
    tasks = []
    for k in task_keys:
        info = infos.get(k)
        for mode, label in modes:
            r = row("task", k, mode, info["metric"] if info is not None else None)
            if r:
                tasks.append({"key": k, "title": _task_title(k, cat), "file": _task_file(k), "mode": label, **r})
    base_model = model_of.get(c["baseline"])
    return {"baseline": c["baseline"], "baseline_slug": slugify(c["baseline"]), "base_model": base_model,
            "method": c["method"], "resamples": c["resamples"], "seed": c["seed"], "run": run,
            "categories": categories, "tasks": tasks,
            "found": sum(r["verdict_class"] != "same" for r in categories),
            "none_found": sum(r["verdict_class"] == "same" for r in categories)}


def _cell(data: dict[str, Any], run: str, category: dict[str, Any], mode: str) -> dict[str, Any] | None:
    """One overview cell: headline values, CI text, and a tooltip with the per-task numbers."""
    scores = data["cat_scores"][run]
    values = [scores.get((category["key"], mode, k)) for k in category["headline"]]
    infos = data["task_infos"][run]
    own = [tid for tid in sorted(infos, key=_task_order)
           if infos[tid]["category"] == category["key"] and not tid.startswith("pooled:")]
    if all(v is None for v in values):
        notes, warn = _cell_notes([infos[tid] for tid in own], category)
        if not notes:
            return None
        # Tasks were run but nothing was answered: say so instead of showing a score.
        return {"text": "–", "sort": "", "ci": "", "n_tasks": None, "derived": False, "title": "", "notes": notes,
                "warn": warn}
    parts, cis, n_tasks, derived = [], [], None, False
    for _key, v in zip(category["headline"], values):
        parts.append("–" if v is None else f"{v['value']:.2f}")
        if v is not None:
            n_tasks = v["n_tasks"] if v["n_tasks"] is not None else n_tasks
            derived = derived or bool(v["derived"])
            if v["ci_lo"] is not None:
                cis.append(f"{v['ci_lo']:.1f}–{v['ci_hi']:.1f}")
    tips = []
    if not cis and len(own) == 1:
        # A one-task category: the task's CI is the category's CI.
        ms = data["task_scores"][run].get(own[0], {}).get(mode, {})
        cis = [f"{ms[k]['ci_lo']:.1f}–{ms[k]['ci_hi']:.1f}"
               for k in category["headline"] if k in ms and ms[k]["ci_lo"] is not None]
    for tid in sorted(infos, key=_task_order):
        info = infos[tid]
        if info["category"] != category["key"]:
            continue
        ms = data["task_scores"][run].get(tid, {}).get(mode, {})
        shown = [f"{METRIC_LABEL.get(k, k)} {ms[k]['value']:.1f}" + (
            f" [{ms[k]['ci_lo']:.1f}–{ms[k]['ci_hi']:.1f}]" if ms[k]["ci_lo"] is not None else "")
            for k in category["headline"] if k in ms]
        if shown:
            n = f" (n={info['n']})" if info["n"] else ""
            tips.append(f"{tid}: {', '.join(shown)}{n}")
    if derived:
        tips.insert(0, f"mean of the {n_tasks} task(s) reported for this category")
    notes, warn = _cell_notes([infos[tid] for tid in own], category)
    first = next(v for v in values if v is not None)
    return {"text": " / ".join(parts), "sort": f"{first['value']:.4f}", "ci": ("95% CI " + " / ".join(cis)) if cis else "",
            "n_tasks": n_tasks, "derived": derived, "title": "\n".join(tips), "notes": notes, "warn": warn}


def coverage_text(info: Any) -> str:
    """"coverage 67% (2 failed)" when items failed, "" otherwise."""
    failed = info["n_failed"] or 0
    if not failed:
        return ""
    return f"coverage {100 * (info['coverage'] or 0):.0f}% ({failed} failed)"


def sample_text(info: Any) -> str:
    """"n=5 of 1273 (sample)" for a run limited with --limit, "" for a whole task."""
    planned, total = info["n_planned"], info["n_total"]
    if planned is None or total is None or planned >= total:
        return ""
    return f"n={info['n'] or 0} of {total} (sample)"


def _cell_notes(infos: list[Any], category: dict[str, Any]) -> tuple[list[str], bool]:
    """Small print under an overview cell: coverage, sample size, majority baseline, degenerate tasks."""
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
        if baselines and all(b is not None for b in baselines):
            notes.append(f"majority baseline {sum(baselines) / len(baselines):.1f}")
    degenerate = [i["task_id"] for i in measured if i["degenerate"]]
    if degenerate:
        notes.append("degenerate gold: " + ", ".join(degenerate))
    return notes, bool(failed or degenerate)


def _chart(data: dict[str, Any], model: _Model) -> str:
    rows = []
    for c in data["categories"]:
        key = c["primary"]
        vals = {}
        for mode in ("reference", "strict"):
            s = data["cat_scores"][model.run.name].get((c["key"], mode, key))
            vals[mode] = None if s is None else float(s["value"])
        rows.append((c["title"], METRIC_LABEL.get(key, key), vals))
    return category_bars(f"{model.name}: category scores", rows)


def _predictions(store: Store, run: str, max_items_per_task: int, max_chars: int) -> tuple[list[list[Any]], dict[str, list[int]]]:
    """Rows for the browser, capped per task and per field (the page says so); plus counts per task."""
    items: list[list[Any]] = []
    counts: dict[str, list[int]] = {}

    def cut(text: str | None) -> str:
        text = text or ""
        return text if len(text) <= max_chars else text[:max_chars] + f" … [{len(text) - max_chars} more characters]"

    for p in store.predictions(run):
        shown_total = counts.setdefault(p["task_id"], [0, 0])
        shown_total[1] += 1
        if shown_total[0] >= max_items_per_task:
            continue
        shown_total[0] += 1
        items.append([p["task_id"], p["item_id"], cut(p["input"]), cut(p["output"]), cut(p["reference"]),
                      p["correct"], p["strict_correct"], p["error"]])
    return items, counts


def _manifest_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    manifest = redact_value(manifest)  # stored redacted already; a page never shows a credential
    rows = []
    for key in sorted(manifest):
        value = manifest[key]
        if isinstance(value, (dict, list)):
            text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        else:
            text = "" if value is None else str(value)
        rows.append((key, text))
    return rows


def build_site(
    store: Store,
    out: str | os.PathLike,
    *,
    max_items_per_task: int = 100,
    max_chars: int = 2000,
    rubrics_dir: str | os.PathLike | None = None,
) -> SiteReport:
    """Write the static site into ``out`` (replacing a previous build there). The about page explains the
    judged mode with the rubrics of ``rubrics_dir`` (default: the packaged ``medsbench/judge/rubrics``)."""
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise MedsbenchError(f"{out} exists and is not a medsbench site (no {MARKER}); choose an empty folder")
    data = _collect(store)
    env = _env()
    cat = data["cat"]
    last_update = store.last_update or "never"
    common = {"last_update": last_update, "last_update_date": last_update[:10], "version": __version__,
              "categories": data["categories"]}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a published site is world-readable
    files: dict[str, str] = {}

    def page(rel: str, template: str, **ctx: Any) -> None:
        depth = rel.count("/")
        files[rel] = env.get_template(template).render(root="../" * depth, page=rel, **common, **ctx)

    # Overview: one row per model, one column per category, in both modes.
    overview = {}
    for mode in ("reference", "strict"):
        rows = []
        for m in data["models"]:
            if mode == "strict" and m.kind == "reported":
                continue
            cells = [_cell(data, m.run.name, c, mode) for c in data["categories"]]
            rows.append({"model": m, "cells": cells})
        overview[mode] = rows
    judged_rows = [{"model": m, "judged": data["judged"][m.run.name]} for m in data["models"] if m.run.name in data["judged"]]
    judged_cats = [c for c in data["categories"]
                   if any(c["key"] in r["judged"]["by_category"] for r in judged_rows)]
    page("index.html", "index.html", overview=overview, models=data["models"], judged_rows=judged_rows,
         judged_cats=judged_cats)
    model_of = {r.name: m for m in data["models"] for r in m.runs}

    # Models (+ charts).
    for m in data["models"]:
        files[f"charts/{m.slug}.svg"] = _chart(data, m)
        runs = []
        for r in sorted(m.runs, key=lambda r: r.name):
            tasks = []
            for tid in sorted(data["task_infos"][r.name], key=_task_order):
                tasks.append({"id": tid, "file": _task_file(tid), "title": _task_title(tid, cat),
                              "info": data["task_infos"][r.name][tid], "scores": data["task_scores"][r.name].get(tid, {})})
            runs.append({"run": r, "slug": slugify(r.name), "tasks": tasks,
                         "source": data["seed"]["sources"].get(r.source or "") if r.kind == "reported" else None,
                         "judged": data["judged"].get(r.name), "comparison": _comparison_view(data, r, model_of)})
        model_cells = {mode: [_cell(data, m.run.name, c, mode) for c in data["categories"]] for mode in ("reference", "strict")}
        page(f"models/{m.slug}.html", "model.html", model=m, runs=runs, cells=model_cells)

    # Tasks: every task with at least one score.
    task_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in data["runs"]:
        for tid, info in data["task_infos"][r.name].items():
            scores = data["task_scores"][r.name].get(tid, {})
            if scores:
                task_rows[tid].append({"model": model_of[r.name], "run": r, "run_slug": slugify(r.name),
                                       "info": info, "scores": scores})
    task_list = []
    for tid in sorted(task_rows, key=_task_order):
        entry = cat.get(tid)
        category = (entry.category if entry else task_rows[tid][0]["info"]["category"]) or ""
        metric_family = s.family if (s := scorer_for_task(entry or tid, category)) is not None else None
        metrics = sorted({k for row in task_rows[tid] for mode in row["scores"].values() for k in mode},
                         key=lambda k: list(METRIC_LABEL).index(k) if k in METRIC_LABEL else 99)
        rows = sorted(task_rows[tid], key=lambda r: (r["model"].kind == "reported", r["model"].name, r["run"].name))
        judged_rows = [{"model": r["model"], "run": r["run"], "run_slug": r["run_slug"], "judged": data["judged"][r["run"].name],
                        "task": jt}
                       for r in rows if r["run"].name in data["judged"]
                       for jt in data["judged"][r["run"].name]["tasks"] if jt["task_id"] == tid]
        t = {"id": tid, "file": _task_file(tid), "title": _task_title(tid, cat), "entry": entry, "category": category,
             "category_title": cat.categories[category].title if category in cat.categories else category,
             "metric_family": metric_family, "metrics": metrics, "rows": rows, "judged_rows": judged_rows}
        task_list.append(t)
        page(f"tasks/{t['file']}", "task.html", task=t)
    page("tasks.html", "tasks.html", tasks=task_list)

    # Runs: manifest and predictions browser (measured and submitted runs only).
    n_runs = 0
    for r in data["runs"]:
        if r.kind == "reported":
            continue
        n_runs += 1
        items, counts = _predictions(store, r.name, max_items_per_task, max_chars)
        tasks = [{"id": tid, "file": _task_file(tid), "title": _task_title(tid, cat), "info": data["task_infos"][r.name][tid],
                  "scores": data["task_scores"][r.name].get(tid, {})}
                 for tid in sorted(data["task_infos"][r.name], key=_task_order)]
        page(f"runs/{slugify(r.name)}.html", "run.html", run=r, model=model_of[r.name], tasks=tasks,
             manifest=_manifest_rows(r.manifest), items_json=script_json(items), counts=counts,
             max_items_per_task=max_items_per_task, max_chars=max_chars, judged=data["judged"].get(r.name))

    page("about.html", "about.html", seed=data["seed"], cat=cat, judge=_judge_about(rubrics_dir))

    static = resources.files("medsbench.board").joinpath("static")
    for name in ("style.css", "board.js"):
        files[f"static/{name}"] = static.joinpath(name).read_text(encoding="utf-8")
    files[MARKER] = "built by medsbench board build; this folder is replaced on every build\n"

    total = 0
    try:
        for rel in sorted(files):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            blob = files[rel].encode("utf-8")
            path.write_bytes(blob)
            total += len(blob)
        # Swap the new build into place; the old one is removed only after the swap.
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "site")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SiteReport(out=out, files=len(files), bytes=total, seconds=time.perf_counter() - started,
                      models=len(data["models"]), runs=n_runs, tasks=len(task_list))


def _judge_about(rubrics_dir: str | os.PathLike | None) -> dict[str, Any]:
    """The judge rubrics, prompt template and probe settings, as the about page shows them."""
    from medsbench.judge.rubric import GENERIC, load_rubrics

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
    }


def _g(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.0f}%"

