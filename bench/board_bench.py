"""Leaderboard at full scale: ingest a run of every catalog task and build the site.

A synthetic run (every MedS-Bench catalog task, N items each, long inputs, outputs that are right
about half the time) is scored with the real scoring engine, added to a fresh store, and the site is
built twice. Prints seconds per stage, store and site sizes, the largest page, and whether the
rebuild was byte-identical.

    python bench/board_bench.py [--items 500]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from pathlib import Path

from medsbench.board import Store, build_site
from medsbench.fileio import write_jsonl
from medsbench.metrics import score_predictions, scorer_for_task, write_results
from medsbench.tasks.catalog import catalog

WORDS = "patient presents with chest pain fever cough tumor aspirin metformin dose history acute chronic renal".split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def _answer(entry, rng: random.Random) -> str:
    if entry.category == "mcqa":
        return rng.choice("ABCD") + ". " + _text(rng, 3)
    scorer = scorer_for_task(entry)
    family = scorer.family if scorer is not None else ""
    if family in ("f1_micro", "f1_macro"):
        return ", ".join(rng.sample(WORDS, 3)) + "."
    if family == "bleu_rouge":
        return _text(rng, 60)
    return rng.choice(["True", "False", "yes", "no"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=500, help="items per task")
    args = ap.parse_args()
    rng = random.Random(0)
    cat = catalog()
    rows = []
    for entry in cat.tasks.values():
        for i in range(args.items):
            ref = _answer(entry, rng)
            out = ref if rng.random() < 0.5 else _answer(entry, rng)
            rows.append({"task_id": entry.id, "id": str(i), "category": entry.category, "language": entry.language,
                         "input": _text(rng, 300), "output": out, "reference": ref, "references": [ref],
                         "prompt": None, "demo_ids": [], "prompt_tokens": 0, "output_tokens": 0, "seconds": 0.0,
                         "truncated": False, "error": None})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = root / "runs" / "synthetic"
        write_jsonl(run / "predictions.jsonl", rows)
        t0 = time.perf_counter()
        write_results(score_predictions(run / "predictions.jsonl", bootstrap=200), run / "results.json")
        t_score = time.perf_counter() - t0
        store = Store(root / "board.sqlite")
        t0 = time.perf_counter()
        store.add_run(run, model_name="synthetic")
        t_add = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = store.add_run(run, model_name="synthetic")
        t_readd = time.perf_counter() - t0
        rep = build_site(store, root / "site")
        digest1 = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "site").rglob("*")) if p.is_file()}
        rep2 = build_site(store, root / "site")
        digest2 = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "site").rglob("*")) if p.is_file()}
        biggest = max((root / "site").rglob("*.html"), key=lambda p: p.stat().st_size)
        print(f"predictions: {len(rows)} rows over {len(cat.tasks)} tasks "
              f"({(run / 'predictions.jsonl').stat().st_size / 1e6:.1f} MB)")
        print(f"score (bootstrap 200, for the bench only): {t_score:.2f}s")
        print(f"board add: {t_add:.2f}s ({len(rows) / t_add:,.0f} rows/s); re-add ({again}): {t_readd:.2f}s")
        print(f"store size: {(root / 'board.sqlite').stat().st_size / 1e6:.1f} MB")
        print(f"site build: {rep.seconds:.2f}s, rebuild {rep2.seconds:.2f}s; {rep.files} files, {rep.bytes / 1e6:.1f} MB")
        print(f"largest page: {biggest.relative_to(root / 'site')} {biggest.stat().st_size / 1e6:.1f} MB "
              f"(default caps: 100 items/task, 2000 chars/field)")
        print(f"rebuild byte-identical: {digest1 == digest2}")
        store.close()


if __name__ == "__main__":
    main()
