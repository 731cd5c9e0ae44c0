"""Instruction tuning (TRL/PEFT): ``train`` a base model on a MedS-Ins mixture, ``merge`` LoRA adapters.

Imports are lazy so ``import medsbench.tune`` stays cheap (no torch).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TuneConfig", "load_config", "merge", "train"]


def __getattr__(name: str) -> Any:
    if name in ("TuneConfig", "load_config"):
        from medsbench.tune import config

        return getattr(config, name)
    if name == "train":
        from medsbench.tune.train import train

        return train
    if name == "merge":
        from medsbench.tune.merge import merge

        return merge
    raise AttributeError(name)
