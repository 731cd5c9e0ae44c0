"""``RunManifest``: ``manifest.json`` of a run folder, everything needed to reproduce or audit it.

Written and read by :mod:`medsbench.runs` (``--resume`` re-checks it), read by :mod:`medsbench.board`.
Model specs are stored redacted (no credentials in URLs, see :mod:`medsbench.models.spec`).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from medsbench.records.base import SCHEMA_VERSION, Record, load_model, save_model

PACKAGES = ("medsbench", "torch", "transformers", "tokenizers", "openai", "vllm")
MANIFEST = "manifest.json"


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


class TaskFile(Record):
    path: str
    sha256: str


class ManifestTask(Record):
    category: str
    language: str
    definition_sha256: str
    n_total: int  # instances in the test file
    n: int  # items planned (after --limit / sharding)
    files: dict[str, TaskFile]  # split -> file
    source: dict[str, Any] | None = None  # where the task file came from (converter, hub repo/revision/path)


class RunManifest(Record):
    schema_version: int = SCHEMA_VERSION
    model: str  # the model spec as given, credentials redacted
    backend: dict[str, Any]  # backend identity: kind, weights fingerprint, dtype, chat template hash, ...
    protocol: str = "medsbench"
    tasks: dict[str, ManifestTask]
    args: dict[str, Any]  # the command's settings (selection, limit, shots, seed, max_new_tokens, ...)
    generation: dict[str, Any]
    prompt_template_sha256: str
    chat_template_sha256: str | None = None
    seed: int
    workspace: str | None = None
    cache: str | None = None
    deviations: list[str] = Field(default_factory=list)  # from the official protocol
    merged_from: list[str] = Field(default_factory=list)  # the shard run folders ``runs merge`` combined
    versions: dict[str, str] = Field(default_factory=package_versions)
    command: list[str] = Field(default_factory=lambda: list(sys.argv))
    started: str = Field(default_factory=now)
    finished: str | None = None
    status: Literal["running", "scoring", "finished", "interrupted", "failed"] = "running"
    counts: dict[str, int] = Field(default_factory=dict)

    def save(self, run_dir: str | os.PathLike) -> None:
        save_model(self, Path(run_dir) / MANIFEST)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> RunManifest:
        return load_model(cls, Path(run_dir) / MANIFEST, "run manifest")
