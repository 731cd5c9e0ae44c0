"""Instruction tuning on TRL's SFTTrainer: LoRA or full, assistant-only loss, packing, exact resume.

Layout of ``--out`` (models/NAME)::

    model.safetensors + tokenizer                    full model (full FT, or LoRA merged into the base)
    adapter/                                         LoRA only: the adapter (adapter_config.json + weights)
    medsbench_training.json                          the training record (base, chat template sha256, mixture, method, ...)
    README.md, loss_curve.png                        model card
    metrics.jsonl, metrics.csv                       every logged step
    checkpoints/checkpoint-N/                        Trainer checkpoints (optimizer, scheduler, RNG) for --resume

``--out`` is a plain HF folder that ``hf:PATH`` loads (eval needs no PEFT). With
``merge=False`` a LoRA run keeps only ``adapter/``; ``medsbench tune merge`` turns
an adapter (or a checkpoint) into a standalone model later.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError, require
from medsbench.fileio import (
    LOCK_NAME,
    exclusive_lock,
    iter_jsonl,
    sha256_text,
    write_jsonl,
)
from medsbench.tune.config import TuneConfig
from medsbench.models.spec import ModelSpec, kinds
from medsbench.models.default import default_model_dir
from medsbench.fileio import dumps
import csv
from medsbench.fileio import atomic_write
from medsbench.tune.data import find_mixture, load_mixture, tokenize_mixture
from medsbench.models.training import write_training_record
from medsbench.tune.card import write_card

log = logging.getLogger("medsbench.tune")

CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"

# All attention and MLP projections: the usual LoRA choice for instruction tuning (QLoRA paper, TRL examples).
_PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEFAULT_TARGETS: dict[str, list[str]] = {
    **{t: _PROJ for t in ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "olmo2")},
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# --------------------------------------------------------------------------- base model


def resolve_base(spec: str) -> str:
    """``default`` | ``hf:PATH_OR_NAME[,opts]`` | PATH -> a local folder (or a Hub id, loaded from the cache).

    Model specs are parsed by :class:`medsbench.models.spec.ModelSpec`; a string that does not start
    with a spec kind is taken as a plain path or Hub id.
    """

    spec = spec.strip()
    head = spec.split(",", 1)[0].split(":", 1)[0]
    if head in kinds():
        parsed = ModelSpec.parse(spec)
        if parsed.kind == "default":
            return str(_default_model_dir())
        if parsed.kind != "hf":
            raise MedsbenchError(f"tune needs a local base model (default, hf:PATH or PATH), not '{parsed.redacted()}'")
        target = parsed.target
    else:
        target = spec
    path = Path(target).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MedsbenchError("not a Hugging Face model folder (no config.json)", where=str(path))
        return str(path.resolve())
    if _HUB_ID.match(target) and not target.startswith((".", "~")) and not Path(target.split("/")[0]).exists():
        return target  # a Hub id: transformers resolves it (from the local cache when offline)
    raise MedsbenchError("base model not found", where=str(path))


def _default_model_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as an HF folder (converted once from GGUF by the models stage)."""

    return Path(default_model_dir())


