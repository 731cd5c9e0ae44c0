"""Generation speed, one run, same prompts: the official one-at-a-time loop, lm-evaluation-harness,
the prompt forward passes alone (the floor), medsbench's hf backend (static batches, continuous
batching) and, when ``.venv-vllm`` exists, raw vLLM and medsbench's vllm backend.

    python bench/eval_bench.py [--workload mixed|medqa] [--protocol medsbench|official] [--n 128]
        [--tasks-dir DIR] [--threads N] [--batch-size 32] [--ways loop,lmeval,prefill,hf-static,hf,vllm]
        [--lmeval-python .venv-lmeval/bin/python] [--vllm-python .venv-vllm/bin/python] [--profile]

Prompts are planned by medsbench itself (:func:`medsbench.runs.plan.plan_task`, the embedded
SmolLM2-135M-Instruct's chat template) from the converted task files
(``medsbench data convert --all --raw ../shared/data/raw --out DIR``; built into a temporary folder
when ``--tasks-dir`` is not given), under ``--protocol``: its shots, demo pool, generation limit per
category and stop strings. They are written to one JSON file that every way reads (``texts``,
``item_max_new_tokens``, ``item_stops``; ``max_new_tokens`` is their largest limit, what vLLM gets).

* ``mixed`` (default): :data:`MIXED` -- MCQA (MedQA, MedMCQA), NER (BC5CDR chemical/disease,
  Species800), IE (PICO, ADE doses), summarization (MeQSum) and text classification (HoC), the
  first items of each task's test file, ``--n`` in all (128 by default), in the table's proportions;
* ``medqa``: the first ``--n`` MedQA (task57) items.

Ways (greedy, fp32, each item's own token limit and stop strings, end at the chat template's end of turn):

* ``loop``: tokenizer -> ``model.generate`` (``stop_strings`` when the item has some) -> decode, one item
  at a time (the official eval.py's way);
* ``lmeval``: lm-evaluation-harness ``HFLM.generate_until`` (``--lmeval-batch-size``, 32 as ours: its
  ``auto`` probes memory with 5 forward passes of 64 x max_length tokens, 8192 for SmolLM2, which a CPU
  cannot afford; the items' limits and stops as ``max_gen_toks``/``until``), in ``--lmeval-python``
  (``bash scripts/setup_lmeval.sh`` builds ``.venv-lmeval`` with lm-eval 0.4.13); skipped when there is none;
* ``prefill``: the prompt forward passes alone, one row at a time, no output: the floor of any way that
  computes every prompt token, so ``loop / prefill`` bounds the speed-up of batching without prefix reuse;
* ``hf-static``: medsbench's hf backend with static batches (``continuous=False``): length-sorted,
  finished rows pruned every 32 tokens; ``hf``: its defaults (continuous batching). Both get one request
  stream over all tasks, as a run does, and share prompt prefixes;
* ``vllm``: ``bench/vllm_bench.py --prompts`` in ``--vllm-python`` (``bash scripts/setup_vllm.sh``): raw
  ``LLM.generate`` vs the medsbench vllm backend on one engine (one limit for all items: the largest).

Each way is timed around its generation call only (model loading excluded; for ``loop`` the whole loop)
and runs in its own process. Prints items/s, generated tokens/s, the ratios to the loop and to lm-eval,
how many outputs equal the loop's (fp32: the hf backend must give the loop's text; other engines are
reported, never required to), the load average before and after each way and the torch threads.
``--profile`` runs the ``hf`` way once more under ``torch.profiler`` and prints where its time goes.

Measured: see the README's performance section (this machine is shared: quote ratios of one run, and
the load).
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
RAW = REPO.parent / "shared" / "data" / "raw"
# (task id, share of the items): MCQA 1/4, NER 1/4, IE 1/4, summarization 1/8, text classification 1/8
MIXED = (
    ("task57", 16), ("task122", 16),  # MCQA: MedQA (USMLE), MedMCQA
    ("task126", 11), ("task127", 11), ("task128", 10),  # NER: BC5CDR chemical, disease; Species800
    ("task1", 11), ("task3", 11), ("task29", 10),  # IE: PICO participants, outcomes; ADE doses
    ("task114", 16),  # summarization: MeQSum
    ("task106", 16),  # text classification: HoC
)


def build_items(workload: str, n: int, protocol: str, tasks_dir: Path, renderer) -> list[dict]:
    """[{task, category, text, max_new_tokens, stop}] planned as a run plans them."""
    from medsbench.records.config import EvalConfig
    from medsbench.runs.plan import plan_task
    from medsbench.tasks.workspace import resolve_tasks

    table = (("task57", 1),) if workload == "medqa" else MIXED
    total = sum(w for _, w in table)
    counts = [(tid, max(1, round(n * w / total))) for tid, w in table]
    counts[-1] = (counts[-1][0], max(1, n - sum(c for _, c in counts[:-1])))
    entries, files, _ = resolve_tasks(",".join(t for t, _ in counts), tasks_dir, validate=False)
    by_id = {e.id: e for e in entries}
    items: list[dict] = []
    for tid, count in counts:
        config = EvalConfig.from_flags(limit=count, seed=0, prompt_style="official", protocol=protocol)
        plan = plan_task(by_id[tid], files[tid], renderer, config, definitions={})
        for item in plan.items:
            if item.error:
                raise SystemExit(f"{tid}: {item.error}")
            items.append({"task": tid, "category": item.category, "text": item.text,
                          "max_new_tokens": item.max_new_tokens, "stop": list(item.stop)})
    return items


def ensure_tasks(tasks_dir: str | None, tmp: Path) -> Path:
    if tasks_dir:
        return Path(tasks_dir)
    out = tmp / "tasks"
    print(f"converting the raw data into {out} (medsbench data convert --all) ...", flush=True)
    subprocess.run([sys.executable, "-m", "medsbench", "data", "convert", "--all", "--raw", str(RAW), "--out", str(out)],
                   check=True, capture_output=True)
    return out


# -- ways ------------------------------------------------------------------------------------------

def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def timed(start: tuple[float, float]) -> dict:
    """Wall seconds and this process's CPU seconds (all threads) since ``start``: on a loaded machine the CPU
    seconds show the work done, the wall seconds what the load left of it."""
    return {"seconds": time.perf_counter() - start[0], "cpu_seconds": time.process_time() - start[1]}


def way_loop(spec: dict) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from medsbench.models.base import cut_at_stop

    tok = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32).eval()
    outputs, tokens = [], 0
    t0 = clock()
    for text, limit, stop in zip(spec["texts"], spec["item_max_new_tokens"], spec["item_stops"]):
        enc = tok(text, return_tensors="pt", add_special_tokens=False)
        extra = {"stop_strings": stop, "tokenizer": tok} if stop else {}
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=limit, do_sample=False, eos_token_id=spec["eos_ids"],
                                 pad_token_id=tok.pad_token_id or spec["eos_ids"][0], **extra)
        new = [t for t in out[0][enc["input_ids"].shape[1]:].tolist() if t not in spec["eos_ids"]]
        tokens += len(new)
        outputs.append(cut_at_stop(tok.decode(new, skip_special_tokens=True), stop)[0])
    return {**timed(t0), "outputs": outputs, "output_tokens": tokens}


def _hf_backend(spec: dict, continuous: bool):
    from medsbench.models.hf import HFBackend

    return HFBackend(spec["model"], batch_size=spec["batch_size"], continuous=continuous, threads=spec["threads"])


def _hf_requests(spec: dict):
    from medsbench.models.base import Request

    return [Request(str(i), prompt=t, max_new_tokens=m, stop=tuple(s))
            for i, (t, m, s) in enumerate(zip(spec["texts"], spec["item_max_new_tokens"], spec["item_stops"]))]


def _hf_run(backend, spec: dict) -> tuple[dict, list]:
    reqs = _hf_requests(spec)
    t0 = clock()
    by_id = {r.id: r for r in backend.iter_generate(reqs)}  # one request stream over all tasks, as a run does
    return timed(t0), [by_id[q.id] for q in reqs]


def way_hf(spec: dict, continuous: bool) -> dict:
    backend = _hf_backend(spec, continuous)
    times, resp = _hf_run(backend, spec)
    return {**times, "outputs": [r.text for r in resp], "output_tokens": sum(r.output_tokens or 0 for r in resp),
            "prefix_tokens_shared": backend.prefix_tokens_shared, "threads": backend.threads,
            "decode_work": backend.decode_work,
            "prompt_tokens": sum(r.prompt_tokens or 0 for r in resp)}


def way_profile(spec: dict) -> dict:
    """The ``hf`` way under torch.profiler: operator totals, and the split between prompt and decode passes."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    backend = _hf_backend(spec, True)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        times, _ = _hf_run(backend, spec)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)
    return {**times, "outputs": None, "table": table, "threads": torch.get_num_threads()}


