"""Two evaluations at once vs the same two one after the other, on this machine (thread oversubscription).

    python bench/concurrent_bench.py [--model default] [--tasks task57,task126] [--limit 12] [--threads SPEC]
        [--tasks-dir DIR] [--env KEY=VALUE ...]

Each evaluation is a whole ``medsbench eval`` process (model loading included) on one task, with a fresh
result cache, so both ways do the same work: first the evaluations in sequence, then both started at
once. Prints the wall time of each evaluation and of each way, the ratio sequence / pair (above 1: the
pair finished sooner in total), whether the pair's outputs equal the sequence's, the torch threads of each
process and the load average before and after. ``--threads`` adds ``threads=N`` to
the model spec (default: the backend's choice, the CPUs the process may use); ``--env`` sets variables
for both processes (e.g. ``OMP_WAIT_POLICY=PASSIVE``).

Task files come from ``--tasks-dir`` or are converted from ``../shared/data/raw`` into a temporary
folder (MedQA and BC5CDR chemical by default). Measured numbers: the README's performance section.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from medsbench.models.cpus import usable_cpus

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT.parent / "shared" / "data" / "raw"
SOURCES = {"task57": "medqa_usmle", "task126": "bc5cdr_chem", "task127": "bc5cdr_disease", "task114": "meqsum"}


def convert(tasks: list[str], out: Path) -> None:
    for source in dict.fromkeys(SOURCES[t] for t in tasks):
        folder = source.split("_chem")[0].split("_disease")[0]
        subprocess.run([sys.executable, "-m", "medsbench", "data", "convert", source, "--raw", str(RAW / folder),
                        "--out", str(out)], check=True, capture_output=True, env=os.environ)


def eval_argv(args: argparse.Namespace, task: str, tasks_dir: Path, out: Path) -> list[str]:
    spec = args.model + (f",threads={args.threads}" if args.threads else "")
    return [sys.executable, "-m", "medsbench", "eval", "--model", spec, "--tasks", task, "--limit", str(args.limit),
            "-w", str(tasks_dir.parent), "--out", str(out), "--cache", str(out.with_suffix(".sqlite")), "--no-progress"]


def outputs(run: Path) -> list[str]:
    return [json.loads(line)["output"] for line in (run / "predictions.jsonl").read_text().splitlines()]


def timed(procs: list[tuple[list[str], Path]], env: dict[str, str], together: bool) -> tuple[float, list[float]]:
    """Wall time of the whole way and of each process."""
    t0 = time.perf_counter()
    each: list[float] = []
    if together:
        started = [(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), time.perf_counter())
                   for argv, _ in procs]
        ends = [0.0] * len(started)
        for k, (p, _) in enumerate(started):
            _, err = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"eval failed: {err.decode()[-500:]}")
            ends[k] = time.perf_counter()
        each = [end - start for (_, start), end in zip(started, ends)]
    else:
        for argv, _ in procs:
            t = time.perf_counter()
            p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if p.returncode != 0:
                raise SystemExit(f"eval failed: {p.stderr.decode()[-500:]}")
            each.append(time.perf_counter() - t)
    return time.perf_counter() - t0, each


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--tasks", default="task57,task126", help="Two task ids, one per evaluation.")
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--threads", default=None)
    ap.add_argument("--tasks-dir", type=Path, default=None, help="A workspace's tasks/ folder holding the tasks.")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for both evaluations.")
    args = ap.parse_args()
    tasks = args.tasks.split(",")
    env = {**os.environ, **dict(kv.split("=", 1) for kv in args.env)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tasks_dir = args.tasks_dir or root / "ws" / "tasks"
        if args.tasks_dir is None:
            print(f"converting {', '.join(sorted({SOURCES[t] for t in tasks}))} into {tasks_dir} ...", flush=True)
            convert(tasks, tasks_dir)
        load0 = os.getloadavg()
        ways: dict[str, tuple[float, list[float], list[Path]]] = {}
        for name, together in (("sequence", False), ("pair", True)):
            runs = [root / name / t for t in tasks]
            total, each = timed([(eval_argv(args, t, tasks_dir, r), r) for t, r in zip(tasks, runs)], env, together)
            ways[name] = (total, each, runs)
        load1 = os.getloadavg()
        same = sum(outputs(a) == outputs(b) for a, b in zip(ways["sequence"][2], ways["pair"][2]))
        threads = args.threads or f"{usable_cpus()} (the CPUs each process may use)"
    print(f"model {args.model}, tasks {args.tasks}, {args.limit} items each, {os.cpu_count()} CPUs, torch threads "
          f"per process {threads}, load average {load0[0]:.2f} before, {load1[0]:.2f} after")
    for name, (total, each, _) in ways.items():
        print(f"  {name:<9} {total:7.1f} s in all; each eval " + ", ".join(f"{t:.1f} s" for t in each))
    print(f"  outputs of the pair equal the sequence's for {same}/{len(tasks)} evaluations")
    seq, pair = ways["sequence"][0], ways["pair"][0]
    print(f"  sequence / pair = {seq / pair:.2f} (above 1: running both at once finished sooner)")


if __name__ == "__main__":
    main()
