"""MedS-Ins mixture builder: instruction variants, shots, balance, dedupe, decontamination, export, card."""

from medsbench.ins.config import InsConfig, load_config

__all__ = ["InsConfig", "build_mixture", "load_config"]


def build_mixture(*args, **kwargs):
    """See :func:`medsbench.ins.build.build_mixture` (imported lazily: numpy/pyarrow stay off the CLI's import path)."""
    from medsbench.ins.build import build_mixture as _build

    return _build(*args, **kwargs)