def load_base(path: str, cfg: TuneConfig, on_gpu: bool):
    """Tokenizer and causal LM, fp32 on CPU (exact resume, no bf16 kernels needed)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if (cfg.bf16 and on_gpu) else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=cfg.attn_implementation)
    except (OSError, ValueError) as exc:
        raise MedsbenchError(f"cannot load base model: {str(exc).splitlines()[0]}", where=path) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


# --------------------------------------------------------------------------- LoRA


def linear_leaf_names(model: Any) -> set[str]:
    import torch

    return {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n}


def lora_targets(model: Any, requested: list[str] | None) -> list[str] | str:
    """Requested targets checked against the model, or the architecture default."""
    model_type = getattr(model.config, "model_type", "?")
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules() if n}
    if requested:
        missing = [t for t in requested if t not in present]
        if missing:
            have = ", ".join(sorted(linear_leaf_names(model) - {"lm_head"}))
            raise MedsbenchError(
                f"LoRA target module(s) {', '.join(missing)} not in this {model_type} model (its linear layers: {have})"
            )
        return list(requested)
    default = DEFAULT_TARGETS.get(model_type)
    if default and set(default) <= present:
        return default
    return "all-linear"  # PEFT: every linear layer except the output head


def lora_config(model: Any, cfg: TuneConfig):
    peft = require("peft", "train", "LoRA tuning")
    layers = None
    if cfg.lora.top_layers is not None:
        n = model.config.get_text_config().num_hidden_layers
        layers = list(range(max(0, n - cfg.lora.top_layers), n))
    return peft.LoraConfig(
        layers_to_transform=layers,
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=lora_targets(model, cfg.lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


# --------------------------------------------------------------------------- packing


def packing_isolates_examples(model: Any, tol: float = 1e-4) -> bool:
    """Probe: do two examples packed in one row (position_ids restarting at 0, no attention mask) give the
    same logits as the two run separately? True for transformers' sdpa/eager/flash/flex Llama-family models,
    which build a block-diagonal mask from position_ids; False means packing would leak across examples."""
    import torch

    vocab = model.config.get_text_config().vocab_size
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, vocab, (1, 7), generator=g), torch.randint(0, vocab, (1, 5), generator=g)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            sep = torch.cat([model(input_ids=x.to(device), use_cache=False).logits for x in (a, b)], dim=1)
            pos = torch.cat([torch.arange(7), torch.arange(5)])[None].to(device)
            # use_cache=False as in training: transformers only derives the block mask without a KV cache
            packed = model(input_ids=torch.cat([a, b], dim=1).to(device), position_ids=pos, use_cache=False).logits
    except Exception as exc:  # an architecture that rejects position_ids-only batches
        log.warning("packing probe failed (%s); falling back to padded batches", exc)
        return False
    finally:
        model.train(was_training)
    return bool(torch.allclose(sep.float(), packed.float(), atol=tol, rtol=tol))


# --------------------------------------------------------------------------- metrics


def _metrics_callback(out: Path, resume_step: int):
    from transformers import TrainerCallback

    path = out / "metrics.jsonl"
    if path.exists():  # a resumed run rewrites the curve from its checkpoint on
        kept = [row for _, row in iter_jsonl(path) if row.get("step", 0) <= resume_step]
        write_jsonl(path, kept)

    class MetricsToJsonl(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            row = {"step": state.global_step, "epoch": state.epoch, "time": time.time(), **logs}

            with open(path, "ab") as fh:
                fh.write(dumps(row) + b"\n")
                fh.flush()

    return MetricsToJsonl()


def write_metrics_csv(out: Path) -> Path | None:


    path = out / "metrics.jsonl"
    if not path.exists():
        return None
    rows = [row for _, row in iter_jsonl(path)]
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    target = out / "metrics.csv"
    with atomic_write(target) as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return target


# --------------------------------------------------------------------------- train


@dataclass
class TrainResult:
    out: Path
    steps: int
    train_loss: float | None
    examples: int
    packing: bool
    seconds: float


def _last_checkpoint(out: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    ckpt = out / CHECKPOINTS
    return get_last_checkpoint(str(ckpt)) if ckpt.is_dir() else None


def train(
    base: str,
    data: str | Path,
    out: str | Path,
    cfg: TuneConfig | None = None,
    *,
    resume: bool = False,
    merge: bool = True,
    callbacks: list | None = None,
) -> TrainResult:
    """Tune ``base`` on the mixture at ``data``; write the model, card and metrics to ``out``.

    Holds ``fileio.exclusive_lock(out)`` for the whole run (one writer per output folder); under
    torchrun only global rank 0 takes it, the other ranks of the same job write through rank 0.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(base, data, out, cfg, resume=resume, merge=merge, callbacks=callbacks)
    out = Path(out)
    created = not out.exists()
    try:
        with exclusive_lock(out, "tune output folder"):
            return _train(base, data, out, cfg, resume=resume, merge=merge, callbacks=callbacks)
    except BaseException:
        # A run that fails before writing anything leaves no folder behind (the lock made it).
        if created and out.is_dir() and [p.name for p in out.iterdir()] == [LOCK_NAME]:
            (out / LOCK_NAME).unlink(missing_ok=True)
            out.rmdir()
        raise