def way_prefill(spec: dict) -> dict:
    """The prompt forward passes alone, one row at a time, no prefix reuse: what every exact way spends
    at least (on a CPU they are compute bound), so ``loop / prefill`` bounds any speed-up without reuse."""
    from medsbench.models.hf import HFBackend

    backend = HFBackend(spec["model"], batch_size=1, threads=spec["threads"])
    rows = [backend._encode(t) for t in spec["texts"]]
    t0 = clock()
    for r in rows:
        backend._forward(r)
    return {**timed(t0), "outputs": None, "prompt_tokens": sum(map(len, rows))}


def way_lmeval(spec: dict) -> dict:
    """lm-evaluation-harness's own HF model class and generate_until (runs in an interpreter that has lm_eval)."""
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    torch.set_num_threads(spec["threads"])
    size = spec["lmeval_batch_size"]
    lm = HFLM(pretrained=spec["model"], batch_size=int(size) if str(size).isdigit() else size, dtype="float32", device="cpu")
    eos = lm.tokenizer.decode(spec["eos_ids"][0])
    reqs = [Instance(request_type="generate_until", doc={}, idx=i,
                     arguments=(t, {"until": [eos, *s], "max_gen_toks": m, "do_sample": False}))
            for i, (t, m, s) in enumerate(zip(spec["texts"], spec["item_max_new_tokens"], spec["item_stops"]))]
    t0 = clock()
    outputs = lm.generate_until(reqs, disable_tqdm=True)
    times = timed(t0)
    tokens = sum(len(lm.tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs)  # re-tokenized
    return {**times, "outputs": outputs, "output_tokens": tokens, "batch_size": str(lm.batch_size)}


def run_subprocess(python: str, args: list[str]) -> dict | None:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    try:
        proc = subprocess.run([python, *args, "--result", str(out)], cwd=REPO, text=True, capture_output=True)
        if proc.returncode != 0:
            print(f"  (failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})")
            return None
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


WORKERS = {"loop": way_loop, "lmeval": way_lmeval, "prefill": way_prefill, "profile": way_profile,
           "hf": lambda s: way_hf(s, True), "hf-static": lambda s: way_hf(s, False)}


def run_way(way: str, spec_path: Path, python: str) -> dict | None:
    before = os.getloadavg()[0]
    res = run_subprocess(python, [__file__, "--worker", way, "--spec", str(spec_path)])
    if res is not None:
        res["load"] = (before, os.getloadavg()[0])
    return res


def run_vllm(spec_path: Path, python: str) -> dict[str, dict]:
    before = os.getloadavg()[0]
    res = run_subprocess(python, ["bench/vllm_bench.py", "--prompts", str(spec_path), "--repeats", "1"])
    out = {}
    for name in ("vllm-raw", "vllm") if res else ():
        out[name] = {**res[name], "load": (before, os.getloadavg()[0])}
    return out


def report(results: dict[str, dict], n: int) -> list[str]:
    """One line per way: items/s, generated tokens/s, ratios to the loop and lm-eval, outputs equal to the loop's."""
    base, lme = results.get("loop"), results.get("lmeval")
    lines = [f"{'way':10s} {'items/s':>8s} {'tok/s':>7s} {'seconds':>8s} {'CPU s':>7s} {'x loop':>7s} {'x lm-eval':>9s}  "
             f"{'= loop':>7s}  load before/after"]
    for way, res in results.items():
        secs = res["seconds"]
        toks = f"{res['output_tokens'] / secs:7.1f}" if res.get("output_tokens") is not None else f"{'-':>7s}"
        x_loop = f"{base['seconds'] / secs:7.2f}" if base else f"{'-':>7s}"
        x_lme = f"{lme['seconds'] / secs:9.2f}" if lme and way != "prefill" else f"{'-':>9s}"
        same = "-"
        if base and res.get("outputs") is not None:
            same = f"{sum(a.strip() == b.strip() for a, b in zip(res['outputs'], base['outputs']))}/{n}"
        load = "{:.2f}/{:.2f}".format(*res["load"]) if "load" in res else "-"
        cpu = f"{res['cpu_seconds']:7.1f}" if "cpu_seconds" in res else f"{'-':>7s}"
        lines.append(f"{way:10s} {n / secs:8.3f} {toks} {secs:8.1f} {cpu} {x_loop} {x_lme}  {same:>7s}  {load}")
    if "vllm" in results and "vllm-raw" in results:
        lines.append(f"vllm backend at {100 * results['vllm-raw']['seconds'] / results['vllm']['seconds']:.1f}% "
                     "of raw vLLM's speed (vLLM ways: one token limit for all items, the largest)")
    if base and "prefill" in results:
        lines.append(f"prefill = the prompt forward passes alone: {base['seconds'] / results['prefill']['seconds']:.2f}x "
                     "the loop is the ceiling of any way that computes every prompt token")
    return lines


def bench_protocol(args, protocol: str, tasks_dir: Path, tmp: Path, pythons: dict[str, str | None]) -> dict:
    from medsbench.models.default import default_model_dir
    from medsbench.models.hf import HFBackend

    model = str(default_model_dir())
    renderer = HFBackend(model, batch_size=1, threads=args.threads)
    items = build_items(args.workload, args.n, protocol, tasks_dir, renderer)
    lengths = sorted(len(renderer._encode(it["text"])) for it in items)
    spec = {"model": model, "texts": [it["text"] for it in items], "tasks": [it["task"] for it in items],
            "item_max_new_tokens": [it["max_new_tokens"] for it in items], "item_stops": [it["stop"] for it in items],
            "max_new_tokens": max(it["max_new_tokens"] for it in items), "eos_ids": renderer.eos_ids,
            "threads": args.threads, "batch_size": args.batch_size, "lmeval_batch_size": args.lmeval_batch_size}
    del renderer
    cats: dict[str, int] = {}
    for it in items:
        cats[it["category"]] = cats.get(it["category"], 0) + 1
    print(f"\n== workload {args.workload}, protocol {protocol}: {len(items)} prompts "
          f"({', '.join(f'{c} {k}' for c, k in cats.items())}), prompt tokens median {lengths[len(lengths) // 2]} "
          f"max {lengths[-1]} total {sum(lengths)}, new-token limits {sorted(set(spec['item_max_new_tokens']))}, "
          f"fp32, torch threads {args.threads}, batch {args.batch_size}, lm-eval batch {args.lmeval_batch_size}, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    spec_path = tmp / f"spec-{protocol}.json"
    spec_path.write_text(json.dumps(spec))
    results: dict[str, dict] = {}
    for way in args.ways.split(","):
        if way == "vllm":
            if not Path(args.vllm_python).is_file():
                print("vllm: skipped (no vLLM interpreter; bash scripts/setup_vllm.sh)")
                continue
            results.update(run_vllm(spec_path, args.vllm_python))
        else:
            python = pythons.get(way) or sys.executable
            if way == "lmeval" and pythons.get("lmeval") is None:
                print("lmeval: skipped (no interpreter with lm_eval; bash scripts/setup_lmeval.sh)")
                continue
            res = run_way(way, spec_path, python)
            if res is None:
                continue
            results[way] = res
        shown = results.get(way) or results.get("vllm")
        if shown:
            extra = f" lm-eval batch {shown['batch_size']}" if "batch_size" in shown else ""
            if "prefix_tokens_shared" in shown:
                extra += f" prefix tokens shared {shown['prefix_tokens_shared']}/{shown['prompt_tokens']}"
            if "decode_work" in shown:  # the same counts on any machine, loaded or not
                work = shown["decode_work"]
                extra += (f"; decode: {work['steps']} steps, {work['row_steps']} row-steps for {shown['output_tokens']} "
                          f"tokens, {work['kv_positions'] / 1e6:.1f}M KV positions attended")
            cpu = f" (CPU {shown['cpu_seconds']:.0f} s)" if "cpu_seconds" in shown else ""
            print(f"  {way:10s} {len(items) / shown['seconds']:6.3f} items/s {shown['seconds']:7.1f} s{cpu}{extra}", flush=True)
    print()
    print("\n".join(report(results, len(items))), flush=True)
    if args.profile:
        prof = run_way("profile", spec_path, sys.executable)
        if prof:
            print(f"\nprofile of the hf way ({prof['seconds']:.1f} s, CPU {prof['cpu_seconds']:.1f} s under the profiler, "
                  f"threads {prof['threads']}):")
            print(prof["table"])
    return {"protocol": protocol, "items": len(items), "categories": cats, "prompt_tokens": sum(lengths),
            "results": {k: {x: y for x, y in v.items() if x != "outputs"} for k, v in results.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", choices=("mixed", "medqa"), default="mixed")
    ap.add_argument("--protocol", default="medsbench,official", help="one or more of medsbench, official, paper")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--tasks-dir", default=None, help="converted task files (default: converted into a temporary folder)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the CPUs this process may use)")
    ap.add_argument("--batch-size", type=int, default=32, help="hf backend batch size (its default on CPU)")
    ap.add_argument("--lmeval-batch-size", default="32", help="32 (as ours); auto probes with 5 forward passes of "
                    "64 x max_length tokens (8192 for SmolLM2): impractical on a CPU")
    ap.add_argument("--ways", default="loop,lmeval,prefill,hf-static,hf,vllm")
    ap.add_argument("--lmeval-python", default=None, help="interpreter with lm_eval (default: .venv-lmeval, else this one)")
    ap.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    ap.add_argument("--profile", action="store_true", help="also profile the hf way (torch.profiler)")
    ap.add_argument("--json", default=None, help="write the numbers (no outputs) to this file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: run one way from --spec
    ap.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:  # one way in this (possibly other) interpreter
        spec = json.loads(Path(args.spec).read_text())
        import torch

        torch.set_num_threads(spec["threads"])
        Path(args.result).write_text(json.dumps(WORKERS[args.worker](spec)))
        return

    from medsbench.models.cpus import usable_cpus

    args.threads = args.threads or usable_cpus()

    lmeval_python = args.lmeval_python
    if lmeval_python is None:
        venv = REPO / ".venv-lmeval" / "bin" / "python"
        if venv.is_file():
            lmeval_python = str(venv)
        else:
            try:
                import lm_eval  # noqa: F401

                lmeval_python = sys.executable
            except ImportError:
                pass
    print(f"{os.cpu_count()} CPUs, {usable_cpus()} usable by this process, uptime load {os.getloadavg()}", flush=True)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tasks_dir = ensure_tasks(args.tasks_dir, Path(tmp))
        for protocol in args.protocol.split(","):
            out.append(bench_protocol(args, protocol.strip(), tasks_dir, Path(tmp), {"lmeval": lmeval_python}))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"load average at the end {os.getloadavg()} (other jobs on the machine slow every number)", file=sys.stderr)


if __name__ == "__main__":
    main()
