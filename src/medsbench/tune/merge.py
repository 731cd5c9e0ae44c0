"""Merge a LoRA adapter into its base model and save a standalone HF folder."""

from __future__ import annotations

from pathlib import Path

from medsbench.errors import MedsbenchError, require
from medsbench.fileio import read_json
from medsbench.models.training import read_training_record, write_training_record
from medsbench.tune.train import resolve_base


def merge(adapter_dir: str | Path, out: str | Path, base: str | None = None) -> Path:
    """``adapter_dir`` holds adapter_config.json (a `tune run --method lora` output or a checkpoint)."""
    peft = require("peft", "train", "merging LoRA adapters")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer


    adapter_dir, out = Path(adapter_dir), Path(out)
    if (adapter_dir / "adapter" / "adapter_config.json").is_file():  # a `tune run` output folder
        adapter_dir = adapter_dir / "adapter"
    cfg_path = adapter_dir / "adapter_config.json"
    if not cfg_path.is_file():
        raise MedsbenchError("not a LoRA adapter folder (no adapter_config.json)", where=str(adapter_dir))
    if out.exists() and any(out.iterdir()):
        raise MedsbenchError("output folder is not empty", where=str(out))
    adapter_cfg = read_json(cfg_path)
    base_path = resolve_base(base) if base else adapter_cfg.get("base_model_name_or_path")
    if not base_path:
        raise MedsbenchError("adapter records no base model; pass --base", where=str(cfg_path))
    if not Path(base_path).is_dir() and "/" not in str(base_path):
        raise MedsbenchError("base model not found", where=str(base_path))
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tok_src = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else Path(base_path)
    AutoTokenizer.from_pretrained(str(tok_src)).save_pretrained(str(out))
    info = read_training_record(adapter_dir)
    if info is not None:  # keep the record (and the template hash eval checks) with the merged weights
        write_training_record(out, {**info, "merged_from": str(adapter_dir.resolve())})
    for extra in ("README.md", "loss_curve.png", "metrics.jsonl", "metrics.csv"):
        if (adapter_dir / extra).is_file():
            (out / extra).write_bytes((adapter_dir / extra).read_bytes())
    return out
