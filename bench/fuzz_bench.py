"""A larger seeded fuzzing budget than the test suite: mutated task files, prediction files and
submissions through the CLI; counts inputs tried and failures (tracebacks or exits without an
``error:`` line). Usage: python bench/fuzz_bench.py [N_PER_KIND] [SEED]"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzzing import SEEDS, check_clean_failure, commands_for, mutate_file_text, run_cli, write_bench_tasks  # noqa: E402


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    rng = random.Random(seed)
    tried = calls = 0
    bad: list[str] = []
    codes: dict[int, int] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_bench_tasks(work)
        for name in sorted(SEEDS):
            for _ in range(n):
                text = mutate_file_text(name, rng)
                path = work / "in" / name.replace(".", "-") / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(text.encode("utf-8", "surrogatepass"))
                tried += 1
                for argv in commands_for(name, path, work):
                    calls += 1
                    try:
                        code, err = run_cli(argv)
                        codes[code] = codes.get(code, 0) + 1
                        check_clean_failure(code, err, argv)
                    except BaseException as exc:  # noqa: BLE001 - counting every escape is the point
                        bad.append(f"{name} {argv[:2]}: {type(exc).__name__}: {str(exc)[:200]}")
    secs = time.perf_counter() - t0
    print(f"inputs tried: {tried} ({n} per kind x {len(SEEDS)} kinds), CLI calls: {calls}, {secs:.1f} s")
    print(f"exit codes: {dict(sorted(codes.items()))}")
    print(f"failures (traceback or no error line): {len(bad)}")
    for line in bad[:20]:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
