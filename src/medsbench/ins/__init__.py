"""MedS-Ins mixture builder: instruction variants, shots, balance, dedupe, decontamination, export, card."""

from medsbench.ins.build import build_mixture
from medsbench.ins.config import InsConfig, load_ins_config

__all__ = ["InsConfig", "build_mixture", "load_ins_config"]
