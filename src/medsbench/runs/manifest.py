"""``manifest.json`` of a run folder (contract 3): everything needed to reproduce or audit it."""

from __future__ import annotations

import datetime as dt
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from medsbench.fileio import read_json, write_json

PACKAGES = ("medsbench", "torch", "transformers", "tokenizers", "openai", "vllm")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunManifest:
    model: str
    backend: dict[str, Any]
    tasks: dict[str, dict[str, Any]]  # task id -> {category, language, files: {split: {path, sha256}}, n}
    args: dict[str, Any]  # the command's settings (selection, limit, shots, seed, max_new_tokens, prompt style)
    generation: dict[str, Any]
    prompt_template_sha256: str
    chat_template_sha256: str | None
    seed: int
    versions: dict[str, str] = field(default_factory=package_versions)
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    started: str = field(default_factory=now)
    finished: str | None = None
    status: str = "running"  # running | finished | interrupted
    counts: dict[str, int] = field(default_factory=dict)

    def save(self, run_dir: Path) -> None:
        write_json(Path(run_dir) / "manifest.json", asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> RunManifest:
        data = read_json(Path(run_dir) / "manifest.json")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})
