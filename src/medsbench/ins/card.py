"""The mixture's data card (``card.md``) and plots, written from ``stats.json``.

Plots are PNGs drawn with matplotlib's Agg canvas (no pyplot global state) and
saved without the Software/date metadata, so a rebuild gives the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medsbench.errors import require
from medsbench.fileio import atomic_write

TOP_TASKS = 40


def _md(text: Any) -> str:
    """Escape a value for a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _figure(width: float, height: float):
    require("matplotlib", "ins", "data card plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", metadata={"Software": None})


def _bar(path: Path, shares: dict[str, dict], title: str, limit: int) -> None:
    items = list(shares.items())[:limit]
    fig = _figure(8, max(2.5, 0.28 * len(items) + 1))
    ax = fig.add_subplot(1, 1, 1)
    labels = [k for k, _ in items][::-1]
    values = [100 * v["share"] for _, v in items][::-1]
    ax.barh(range(len(values)), values, color="#4c72b0")
    ax.set_yticks(range(len(values)), labels=labels, fontsize=8)
    ax.set_xlabel("share of examples (%)")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def _hist(path: Path, lengths: dict[str, Any]) -> None:
    edges = lengths["edges"]
    labels = [f"<{e}" for e in edges[1:]]
    fig = _figure(9, 3.2)
    for i, (key, title) in enumerate((("prompt_chars", "prompt length (chars)"), ("target_chars", "target length (chars)"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.bar(range(len(labels)), lengths[key], color="#55a868")
        ax.set_xticks(range(len(labels)), labels=labels, rotation=60, fontsize=7)
        ax.set_ylabel("examples")
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def write_card(out: str | os.PathLike, stats: dict[str, Any]) -> Path:
    out = Path(out)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    _bar(plots / "tasks.png", stats["shares"]["task"], f"Task share (top {TOP_TASKS})", TOP_TASKS)
    _bar(plots / "categories.png", stats["shares"]["category"], "Category share", 50)
    _hist(plots / "lengths.png", stats["lengths"])
    path = out / "card.md"
    with atomic_write(path) as fh:
        fh.write(render_card(stats))
    return path


def render_card(stats: dict[str, Any]) -> str:
    t = stats["totals"]
    cfg = stats["config"]
    dec = stats["decontamination"]
    L: list[str] = []
    add = L.append
    add(f"# MedS-Ins mixture `{_md(stats['name'])}`\n")
    add(f"Built by medsbench {stats['medsbench_version']} with seed {stats['seed']}. "
        "Records are chat messages (system: instruction block with any demos, user: `Input:` query, "
        "assistant: target) in exactly the MedS-Bench evaluation prompt format. "
        "Load with `datasets.load_dataset(\"parquet\", data_files=\"data/*.parquet\")`.\n")
    add("## Counts\n")
    add("| | examples |\n|---|---:|")
    for key, label in (("input", "input instances"), ("exact_duplicate", "exact duplicates dropped"),
                       ("near_duplicate", "near-duplicates dropped"), ("contaminated", "contaminated dropped"),
                       ("clean", "clean instances"), ("examples", "examples written"),
                       ("tasks", "tasks"), ("shards", "shards")):
        add(f"| {label} | {t[key]} |")
    ins = stats["instructions"]
    add(f"\nInstructions: {ins['original']} original definitions, {ins['paraphrase']} paraphrases "
        f"(p = {cfg['instructions']['paraphrase_prob']}"
        + (f"; {ins.get('distinct_paraphrases_used', 0)} distinct paraphrases of {ins.get('tasks_with_paraphrases', 0)} task(s) used"
           if ins.get("tasks_with_paraphrases") else "; no paraphrase file was given, so every example uses its task's definition")
        + "). Shots: " + ", ".join(f"{k}-shot {v}" for k, v in stats["shots"].items()) + ".\n")
    if ins.get("definitions"):
        add(f"Definitions and paraphrases: `{_md(ins['definitions'])}` (loaded by path; the paraphrases are CC BY-SA, "
            "so the mixture carries that licence too).\n")
    bal = cfg["balance"]
    add(f"Balance: temperature {bal['temperature']}, cap {bal['cap']}, total {bal['total'] or 'sum of capped task sizes'}, "
        f"max repeats {bal['max_repeats']}: p(task) ∝ min(clean, cap)^(1/T), a task gives at most min(clean, cap) x max repeats "
        "examples (a repeat gets its own instruction and demos), so large tasks are cut to the cap and small ones "
        "upsampled; with T >= 1 and the default total no task exceeds the cap. \"Before\" counts the clean instances (after deduplication and "
        "decontamination, before caps, temperature and repeats); \"after\" counts the examples written.\n")
    before_all = stats.get("shares_before_balancing", {})
    for key, title in (("category", "Category"), ("language", "Language"), ("source", "Source")):
        add(f"## {title} share\n")
        before = before_all.get(key, {})
        add(f"| {title.lower()} | before: clean | share | after: examples | share |\n|---|---:|---:|---:|---:|")
        names = list(stats["shares"][key]) + [k for k in before if k not in stats["shares"][key]]
        for k in names:
            a = stats["shares"][key].get(k, {"n": 0, "share": 0.0})
            b = before.get(k)
            bcell = f"{b['n']} | {_pct(b['share'])}" if b else "- | -"
            add(f"| {_md(k)} | {bcell} | {a['n']} | {_pct(a['share'])} |")
        add("")
    add("![categories](plots/categories.png)\n")
    add("## Tasks\n")
    add("| task | category | language | input | exact dup | near dup | contaminated | clean | written | share | paraphrases used/available |")
    add("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    shares = stats["shares"]["task"]
    for tid, r in stats["tasks"].items():
        share = shares.get(tid, {"share": 0.0})["share"]
        add(f"| {_md(tid)} | {_md(r['category'])} | {r['language']} | {r['input']} | {r['exact_duplicate']} | "
            f"{r['near_duplicate']} | {r['contaminated']} | {r['clean']} | {r['emitted']} | {_pct(share)} | "
            f"{r.get('paraphrases_used', 0)}/{r['paraphrases']} |")
    add("\n![tasks](plots/tasks.png)\n")
    add("## Licences\n")
    add("Collected from the source task files; the mixture inherits every one of them.\n")
    add("| licence | tasks |\n|---|---|")
    for lic, tids in stats["licenses"].items():
        add(f"| {_md(lic)} | {_md(', '.join(tids))} |")
    add("\n## Deduplication\n")
    d = cfg["dedupe"]
    add(f"Exact: {'on' if d['exact'] else 'off'} (key `{d['key']}`, case-folded, whitespace-collapsed, 64-bit hash), "
        f"{t['exact_duplicate']} dropped. Near: {'on' if d['near'] else 'off'} (MinHash, {d['num_perm']} permutations, "
        f"{d['shingle']}-word shingles, LSH at Jaccard {d['threshold']}), {t['near_duplicate']} dropped. "
        "The first occurrence in task order is kept.\n")
    add("## Decontamination\n")
    _decontamination(add, dec, cfg)
    rows = [(tid, r) for tid, r in stats["tasks"].items() if r["contaminated"]]
    if rows:
        add("| task | dropped | reasons | test tasks | examples (instance id: reason -> test task) |\n|---|---:|---|---|---|")
        for tid, r in rows:
            c = r["contamination"]
            reasons = ", ".join(f"{k} {v}" for k, v in c["reasons"].items())
            tts = ", ".join(f"{k} {v}" for k, v in c["test_tasks"].items())
            ex = "; ".join(f"{e['id']}: {e['reason']} -> {e['test_task']}" for e in c["examples"][:3])
            add(f"| {_md(tid)} | {r['contaminated']} | {_md(reasons)} | {_md(tts)} | {_md(ex)} |")
    else:
        add("No training example was dropped for contamination.")
    add("\n## Lengths\n")
    add("![lengths](plots/lengths.png)\n")
    add("## Files\n")
    add("| shard | rows | sha256 |\n|---|---:|---|")
    for s in stats["shard_files"]:
        add(f"| {s['path']} | {s['rows']} | `{s['sha256'][:16]}` |")
    add("")
    return "\n".join(L) + "\n"


def _decontamination(add, dec: dict[str, Any], cfg: dict[str, Any]) -> None:
    """What the mixture was checked against (folders, files, instances, the set's sha256) and by which rule."""
    if not dec.get("enabled", True):
        add("**Decontamination was switched off (`--no-decontamination`): no training example was checked against "
            "benchmark test instances. Do not evaluate a model tuned on this mixture on a benchmark without checking it.**\n")
        return
    folders = ", ".join(f"`{_md(f)}`" for f in dec.get("folders", [])) or "the given files"
    add(f"Checked against {dec['test_instances']} test instance(s) in {len(dec['test_files'])} test file(s) of "
        f"{len(dec['test_tasks'])} benchmark task(s), found in {folders}"
        + (f"; sha256 of the test set (sorted per-file sha256 lines): `{dec['test_set_sha256']}`" if "test_set_sha256" in dec else "")
        + ". Rule (`medsbench.ins.decontam`): "
        f"exact normalised input, shared {dec['ngram']}-gram"
        + (f" ({dec['ngram_han']} characters for Han-script inputs, {dec['ngram_kana']} for inputs with kana or Hangul; "
           f"{dec.get('cjk_test_instances', 0)} test input(s) with CJK characters)" if "ngram_han" in dec else "")
        + ", and "
        + (f"MinHash near-duplicate at Jaccard {dec['threshold']}" if dec["near"] else "no near-duplicate search")
        + f". {dec['ignored_boilerplate_ngrams']} boilerplate n-gram(s) shared by more than "
        f"{cfg['decontam']['max_ngram_test_freq']} test instances were ignored.\n")
    if dec["test_instances"] == 0:
        add("**Warning: the benchmark test files hold no instance, so nothing was checked for contamination.**\n")
