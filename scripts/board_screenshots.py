"""Screenshots of the leaderboard for docs/screenshots/ (desktop 1400 px and phone 390 px).

Builds a board from real test items (the first items of MedQA-USMLE task57, PubMedQA task123,
BC5CDR chemicals task126 and MeQSum task114, converted from ../shared/data/raw, as small demo test files) answered by two *recorded* demo models (answers made
here from the gold: right on a fixed share of items, so the pages have real items and real scores
without running a model), a sample run (5 items per task), the published rows, a paired comparison and
judged scores (the local judge server of tests/judge_server.py). Then shoots the overview, a run's item
browser and a task page, and stores them as small palette PNGs.

    python scripts/board_screenshots.py [--raw ../shared/data/raw] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASKS = (("medqa_usmle", "medqa_usmle", "task57", 80), ("pubmedqa", "pubmedqa", "task123", 60),
         ("bc5cdr_chem", "bc5cdr", "task126", 60), ("meqsum", "meqsum", "task114", 30))


def _answer(tid: str, k: int, inst, right: bool) -> str:
    gold = inst.output[0]
    if tid == "task57":
        letter = gold.split("The right answer is ", 1)[1][0]
        return f"The right answer is {letter if right else 'ABCD'[('ABCD'.index(letter) + 1) % 4]}."
    if tid == "task123":
        label = gold.rsplit(" ", 1)[-1].strip(".")
        return gold if right else f"The right answer is {'no' if label == 'yes' else 'yes'}."
    if tid == "task126":
        return gold if right else (gold.split(",")[0].strip().rstrip(".") + ", aspirin." if k % 3 else "")
    return gold if right else " ".join(inst.input.split()[:14])


def make_runs(raw: Path, root: Path) -> dict[str, Path]:
    from medsbench.fileio import sha256_file, sha256_text
    from medsbench.metrics import score_predictions
    from medsbench.records import PredictionRow, write_predictions
    from medsbench.records.manifest import ManifestTask, RunManifest, TaskFile, now
    from medsbench.records.results import Results
    from medsbench.sources import convert
    from medsbench.tasks.catalog import catalog
    from medsbench.tasks.format import count_instances, iter_instances, read_meta, write_task

    cat = catalog()
    files = {}
    for source, folder, tid, n in TASKS:  # a demo test file: the first n items of the real one
        paths = convert(source, raw / folder, root / "converted")
        full = next(p for p in paths if p.name.endswith(".test.json"))
        meta = read_meta(full)
        meta["medsbench"] = {**meta.get("medsbench", {}), "split_method": f"first {n} items of the test split (demo)"}
        files[tid] = root / "tasks" / full.name
        write_task(files[tid], meta, list(iter_instances(full))[:n])
    runs = {}
    for name, share, limit in (("demo-base", 0.45, None), ("demo-tuned", 0.7, None), ("demo-sample", 0.6, 5)):
        rows, tasks = [], {}
        for _, _, tid, n in TASKS:
            entry = cat[tid]
            insts = list(iter_instances(files[tid]))[: limit or n]
            for k, inst in enumerate(insts):
                right = (k * 37 % 100) < 100 * share
                rows.append(PredictionRow(task_id=tid, id=inst.id, category=entry.category, language=entry.language,
                                          input=inst.input, output=_answer(tid, k, inst, right), reference=inst.target,
                                          references=list(inst.output),
                                          prompt=f"{read_meta(files[tid])['Definition'][0]}\n\nInput:\n{inst.input}\nOutput:\n"))
            n_total = count_instances(files[tid])
            tasks[tid] = ManifestTask(category=entry.category, language=entry.language,
                                      definition_sha256=sha256_text("demo"), n_total=n_total, n=len(insts),
                                      files={"test": TaskFile(path=str(files[tid]), sha256=sha256_file(files[tid]))})
        run = root / "runs" / name
        write_predictions(run / "predictions.jsonl", rows)
        Results.model_validate(score_predictions(run / "predictions.jsonl", bootstrap=500)).save(run / "results.json")
        RunManifest(model=f"hf:/models/{name}", backend={"kind": "hf"}, tasks=tasks, args={}, generation={},
                    prompt_template_sha256=sha256_text("demo"), seed=0, finished=now(), status="finished",
                    counts={"items": len(rows), "failed": 0, "written": len(rows)}).save(run)
        runs[name] = run
    return runs


def judge(run: Path) -> None:
    from medsbench.judge import judge_run

    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "judge_server.py")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().split()[1])  # type: ignore[union-attr]
        os.environ["DEMO_JUDGE_KEY"] = "sk-demo-never-logged"
        url = f"http://127.0.0.1:{port}/v1"
        judge_run(run, [f"openai:{m},base_url={url},api_key_env=DEMO_JUDGE_KEY" for m in ("overlap", "recall")],
                  bootstrap=500)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def shoot(site: Path, out: Path) -> list[Path]:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from medsbench.board.names import unique_slug

    shots = [("overview", "index.html", None), ("run-items", f"runs/{unique_slug('demo-tuned')}.html", "#items"),
             ("task", "tasks/task57.html", None)]
    written = []
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless"])
        for width, height, label in ((1400, 1000, "desktop"), (390, 844, "phone")):
            page = browser.new_page(viewport={"width": width, "height": height})
            for name, rel, anchor in shots:
                page.goto((site / rel).as_uri())
                if anchor:  # desktop: the wrong MCQA answers; phone: judged summaries (scores and rationale)
                    page.wait_for_selector("#item-list article")
                    page.select_option("#f-task", "task57" if label == "desktop" else "task114")
                    page.select_option("#f-show", "1" if label == "desktop" else "16")
                    page.wait_for_selector("#item-list article")
                    page.evaluate(f"() => document.querySelector('{anchor}').scrollIntoView()")
                path = out / f"{name}-{label}.png"
                page.screenshot(path=str(path))
                Image.open(path).convert("RGB").quantize(colors=96).save(path, optimize=True)
                written.append(path)
            page.close()
        browser.close()
    return written


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = ap.parse_args()
    from medsbench.board import Store, add_run, build_site

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = make_runs(args.raw, root)
        judge(runs["demo-tuned"])
        with Store(root / "board.sqlite") as store:
            add_run(store, runs["demo-base"], model_name="Demo base (recorded answers)")
            add_run(store, runs["demo-tuned"], model_name="Demo tuned (recorded answers)", baseline="demo-base")
            add_run(store, runs["demo-sample"], model_name="Demo sample (5 items per task)")
            build_site(store, root / "site")
        for path in shoot(root / "site", args.out):
            print(f"{path} {path.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
