"""Packing vs plain padding on the same mixture: share of non-padding tokens and training tokens/s.

    python bench/tune_bench.py [--mixture mixtures/NAME] [--base default|PATH] [--steps 6] [--batch 4] [--max-length 1024]

Without --mixture, a mixture of the realistic test rows (tests/test_tune.py) is written to a temp folder.
Both modes run the same optimizer steps over the same tokenised examples (LoRA, fp32, 1 thread), through
TRL's own collator: packing = BFD rows of max_length with position_ids restarting per example
(padding-free); padding = batches of `batch` examples padded to the longest, length-grouped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_v] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mixture")
    ap.add_argument("--base", default="default")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from medsbench.tune.config import load_tune_config
    from medsbench.tune.data import load_mixture, tokenize_mixture
    from medsbench.tune.train import lora_config, resolve_base

    torch.set_num_threads(a.threads)
    mixture = a.mixture
    if mixture is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_tune import make_rows, write_mixture

        mixture = write_mixture(Path(tempfile.mkdtemp()) / "bench-mix", make_rows(400, shots=1))
    base = resolve_base(a.base)
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    ds = tokenize_mixture(load_mixture(mixture), tok, a.max_length)
    lengths = [len(x) for x in ds["input_ids"]]
    print(f"mixture {mixture}: {len(ds)} examples, mean {sum(lengths) / len(lengths):.0f} tokens, "
          f"max {max(lengths)}; base {base}")

    cfg = load_tune_config("cpu_small_lora")
    # Packing: BFD rows, each a padding-free "batch" of examples.
    packed = pack_dataset(ds.select_columns(["input_ids", "labels"]), a.max_length, "bfd", {})
    pack_collate = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)
    pad_collate = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)
    # Padding: examples sorted into length groups (what group_by_length approximates), then padded.
    order = sorted(range(len(ds)), key=lambda i: lengths[i])
    rows = [ds[i] for i in order]

    def batches(mode: str):
        if mode == "packing":
            # one packed row holds ~max_length tokens; `batch` rows -> flattened into one padding-free sequence
            for s in range(0, len(packed), a.batch):
                yield pack_collate([packed[j] for j in range(s, min(s + a.batch, len(packed)))])
        else:
            per = max(1, a.batch * a.max_length // max(1, int(sum(lengths) / len(lengths))))
            for s in range(0, len(rows), per):
                yield pad_collate([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows[s:s + per]])

    results = {}
    for mode in ("padding", "packing"):
        real = total = 0
        for b in batches(mode):  # whole epoch: share of real tokens
            total += b["input_ids"].numel()
            real += int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel()
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="sdpa")
        model = get_peft_model(model, lora_config(model, cfg))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        model.train()
        seen = slots = 0
        it = batches(mode)
        next(it)  # warm-up batch skipped from timing
        t0 = time.perf_counter()
        for _ in range(a.steps):
            b = next(it, None)
            if b is None:
                break
            inputs = {k: v for k, v in b.items() if k in ("input_ids", "labels", "attention_mask", "position_ids")}
            model(**inputs, use_cache=False).loss.backward()
            opt.step()
            opt.zero_grad()
            slots += b["input_ids"].numel()
            seen += int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel()
        dt = time.perf_counter() - t0
        results[mode] = (real / total, seen / dt, slots / dt)
        print(f"{mode:8s}: non-padding share {real / total:6.1%} | real tokens/s {seen / dt:7.0f} | "
              f"slots/s {slots / dt:7.0f} | {a.steps} steps in {dt:.1f}s")
    ratio = results["packing"][1] / results["padding"][1]
    print(f"packing vs padding: {ratio:.2f}x real tokens/s; target >= 95% non-padding with packing: "
          f"{'met' if results['packing'][0] >= 0.95 else 'NOT met'}")


if __name__ == "__main__":
    main()
