"""``medsbench_training.json``: what a tuned model folder records about its training.

Written by :mod:`medsbench.tune` (base model, chat template sha256, mixture, method, config, steps,
loss, versions); read by the hf backend (a tuned model whose tokenizer's chat template differs from
the one it was trained with is warned about), by ``tune merge`` (the record moves with the merged
weights) and by the demo.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medsbench import __version__
from medsbench.errors import MedsbenchError
from medsbench.fileio import read_json, write_json

TRAINING_RECORD = "medsbench_training.json"


def training_record_path(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / TRAINING_RECORD


def read_training_record(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The folder's training record, None when it has none (one line names an unreadable one)."""
    path = training_record_path(folder)
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise MedsbenchError("not a training record (expected an object)", where=str(path))
    return data


def write_training_record(folder: str | os.PathLike[str], info: dict[str, Any]) -> Path:
    """Write the record (with the medsbench version that trained) atomically."""
    path = training_record_path(folder)
    write_json(path, {"medsbench_version": __version__, **info})
    return path
