"""Instruction tuning (TRL/PEFT): ``train`` a base model on a MedS-Ins mixture, ``merge`` LoRA adapters.

torch, transformers, TRL and PEFT load only when a model is trained or merged.
"""

from medsbench.tune.config import TuneConfig, load_tune_config
from medsbench.tune.merge import merge
from medsbench.tune.train import train

__all__ = ["TuneConfig", "load_tune_config", "merge", "train"]
