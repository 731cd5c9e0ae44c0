"""Leaderboard at full scale: a run of ~30k predictions over every catalog task, added and built.

A synthetic run (every MedS-Bench catalog task, its test file written to a workspace, long inputs and
prompts, outputs that are right about half the time) is scored with the real scoring engine, added to
a fresh store (``board add``: checks, full-file baselines, per-item verdicts and parses), and the site
is built twice. Prints seconds per stage, store and site sizes, the heaviest HTML page and the
heaviest item shard (what a browser loads at once), and whether the rebuild was byte-identical.

    python bench/board_bench.py [--total 30000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import tempfile
import time
from pathlib import Path

from medsbench.board.publish import add_run

from medsbench.board.site import build_site

from medsbench.board.store import Store
from medsbench.fileio import sha256_file, sha256_text
from medsbench.metrics import score_predictions, scorer_for_task
from medsbench.records import PredictionRow
from medsbench.models.spec import ModelSpec
from medsbench.records.config import EvalConfig
from medsbench.records.folder import RunFolder
from medsbench.records.manifest import ManifestTask, RunManifest, TaskFile, now
from medsbench.tasks.catalog import catalog
from medsbench.tasks.format import Instance, write_task

WORDS = "patient presents with chest pain fever cough tumor aspirin metformin dose history acute chronic renal".split()
DEFINITION = "Given a clinical text, answer the question. " * 8


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def _answer(entry, rng: random.Random) -> str:
    if entry.category == "mcqa":
        return "The right answer is " + rng.choice("ABCD") + ". " + _text(rng, 3)
    scorer = scorer_for_task(entry)
    if scorer is not None and scorer.is_text:
        return _text(rng, 60)
    if scorer is not None and scorer.primary == "f1":
        return ", ".join(rng.sample(WORDS, 3)) + "."
    return rng.choice(["True", "False", "yes", "no"])


def make_run(root: Path, total: int) -> tuple[Path, int]:
    """Task files under root/tasks and a finished run folder root/runs/synthetic (predictions + manifest)."""
    rng = random.Random(0)
    cat = catalog()
    per_task = max(1, total // len(cat.tasks))
    rows, tasks = [], {}
    for entry in cat.tasks.values():
        insts = []
        for i in range(per_task):
            ref = _answer(entry, rng)
            opts = "\nA. aspirin\nB. metformin\nC. cisplatin\nD. ibuprofen" if entry.category == "mcqa" else ""
            insts.append(Instance(id=str(i), input=_text(rng, 300) + opts, output=[ref]))
        path = root / "tasks" / entry.file_name("test")
        write_task(path, {"Definition": [DEFINITION], "Source": ["synthetic"],
                          "medsbench": {"task_id": entry.id, "license": "CC0", "split": "test"}}, insts)
        tasks[entry.id] = ManifestTask(category=entry.category, language=entry.language,
                                       definition_sha256=sha256_text(DEFINITION), n_total=per_task, n=per_task,
                                       files={"test": TaskFile(path=str(path), sha256=sha256_file(path))})
        for inst in insts:
            out = inst.target if rng.random() < 0.5 else _answer(entry, rng)
            rows.append(PredictionRow(task_id=entry.id, id=inst.id, category=entry.category, language=entry.language,
                                      input=inst.input, output=out, reference=inst.target, references=[inst.target],
                                      prompt=f"{DEFINITION}\n\nInput:\n{inst.input}\nOutput:\n", prompt_tokens=400,
                                      output_tokens=20, seconds=0.5))
    run = root / "runs" / "synthetic"
    run.mkdir(parents=True)
    folder = RunFolder(run)
    folder.write_predictions(rows)
    config = EvalConfig(model=ModelSpec.parse("hf:/models/synthetic", strict=False))
    folder.save_manifest(RunManifest(config=config, backend={"kind": "hf"}, tasks=tasks, generation={},
                                     prompt_template_sha256=sha256_text("bench"), finished=now(), status="finished",
                                     counts={"items": len(rows), "failed": 0, "written": len(rows)}))
    return run, len(rows)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--total", type=int, default=30000, help="predictions in the run (spread over every catalog task)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run, n = make_run(root, args.total)
        t0 = time.perf_counter()
        RunFolder(run).save_results(score_predictions(RunFolder(run).predictions(), bootstrap=200))
        t_score = time.perf_counter() - t0
        store = Store(root / "board.sqlite")
        t0 = time.perf_counter()
        status = add_run(store, run, model_name="synthetic")
        t_add = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = add_run(store, run, model_name="synthetic")
        t_readd = time.perf_counter() - t0
        rep = build_site(store, root / "site")
        first = _digest(root / "site")
        rep2 = build_site(store, root / "site")
        same = _digest(root / "site") == first
        store.close()
        shards = list((root / "site" / "runs").rglob("items-*.js"))
        index = next((root / "site" / "runs").rglob("index.js"))
        print(f"load: {os.getloadavg()[0]:.2f} (1 min average, {os.cpu_count()} cores)")
        print(f"predictions: {n} rows over {len(catalog().tasks)} tasks "
              f"({RunFolder(run).predictions_path.stat().st_size / 1e6:.1f} MB)")
        print(f"score (bootstrap 200, for the bench only): {t_score:.2f}s")
        print(f"board add ({status}): {t_add:.2f}s ({n / t_add:,.0f} rows/s); re-add ({again}): {t_readd:.2f}s")
        print(f"store size: {(root / 'board.sqlite').stat().st_size / 1e6:.1f} MB")
        print(f"site build: {rep.seconds:.2f}s, rebuild {rep2.seconds:.2f}s; {rep.files} files, {rep.bytes / 1e6:.1f} MB")
        print(f"heaviest page: {rep.largest_page} {rep.largest_page_bytes / 1e3:.0f} kB; run page "
              f"{(root / 'site' / 'runs').glob('*.html').__next__().stat().st_size / 1e3:.0f} kB")
        print(f"item browser: index {index.stat().st_size / 1e3:.0f} kB, {len(shards)} shards, largest "
              f"{rep.largest_shard_bytes / 1e3:.0f} kB (default --max-chars 2000)")
        print(f"rebuild byte-identical: {same}")


if __name__ == "__main__":
    main()
