"""MedS-Ins build throughput and memory on synthetic task files.

    python bench/ins_bench.py [--sizes 100000,1000000] [--near-sizes 100000] [--tasks 20]

For each size, synthetic train task files (JSONL layout, ~45-word inputs) and a
fixed benchmark test set (20 x 500 instances) are generated once; every build
then runs in its own subprocess, which reports wall time and peak RSS
(``resource.getrusage``). Modes:

* ``base``:  exact dedupe, prompts, balance, Parquet export, card (no test set, no near-dup);
* ``ngram``: base + exact-input and 13-gram decontamination against the test set;
* ``near``:  ngram + MinHash near-dup dedupe and near-dup decontamination.

Instances/s counts input instances per second of one process (one core).
Builds use the natural mix (every clean instance once), not the balanced default.

    python bench/ins_bench.py --real TASKS [--workers 1,2] [--repeat 2] [--baseline-src DIR]

The default mixture over every train split in TASKS (``medsbench data convert --all
--out TASKS``), decontaminated against TASKS' test splits, once per worker count (each
build in its own subprocess, alternating, ``--repeat`` rounds): wall seconds, input
instances/s, the speedup of N workers over 1 in the same run, peak RSS of the
building process and of the whole process tree (workers included, sampled), and
whether every output file is byte-identical across worker counts. ``--baseline-src``
runs the same build with the ``src`` folder of another checkout (e.g. the previous
commit) in the same rounds, for a before/after ratio. The load average is printed
before and after: the machine is shared.

    python bench/ins_bench.py --pull-gb 2

``medsbench ins pull --from DIR`` on one synthetic released MedS-Ins file of about that
many GB (a Super-NaturalInstructions object, generated under /tmp and deleted after):
instances/s, MB/s and peak RSS of the importing process, then the same command again
(the file is unchanged, so only its sha256 is computed).

    python bench/ins_bench.py --cjk TASKS [--sample 12]

Decontamination false positives in Chinese and Japanese on converted real task
files (``medsbench data convert --all --out TASKS``): share of IgakuQA train items
(task59, ja) flagged against the IgakuQA test split, and of one seeded half of the
MedQA-MCMLE zh test split (task58; no train split exists) flagged against the
other half, for the pre-CJK behaviour (13-grams over single characters) and the
script-aware defaults, by reason, with a seeded sample of flagged items and the
longest text they share with a test input, to judge by eye.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "patient presents with acute chronic pain fever cough dyspnea chest abdominal renal hepatic cardiac pulmonary "
    "infection sepsis pneumonia diabetes hypertension insulin metformin aspirin heparin warfarin dose mg daily "
    "history examination reveals elevated decreased serum sodium potassium creatinine glucose hemoglobin platelet "
    "count imaging shows opacity effusion nodule mass lesion biopsy carcinoma lymphoma therapy surgery resection "
    "follow-up weeks months years male female elderly child mother father smoker alcohol allergy penicillin rash"
).split()


def make_tasks(root: Path, n: int, n_tasks: int, seed: int = 0) -> None:
    from medsbench.sources.registry import TaskSpec, task_meta
    from medsbench.tasks.format import write_task

    rng = random.Random(seed)
    per = n // n_tasks
    for t in range(n_tasks):
        tid = f"task{9000 + t}"
        spec = TaskSpec(task_id=tid, slug="synth", definition=f"Answer the clinical question (synthetic task {t}).",
                        source=f"Synth{t % 7}", url="-", license="CC0", category="Question Answering" if t % 2 else "Diagnosis",
                        language="en")
        meta = task_meta(spec, "train", "synthetic")
        count = per + (1 if t < n % n_tasks else 0)

        def rows(count=count, t=t):
            for i in range(count):
                words = rng.choices(WORDS, k=45)
                yield {"id": i, "input": f"Case {t}-{i}: " + " ".join(words), "output": rng.choice(WORDS)}

        write_task(root / f"{tid}_synth.train.jsonl", meta, rows())


def make_tests(root: Path) -> None:
    from medsbench.sources.registry import TaskSpec, task_meta
    from medsbench.tasks.format import write_task

    rng = random.Random(99)
    for t in range(20):
        tid = f"task{8000 + t}"
        meta = task_meta(TaskSpec(task_id=tid, slug="bench", definition="Synthetic benchmark task.", source="SynthTest", url="-",
                                  license="CC0"), "test", "synthetic")
        write_task(root / f"{tid}_bench.test.json", meta,
                   [{"id": i, "input": " ".join(rng.choices(WORDS, k=45)), "output": "x"} for i in range(500)])


CHILD = r"""
import json, resource, sys, time
from medsbench.ins import InsConfig, build_mixture
import medsbench.ins.build, pyarrow, datasketch, numpy, matplotlib  # import cost outside the timing
tasks, bench, out, mode = sys.argv[1:5]
cfg = InsConfig().updated(**{"dedupe.near": mode == "near", "decontam.near": mode == "near", "decontam.enabled": mode != "base",
                             "balance.cap": None, "balance.temperature": 1.0, "balance.max_repeats": 1})
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
s = build_mixture([tasks], out, cfg, bench_tasks=[bench] if mode != "base" else None, workers=1)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "input": s["totals"]["input"], "examples": s["totals"]["examples"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "import_rss_mb": base_rss / 1024,
                  "indexes_mb": {k: round(v / 2**20, 2) for k, v in s["indexes_bytes"].items()},
                  "near_dup": s["totals"]["near_duplicate"], "contaminated": s["totals"]["contaminated"]}))
