"""Whole-process scoring time per row: the official Rationale script vs ``medsbench score``.

Writes an official submission CSV (``task_id,input,GT,output``) of rationale rows over the six
MMedBench languages (task51-56: zh, en, fr, ja, ru, es; generated texts as in
``bench/score_bench.py``), the base set repeated ``--copies`` times (default 10), then runs, each
as a whole process (interpreter start, imports, reading, scoring, writing):

* the official ``Metrics/Rationale.py`` (``evaluate_reasoning``, from
  ../shared/reference/meds_ins_official; nltk's ``punkt_tab`` written from the bundled Punkt
  parameters, as the tests do);
* ``medsbench score FILE --bootstrap B`` (results.json with CIs).

It checks that medsbench's reference BLEU-1/ROUGE-L per task equal the official script's (to
the 4 decimals of results.json) and prints seconds per row and the ratio, with the load average.
``--baseline SRC`` also times another checkout's ``medsbench score`` (its ``src/`` folder).

    python bench/official_bench.py [--rows 60] [--copies 10] [--bootstrap 1000] [--baseline /path/src]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from score_bench import text, write_punkt_tab  # noqa: E402

TASKS = {"task51": "zh", "task52": "en", "task53": "fr", "task54": "ja", "task55": "ru", "task56": "es"}
OFFICIAL = HERE.parent.parent / "shared" / "reference" / "meds_ins_official" / "Metrics"

OFFICIAL_RUN = """
import sys
sys.path.insert(0, {metrics!r})
sys.setrecursionlimit(10000)
import nltk
nltk.data.path.insert(0, {nltk!r})
from Rationale import evaluate_reasoning
print(evaluate_reasoning([{csv!r}], output_file={out!r}))
"""


def make_csv(path: Path, rows_per_task: int, copies: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    base = []
    for tid, lang in TASKS.items():
        for k in range(rows_per_task):
            gold = text(rng, lang, rng.randint(60, 240))
            out = text(rng, lang, rng.randint(150, 300) if k % 2 == 0 else rng.randint(10, 60))
            base.append((tid, f"question {tid} {k}", gold, out))
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task_id", "input", "GT", "output"])
        for c in range(copies):
            for tid, q, gold, out in base:
                w.writerow([tid, f"{q} copy {c}", gold, out])
    return len(base) * copies


CPU: dict[str, float] = {}  # CPU seconds (user + system) of each timed child process, by its label


def timed(cmd: list[str], env: dict[str, str], cwd: Path, label: str = "") -> tuple[float, str]:
    """Wall seconds and stdout of ``cmd``; its CPU seconds go to :data:`CPU` (a busy machine inflates wall time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[label] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=60, help="rows per task in the base set")
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--baseline", metavar="SRC", help="another checkout's src/ folder to time as well")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "predictions_bench.csv"
        n = make_csv(path, args.rows, args.copies)
        nltk_dir = tmp / "nltk_data"
        write_punkt_tab(nltk_dir)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        load = os.getloadavg()[0]
        code = OFFICIAL_RUN.format(metrics=str(OFFICIAL), nltk=str(nltk_dir), csv=str(path), out=str(tmp / "official.csv"))
        official_s, out = timed([sys.executable, "-c", code], env, tmp, "official")
        official = eval(out.strip().splitlines()[-1])["bench"]  # noqa: S307 - the script prints a dict literal
        sides = {"this": str(HERE.parent / "src")}
        if args.baseline:
            sides["baseline"] = args.baseline
        ours: dict[str, float] = {}
        for name, src in sides.items():
            results = tmp / f"results_{name}.json"
            cmd = [sys.executable, "-m", "medsbench.cli", "score", str(path), "--bootstrap", str(args.bootstrap),
                   "--out", str(results)]
            ours[name], _ = timed(cmd, {**env, "PYTHONPATH": src}, tmp, name)
            got = json.loads(results.read_text(encoding="utf-8"))["tasks"]
            for tid, (bleu, rouge) in official.items():
                ref = got[tid]["reference"]
                # results.json rounds to 4 decimals
                assert abs(ref["bleu1"] - bleu) <= 5e-5 and abs(ref["rougeL"] - rouge) <= 5e-5, (name, tid, ref, bleu, rouge)
        print(f"{n} rows ({args.rows} per task x 6 tasks x {args.copies} copies); load average {load:.2f} -> "
              f"{os.getloadavg()[0]:.2f}; reference BLEU-1/ROUGE-L equal to the official script's")
        print(f"official Rationale.py: {official_s:.2f} s wall, {CPU['official']:.2f} s CPU, "
              f"{1000 * official_s / n:.2f} ms/row")
        for name, secs in ours.items():
            print(f"medsbench score ({name}, --bootstrap {args.bootstrap}): {secs:.2f} s wall, {CPU[name]:.2f} s CPU, "
                  f"{1000 * secs / n:.2f} ms/row; {official_s / secs:.1f}x faster per row (wall), "
                  f"{CPU['official'] / CPU[name]:.1f}x (CPU)")


if __name__ == "__main__":
    main()
