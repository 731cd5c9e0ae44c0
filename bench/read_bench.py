"""Streaming read and validation of a large task file.

Writes a synthetic task file with N instances (default 1,000,000) in both
layouts (official JSON and our JSONL), then, each in a fresh subprocess so the
peak RSS is its own, (1) streams every instance and (2) validates the file.
Prints instances/s and peak RSS per phase, and the file size for scale.

    python bench/read_bench.py [--n 1000000] [--dir /tmp/medsbench-read-bench]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

PHASES = {
    "stream": "from medsbench.tasks import iter_instances\nn = sum(1 for _ in iter_instances(PATH))",
    "validate": "from medsbench.tasks import validate_file\nprobs = validate_file(PATH)\nassert not [p for p in probs if p.level == 'error'], probs[:3]",
    "baseline: python -c pass": "pass",
}


def make_file(path: Path, n: int) -> None:
    from medsbench.tasks import write_task

    meta = {
        "Contributors": ["bench"], "Source": ["synthetic"], "URL": ["-"], "Categories": ["Question Answering"],
        "Reasoning": [], "Definition": ["Answer the question."], "Input_language": ["English"],
        "Output_language": ["English"], "Instruction_language": ["English"], "Domains": ["Medicine"],
        "Positive Examples": [], "Negative Examples": [],
    }
    body = "A 54-year-old patient presents with fever, cough and shortness of breath for three days; "
    insts = ({"id": f"q{i}", "input": f"{body}case number {i}. What is the most likely diagnosis?",
              "output": f"The right answer is {'ABCD'[i % 4]}: option {i % 97}."} for i in range(n))
    write_task(path, meta, insts)


def run_phase(code: str, path: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of ``code`` run in a fresh interpreter (its own ru_maxrss)."""
    script = f"PATH = {str(path)!r}\n{code}\nimport resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, int(out.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/medsbench-read-bench"))
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    secs, base_rss = run_phase(PHASES["baseline: python -c pass"], args.dir)
    print(f"interpreter baseline: {secs:.2f} s, peak RSS {base_rss / 1024:.0f} MiB")
    for layout in ("json", "jsonl"):
        path = args.dir / f"task9999_bench.test.{layout}"
        if not path.exists():
            t0 = time.perf_counter()
            make_file(path, args.n)
            print(f"wrote {path.name}: {path.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - t0:.1f} s")
        for phase in ("stream", "validate"):
            secs, rss = run_phase(PHASES[phase], path)
            print(f"{layout:5s} {phase:8s}: {args.n / secs:>10,.0f} instances/s ({secs:.1f} s), "
                  f"peak RSS {rss / 1024:.0f} MiB (file {path.stat().st_size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