"""


def run(tasks: Path, bench: Path, out: Path, mode: str) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, str(tasks), str(bench), str(out), mode],
                         capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def flagged(train: list, test_files: list[Path], cfg) -> tuple[list[int], dict[str, int]]:
    """Indexes of ``train`` instances the decontamination of ``cfg`` drops, and counts by reason."""
    from collections import Counter

    import numpy as np

    from medsbench.ins.decontam import REASONS, TestIndex
    from medsbench.ins.dedupe import Signer

    index = TestIndex.build(test_files, cfg, Signer(num_perm=128, shingle=5) if cfg.near else None)
    reason, _ = index.check_texts([i.input for i in train])
    hits = [int(i) for i in np.nonzero(reason >= 0)[0]]
    return hits, dict(Counter(REASONS[reason[i]] for i in hits))


def cjk_report(tasks: Path, sample: int) -> None:
    import difflib

    from medsbench.ins.config import DecontamConfig
    from medsbench.sources.registry import TaskSpec, task_meta
    from medsbench.tasks.format import iter_instances, read_meta, write_task

    def one(path: Path) -> Path:
        found = sorted(tasks.glob(path.name))
        if not found:
            raise SystemExit(f"{tasks / path.name} not found: run medsbench data convert --all --out {tasks}")
        return found[0]

    with tempfile.TemporaryDirectory(prefix="ins-cjk-") as tmp:
        tmp = Path(tmp)
        ja_train = list(iter_instances(one(Path("task59_*.train.json"))))
        ja_test = one(Path("task59_*.test.json"))
        zh = one(Path("task58_*.test.json"))
        items = list(iter_instances(zh))
        order = list(range(len(items)))
        random.Random(0).shuffle(order)
        half = len(order) // 2
        meta = read_meta(zh)
        zh_test = tmp / "task58_half.test.json"
        write_task(zh_test, {**meta, **task_meta(TaskSpec(task_id="task58", slug="half", definition=meta["Definition"][0],
                                                           source="MedQA-MCMLE half B", url="-", license="MIT"),
                                                  "test", "seeded halves")},
                   [{"id": items[i].id, "input": items[i].input, "output": items[i].output} for i in order[half:]])
        cases = {"ja: IgakuQA train vs test": (ja_train, [ja_test]),
                 "zh: MedQA-MCMLE half A vs half B": ([items[i] for i in order[:half]], [zh_test])}
        configs = {"before (13-grams over characters)": DecontamConfig(ngram_han=13, ngram_kana=13),
                   "after (script-aware defaults)": DecontamConfig()}
        for name, (train, tests) in cases.items():
            test_inputs = [i.input for p in tests for i in iter_instances(p)]
            for cname, cfg in configs.items():
                hits, reasons = flagged(train, tests, cfg)
                print(f"{name}, {cname}: {len(hits)}/{len(train)} flagged = {100 * len(hits) / len(train):.1f}% {reasons}")
                rng = random.Random(1)
                for i in rng.sample(hits, min(sample, len(hits))):
                    text = train[i].input
                    best = max(test_inputs, key=lambda x: difflib.SequenceMatcher(None, text, x, autojunk=False).find_longest_match().size)
                    m = difflib.SequenceMatcher(None, text, best, autojunk=False).find_longest_match()
                    print(f"  - {train[i].id}: longest text shared with a test input ({m.size} chars): {text[m.a:m.a + m.size]!r}")


CHILD_REAL = r"""
import json, os, resource, sys, threading, time
tasks, out, workers = sys.argv[1:4]
from medsbench.ins import build_mixture
import medsbench.ins.build, pyarrow, numpy, matplotlib  # import cost outside the timing
peak = {"tree": 0}
cpu = {}  # pid -> last seen user + system seconds of every process of the tree but this one
def sample():
    try:
        import psutil
    except ImportError:
        return
    me = psutil.Process()
    while True:
        total = me.memory_info().rss
        for p in me.children(recursive=True):
            try:
                total += p.memory_info().rss
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        peak["tree"] = max(peak["tree"], total)
        time.sleep(0.1)
