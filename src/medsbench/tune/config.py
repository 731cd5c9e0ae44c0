"""Training configuration: one small pydantic model, loaded from YAML.

Field names follow TRL's ``SFTConfig`` / ``TrainingArguments`` where they map
one to one, so a reader who knows TRL recognises them. Shipped configs live in
``medsbench/tune/configs/`` and are addressed by name (``cpu_small_lora``) or path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medsbench.errors import MedsbenchError
from medsbench.settings import load_settings

CONFIG_DIR = Path(__file__).with_name("configs")
DEFAULT_CONFIG = "cpu_small_lora"


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    # None = sensible defaults for the architecture (see train.DEFAULT_TARGETS).
    target_modules: list[str] | None = None
    # Adapt only the top N decoder layers: backward then stops there, which cuts training compute
    # roughly in half on a CPU. None = every layer.
    top_layers: int | None = Field(None, gt=0)


class TuneConfig(BaseModel):
    """Everything that shapes a training run (the model and data come from the command line)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["lora", "full"] = "lora"
    lora: LoraSettings = LoraSettings()

    # Data
    max_length: int = Field(1024, gt=8)
    packing: bool = True  # BFD packing, position_ids reset per example (no cross-example attention)
    shuffle: bool = True

    # Optimisation
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0)
    per_device_batch_size: int = Field(4, gt=0)
    # Either a global batch (accumulation is derived from the world size) or explicit accumulation.
    global_batch_size: int | None = Field(None, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    num_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1  # > 0 overrides num_epochs

    # Precision / memory (ignored on CPU where unsupported)
    bf16: bool = False
    gradient_checkpointing: bool = False
    attn_implementation: str = "sdpa"

    # Bookkeeping
    seed: int = 42
    logging_steps: int = Field(1, gt=0)
    save_steps: int = Field(50, gt=0)
    save_total_limit: int | None = 3
    report_to: list[str] = ["none"]  # add "tensorboard" or "wandb" when wanted
    dataloader_num_workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> TuneConfig:
        if self.global_batch_size is not None and self.global_batch_size % self.per_device_batch_size:
            raise ValueError("global_batch_size must be a multiple of per_device_batch_size")
        return self

    def accumulation_steps(self, world_size: int) -> int:
        """Gradient accumulation needed to reach ``global_batch_size`` on ``world_size`` processes."""
        if self.global_batch_size is None:
            return self.gradient_accumulation_steps
        per_step = self.per_device_batch_size * max(world_size, 1)
        if self.global_batch_size % per_step:
            raise MedsbenchError(
                f"global_batch_size {self.global_batch_size} is not a multiple of "
                f"per_device_batch_size x processes = {per_step}"
            )
        return self.global_batch_size // per_step


def shipped_configs() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def load_tune_config(name_or_path: str | Path | None = None, **overrides: object) -> TuneConfig:
    """Load a shipped config by name or a YAML file by path, then apply non-None overrides."""
    ref = str(name_or_path or DEFAULT_CONFIG)
    path = shipped_configs().get(ref, Path(ref))
    if not path.is_file():
        names = ", ".join(shipped_configs())
        raise MedsbenchError(f"config not found (shipped configs: {names})", where=str(path))
    return load_settings(TuneConfig, path, "tune config", overrides)
