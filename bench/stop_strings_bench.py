"""Evidence for per-category stop strings (medsbench.prompts.protocols.MEDSBENCH_CATEGORY_STOP).

Two steps:

1. ``--generate OUT.jsonl --items task57:5:4,task106:5:4,...`` generates real outputs of a model (the
   embedded default, SmolLM2-135M-Instruct, unless ``--model``) under ``--protocol medsbench`` WITHOUT any
   stop string (``task:first:count`` picks items by position; ``--cap`` new tokens, 256 as the main job),
   one thread, and writes prediction rows with the raw outputs.
2. Given prediction files (rows without stops, or already cut at ``'\\nInput:'``, as a medsbench run writes
   them), cuts every output at ``'\\nInput:'`` (today's protocol stop) and at ``'\\nInput:'`` plus each
   candidate, re-scores both with medsbench.metrics, and prints per category: items, outputs the candidate
   cuts, generated tokens (to the first stop string, re-encoded with the model's tokenizer), tokens saved,
   the category metrics before/after (strict and reference) and every item whose score changed.

Run: python bench/stop_strings_bench.py --generate /tmp/gen.jsonl --items task106:0:4 --tasks-dir WS/tasks
     python bench/stop_strings_bench.py /tmp/gen.jsonl WS/runs/RUN/predictions.jsonl
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from medsbench.models.base import Request, cut_at_stop  # noqa: E402

BASE = ("\nInput:",)
CANDIDATES = ("\n\n", "\n\n\n", "###", "\nOutput:", "\n")


def generate(out: str, items_spec: str, tasks_dir: str, model: str, cap: int) -> None:
    import torch

    from medsbench.models import load_backend
    from medsbench.records.config import EvalConfig
    from medsbench.runs.plan import plan_task
    from medsbench.runs.run import prediction_row
    from medsbench.tasks.workspace import resolve_tasks

    torch.set_num_threads(1)
    plan = [(t, int(a), int(n)) for t, a, n in (x.split(":") for x in items_spec.split(","))]
    entries, files, _ = resolve_tasks(",".join(dict.fromkeys(t for t, _, _ in plan)), tasks_dir)
    by_id = {e.id: e for e in entries}
    backend = load_backend(model, threads=1)
    items = []
    for tid, start, n in plan:
        p = plan_task(by_id[tid], files[tid], backend, EvalConfig.from_flags(limit=start + n, max_new_tokens=cap),
                      definitions={})
        items += p.items[start : start + n]
    reqs = [Request(str(i), it.messages, it.prompt, it.max_new_tokens, stop=()) for i, it in enumerate(items)]
    t0 = time.perf_counter()
    with open(out, "w", encoding="utf-8") as fh:
        for resp in backend.iter_generate(reqs):
            fh.write(json.dumps(prediction_row(items[int(resp.id)], resp).model_dump(mode="json")) + "\n")
    print(f"{len(reqs)} items generated in {time.perf_counter() - t0:.0f} s")


def analyse(paths: list[str], tokenizer: str) -> None:
    from transformers import AutoTokenizer

    from medsbench.metrics import score_items, score_predictions

    tok = AutoTokenizer.from_pretrained(tokenizer)

    def variant(rows: list[dict], stops: tuple[str, ...]) -> tuple[list[dict], int]:
        out, total = [], 0
        for r in rows:
            text = r["output"]
            hits = [(i, s) for s in stops if (i := text.find(s)) >= 0]
            n = r["output_tokens"]
            if hits:
                i, s = min(hits)
                n = min(n, len(tok.encode(text[: i + len(s)], add_special_tokens=False)))
            total += n
            out.append({**r, "output": cut_at_stop(text, stops)[0], "output_tokens": n})
        return out, total

    by_cat: dict[str, list[dict]] = collections.defaultdict(list)
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                if r.get("output") is not None:
                    by_cat[r["category"]].append(r)
    for cat, rows in sorted(by_cat.items()):
        base, base_tokens = variant(rows, BASE)
        b_items, _, _ = score_items(base)
        before = score_predictions(base, bootstrap=0).categories[cat]
        tasks = ", ".join(sorted({r["task_id"] for r in rows}))
        print(f"\n== {cat}: {len(rows)} items ({tasks}); tokens with {BASE[0]!r} only: {base_tokens}")
        print(f"   before: strict {before.metrics} reference {before.reference}")
        for cand in CANDIDATES:
            cut, tokens = variant(rows, BASE + (cand,))
            c_items, _, _ = score_items(cut)
            changed = [
                (tid, bi.rows[j].id)
                for tid, bi in b_items.items()
                for j in range(len(bi.rows))
                if (bi.strict[j] != c_items[tid].strict[j]).any() or (bi.reference[j] != c_items[tid].reference[j]).any()
            ]
            after = score_predictions(cut, bootstrap=0).categories[cat]
            n_cut = sum(1 for r in base if cand in r["output"])
            saved = base_tokens - tokens
            print(f"   {cand!r:12} cuts {n_cut}/{len(rows)}, saved {saved} tokens ({100 * saved / max(base_tokens, 1):.1f}%), "
                  f"items changed {len(changed)}; after: strict {after.metrics} reference {after.reference}")
            for tid, iid in changed:
                print(f"      changed: {tid} {iid}")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("predictions", nargs="*")
    ap.add_argument("--generate", metavar="OUT")
    ap.add_argument("--items", default="task57:5:4,task122:0:4,task129:0:4,task1:5:3,task2:0:4,task3:0:4,task126:5:3,"
                    "task127:0:4,task128:0:4,task12:5:6,task106:5:4,task46:5:4,task114:5:4")
    ap.add_argument("--tasks-dir", default="medsbench-work/tasks")
    ap.add_argument("--model", default="default")
    ap.add_argument("--cap", type=int, default=256)
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the embedded default model)")
    args = ap.parse_args(argv)
    if args.generate:
        generate(args.generate, args.items, args.tasks_dir, args.model, args.cap)
    paths = args.predictions + ([args.generate] if args.generate else [])
    if paths:
        if args.tokenizer is None:
            from medsbench.models.default import default_model_dir

            args.tokenizer = str(default_model_dir())
        analyse(paths, args.tokenizer)


if __name__ == "__main__":
    main(sys.argv[1:])