threading.Thread(target=sample, daemon=True).start()
kw = {} if workers == "baseline" else {"workers": int(workers)}
def cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0 = cpu_self()
t = time.perf_counter()
s = build_mixture([tasks], out, bench_tasks=[tasks], **kw)
dt = time.perf_counter() - t
main_cpu = cpu_self() - c0
print(json.dumps({"seconds": dt, "input": s["totals"]["input"], "examples": s["totals"]["examples"],
                  "main_cpu": main_cpu, "workers_cpu": sum(cpu.values()),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "tree_mb": peak["tree"] / 2**20}))
"""


def _tree(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".medsbench.lock"}


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def real_report(tasks: Path, workers: list[int], repeat: int, baseline: Path | None) -> None:
    import os
    import statistics

    print(f"start: {_load()}", flush=True)
    runs: dict[str, list[dict]] = {}
    trees: dict[str, dict[str, str]] = {}
    labels = (["baseline"] if baseline else []) + [str(w) for w in workers]
    with tempfile.TemporaryDirectory(prefix="ins-real-") as tmp:
        for rnd in range(repeat):
            for label in labels:
                out = Path(tmp) / label / "mix"
                src = str(baseline) if label == "baseline" else str(Path(__file__).resolve().parents[1] / "src")
                env = {**os.environ, "PYTHONPATH": src}
                res = subprocess.run([sys.executable, "-c", CHILD_REAL, str(tasks), str(out), label],
                                     capture_output=True, text=True, check=False, env=env)
                if res.returncode:
                    raise SystemExit(res.stderr)
                r = json.loads(res.stdout.strip().splitlines()[-1])
                runs.setdefault(label, []).append(r)
                if label != "baseline":
                    trees[label] = _tree(out)
                print(f"round {rnd + 1} {'workers=' + label if label != 'baseline' else 'baseline':>10}: {r['seconds']:7.1f}s "
                      f"{r['input'] / r['seconds']:8.0f} inst/s  CPU {r['main_cpu']:.1f}s building process + "
                      f"{r['workers_cpu']:.1f}s workers  peak RSS {r['rss_mb']:.0f} MB (process tree {r['tree_mb']:.0f} MB)",
                      flush=True)
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    one = med[str(workers[0])]
    for label in labels:
        line = f"median {label:>8}: {med[label]:.1f}s, {runs[label][0]['input'] / med[label]:.0f} inst/s"
        if label != str(workers[0]):
            line += f", {one / med[label]:.2f}x workers={workers[0]}"
        print(line)
    same = all(trees[str(w)] == trees[str(workers[0])] for w in workers)
    print(f"outputs byte-identical across workers {','.join(map(str, workers))}: {same} ({len(trees[str(workers[0])])} files)")
    print(f"end: {_load()}")


def make_release_file(path: Path, gb: float, seed: int = 0) -> int:
    """One synthetic released task file of about ``gb`` GB, written streaming; returns its instances."""
    import orjson

    rng = random.Random(seed)
    meta = {"Contributors": ["synthetic"], "Source": ["synthetic"], "URL": [], "Categories": ["Explanation"], "Reasoning": [],
            "Definition": ["Explain the code."], "Input_language": ["English"], "Output_language": ["English"],
            "Instruction_language": ["English"], "Domains": ["Medicine"], "Positive Examples": [], "Negative Examples": []}
    target, n = int(gb * 2**30), 0
    with open(path, "wb") as fh:
        fh.write(orjson.dumps(meta)[:-1] + b',"Instances":[')
        while fh.tell() < target:
            row = {"id": f"s{n}", "input": " ".join(rng.choices(WORDS, k=120)), "output": [" ".join(rng.choices(WORDS, k=60))]}
            fh.write((b"," if n else b"") + orjson.dumps(row))
            n += 1
        fh.write(b"]}")
    return n


def pull_report(gb: float) -> None:
    import os
    import resource
    import shutil

    root = Path(tempfile.mkdtemp(prefix="ins-pull-", dir="/tmp"))
    try:
        rel = root / "rel"
        rel.mkdir()
        t0 = time.perf_counter()
        n = make_release_file(rel / "task115_icd10_code_explanation.json", gb)
        size = (rel / "task115_icd10_code_explanation.json").stat().st_size
        print(f"generated {n} instances, {size / 2**30:.2f} GB in {time.perf_counter() - t0:.0f}s; {_load()}", flush=True)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        for label in ("import", "rerun"):
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            before, cpu0 = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "medsbench.cli", "ins", "pull", "--from", str(rel), "--out", str(root / "out")],
                                 capture_output=True, text=True, env=env, check=False)
            dt = time.perf_counter() - t0
            if res.returncode:
                raise SystemExit(res.stderr)
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            rss, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu0
            print(f"{label}: {dt:.1f}s ({cpu:.1f}s CPU), {n / dt:.0f} instances/s, {size / 2**20 / dt:.0f} MB/s, peak RSS "
                  f"{rss / 1024:.0f} MB{' (at least: an earlier child may hold the maximum)' if rss == before else ''}", flush=True)
        print(f"end: {_load()}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--near-sizes", default="100000")
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--cjk", type=Path, help="converted task folder: measure zh/ja decontamination false positives")
    ap.add_argument("--sample", type=int, default=12)
    ap.add_argument("--real", type=Path, help="converted task folder: build the default mixture of all its train splits")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--baseline-src", type=Path, help="src folder of another checkout, built in the same rounds")
    ap.add_argument("--pull-gb", type=float, help="measure ins pull on a synthetic released file of this many GB")
    args = ap.parse_args()
    if args.pull_gb:
        pull_report(args.pull_gb)
        return
    if args.real:
        real_report(args.real, [int(w) for w in args.workers.split(",")], args.repeat, args.baseline_src)
        return
    if args.cjk:
        cjk_report(args.cjk, args.sample)
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    near = {int(x) for x in args.near_sizes.split(",") if x}
    results: dict[tuple[int, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="ins-bench-") as tmp:
        tmp = Path(tmp)
        make_tests(tmp / "bench")
        for n in sizes:
            t0 = time.perf_counter()
            make_tasks(tmp / f"tasks{n}", n, args.tasks)
            print(f"generated {n} instances in {time.perf_counter() - t0:.1f}s", flush=True)
            for mode in ("base", "ngram", "near"):
                if mode == "near" and n not in near:
                    continue
                r = run(tmp / f"tasks{n}", tmp / "bench", tmp / f"mix{n}{mode}", mode)
                results[(n, mode)] = r
                print(f"n={n:>8} {mode:>5}: {r['input'] / r['seconds']:>8.0f} inst/s  {r['seconds']:6.1f}s  "
                      f"peak RSS {r['rss_mb']:7.1f} MB (after imports {r['import_rss_mb']:.0f} MB)  indexes {r['indexes_mb']}  "
                      f"near-dup {r['near_dup']} contaminated {r['contaminated']}", flush=True)
    if len(sizes) >= 2:
        a, b = sizes[0], sizes[-1]
        for mode in ("base", "ngram"):
            if (a, mode) in results and (b, mode) in results:
                ra, rb = results[(a, mode)], results[(b, mode)]
                print(f"{mode}: RSS({b}) / RSS({a}) = {rb['rss_mb'] / ra['rss_mb']:.2f}; "
                      f"throughput {ra['input'] / ra['seconds']:.0f} -> {rb['input'] / rb['seconds']:.0f} inst/s")
    for n in sorted(near):
        if (n, "base") in results and (n, "near") in results:
            rb, rn, rg = results[(n, "base")], results[(n, "near")], results[(n, "ngram")]
            print(f"n={n}: 13-gram decontam costs {rg['seconds'] - rb['seconds']:.1f}s, near-dup search "
                  f"{rn['seconds'] - rg['seconds']:.1f}s on top of the base {rb['seconds']:.1f}s")


if __name__ == "__main__":
    main()