def _train(
    base: str,
    data: str | Path,
    out: str | Path,
    cfg: TuneConfig | None = None,
    *,
    resume: bool = False,
    merge: bool = True,
    callbacks: list | None = None,
) -> TrainResult:
    require("trl", "train", "instruction tuning")
    import torch
    from trl import SFTTrainer


    cfg = cfg or TuneConfig()
    out = Path(out)
    started = time.time()
    on_gpu = torch.cuda.is_available()

    # Inputs first: every user mistake surfaces as one line before anything heavy happens.
    base_path = resolve_base(base)
    mixture = find_mixture(data)
    checkpoint = _last_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        raise MedsbenchError("--resume given but no checkpoint found", where=str(out / CHECKPOINTS))
    if not resume and out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise MedsbenchError("output folder is not empty (use --resume to continue, or another --out)", where=str(out))
    dataset = load_mixture(data)

    tokenizer, model = load_base(base_path, cfg, on_gpu)
    peft_config = lora_config(model, cfg) if cfg.method == "lora" else None
    packing = cfg.packing and packing_isolates_examples(model)
    if cfg.packing and not packing:
        log.warning("this model cannot keep packed examples apart; using padded, length-grouped batches")

    tokenized = tokenize_mixture(dataset, tokenizer, cfg.max_length)
    if len(tokenized) == 0:
        raise MedsbenchError("no example keeps an assistant token after truncation; raise max_length", where=str(data))

    args = _sft_config(cfg, out, on_gpu, packing)
    main_process = args.process_index == 0
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=tokenized,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=([_metrics_callback(out, _step_of(checkpoint))] if main_process else []) + list(callbacks or []),
    )
    output = trainer.train(resume_from_checkpoint=checkpoint)
    weights_dir = out / ADAPTER if peft_config is not None else out
    trainer.save_model(str(weights_dir))
    result = TrainResult(out=out, steps=trainer.state.global_step, train_loss=output.training_loss,
                         examples=len(tokenized), packing=packing, seconds=time.time() - started)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(weights_dir))
        merged = peft_config is not None and merge
        if merged:
            # Merged weights in --out make it a plain HF folder that `hf:PATH` (eval) loads without PEFT.
            # With a peft_config the trainer holds a peft PeftModel; transformers types trainer.model as a PreTrainedModel.
            trainer.model.merge_and_unload().save_pretrained(str(out))  # type: ignore[union-attr,operator]
            tokenizer.save_pretrained(str(out))
        write_metrics_csv(out)
        run = _TrainedRun(base, base_path, mixture, cfg, peft_config, packing, args.world_size, checkpoint, merged)
        _write_records(run, result, tokenizer, {out, weights_dir})
    return result


def _sft_config(cfg: TuneConfig, out: Path, on_gpu: bool, packing: bool) -> Any:
    """TRL's SFTConfig of a run (CPU: no bf16, no gradient checkpointing)."""
    from trl import SFTConfig

    args = SFTConfig(
        output_dir=str(out / CHECKPOINTS),
        use_cpu=not on_gpu,
        bf16=cfg.bf16 and on_gpu,
        fp16=False,
        activation_checkpointing=cfg.gradient_checkpointing and on_gpu,
        ddp_find_unused_parameters=False,  # every trainable parameter (LoRA or full) takes part in the loss
        ddp_backend=None,  # accelerate picks gloo on CPU and nccl on GPU when launched distributed
        max_length=cfg.max_length,
        packing=packing,
        packing_strategy="bfd",
        shuffle_dataset=cfg.shuffle,
        train_sampling_strategy="random" if packing else "group_by_length",
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps (transformers 5)
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=cfg.report_to,
        dataloader_num_workers=cfg.dataloader_num_workers,
        remove_unused_columns=True,
        disable_tqdm=True,
    )
    args.gradient_accumulation_steps = cfg.accumulation_steps(args.world_size)
    return args


@dataclass(frozen=True)
class _TrainedRun:
    """What a finished training run records beside its weights (medsbench_training.json, the model card)."""

    base: str
    base_path: str
    mixture: Any
    cfg: TuneConfig
    peft_config: Any
    packing: bool
    world_size: int
    checkpoint: str | None
    merged: bool


def _write_records(run: _TrainedRun, result: TrainResult, tokenizer: Any, folders: set[Path]) -> None:
    import torch
    import transformers
    import trl


    targets = run.peft_config.target_modules if run.peft_config is not None else None
    info = {
        "base": run.base,
        "base_path": run.base_path,
        "chat_template_sha256": sha256_text(tokenizer.chat_template or ""),
        "mixture": str(run.mixture.root),
        "mixture_name": run.mixture.name,
        "mixture_card": str(run.mixture.card) if run.mixture.card else None,
        "method": run.cfg.method,
        "lora_target_modules": sorted(targets) if targets is not None and not isinstance(targets, str) else targets,
        "config": run.cfg.model_dump(),
        "packing": "bfd (position_ids restart per example)" if run.packing else "padded, length-grouped",
        "steps": result.steps,
        "examples": result.examples,
        "train_loss": result.train_loss,
        "world_size": run.world_size,
        "resumed_from": run.checkpoint,
        "seconds": round(result.seconds, 1),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
            "peft": _version("peft"),
        },
        "merged": run.merged,
    }
    for folder in folders:
        write_training_record(folder, info)
        write_card(folder, info)


def _step_of(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else 0


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None
