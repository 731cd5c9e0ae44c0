"""``RunManifest``: ``manifest.json`` of a run folder, everything needed to reproduce or audit it.

A run folder holds either an evaluation (``config``: the run's :class:`EvalConfig`) or a leaderboard
submission (``submission``: who submitted what); :attr:`RunManifest.model` and
:attr:`RunManifest.protocol` are derived from whichever it is. Read and written only through
:class:`medsbench.records.folder.RunFolder`. Model specs are stored redacted
(:mod:`medsbench.redact`).

Schema 2 (``config`` replaces schema 1's ``model``/``protocol``/``seed``/``args``); schema-1 files are
read through :meth:`RunManifest.migrate`.
"""

from __future__ import annotations

import datetime as dt
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from medsbench.fileio import sha256_file
from medsbench.models.spec import ModelSpec
from medsbench.records.base import Record
from medsbench.records.config import EvalConfig
from medsbench.redact import REDACTED

PACKAGES = ("medsbench", "torch", "transformers", "tokenizers", "openai", "vllm")
SUBMITTED_PROTOCOL = "submitted"  # prompts and decoding are the submitter's, not known here


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
    items_sha256: str | None = None  # of the planned instance ids in order (None: recorded before ids were)
    files: dict[str, TaskFile]  # split -> file
    source: dict[str, Any] | None = None  # where the task file came from (converter, hub repo/revision/path)


class Submission(Record):
    """A leaderboard submission: outputs made elsewhere, validated item by item against the task files."""

    model_name: str
    description: str | None = None
    file: str  # the submitted file's name
    sha256: str
    format: str
    flags: list[dict[str, Any]] = Field(default_factory=list)


class RunManifest(Record):
    SCHEMA: ClassVar[int] = 2

    schema_version: int = 2
    config: EvalConfig | None = None  # an evaluation run (None: a submission)
    submission: Submission | None = None
    backend: dict[str, Any]  # backend identity: kind, weights fingerprint, dtype, chat template hash, ...
    tasks: dict[str, ManifestTask]
    generation: dict[str, Any] = Field(default_factory=dict)
    prompt_template_sha256: str
    chat_template_sha256: str | None = None
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

    @model_validator(mode="after")
    def _one_kind(self) -> RunManifest:
        if (self.config is None) == (self.submission is None):
            raise ValueError("a run manifest records either an evaluation 'config' or a 'submission'")
        return self

    @property
    def model(self) -> str:
        """The run's model: its spec, redacted (an evaluation), or the submitted model's name."""
        if self.config is not None:
            return self.config.model.redacted()
        assert self.submission is not None
        return self.submission.model_name

    @property
    def model_name(self) -> str:
        """The run's model as tables name it: the spec's display name, or the submitted model's name."""
        if self.config is not None:
            return self.config.model.display_name
        assert self.submission is not None
        return self.submission.model_name

    def test_files(self) -> dict[str, Path]:
        """Each task's recorded test file, where it still exists with the recorded sha256."""
        out = {}
        for tid, task in self.tasks.items():
            test = task.files.get("test")
            if test is not None and Path(test.path).is_file() and sha256_file(test.path) == test.sha256:
                out[tid] = Path(test.path)
        return out

    @property
    def protocol(self) -> str:
        return self.config.protocol if self.config is not None else SUBMITTED_PROTOCOL

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Schema 1 -> 2: ``model``/``protocol``/``seed``/``args`` become ``config`` (or ``submission``);
        schema 1 counted shards from 0 (``0/2``), schema 2 from 1 (``1/2``)."""
        if version != 1:
            return super().migrate(data, version)
        args = dict(data.pop("args", None) or {})
        model, protocol, seed = data.pop("model"), data.pop("protocol", "medsbench"), data.pop("seed", 0)
        data["schema_version"] = 2
        backend = data.get("backend") or {}
        if backend.get("kind") == "submission":
            data["submission"] = {
                "model_name": model, "description": args.get("description"), "flags": args.get("flags") or [],
                "file": backend.get("submitted_file", "?"), "sha256": backend.get("submitted_sha256", "?"),
                "format": backend.get("format", "?"),
            }
            return data
        spec = ModelSpec.parse(model, strict=False)
        options = {k: v for k, v in (args.get("backend_options") or {}).items() if v is not None}
        spec = ModelSpec(spec.kind, spec.target, {**spec.options, **{k: _option(v) for k, v in options.items()}})
        shard = args.get("shard")
        if shard:
            index, _, count = str(shard).partition("/")
            shard = f"{int(index) + 1}/{count}"
        data["config"] = {
            "model": spec.redacted(), "model_complete": REDACTED not in model, "protocol": protocol, "seed": seed,
            "tasks": args.get("tasks", "available"), "shots": args.get("shots"), "limit": args.get("limit"),
            "max_new_tokens": args.get("max_new_tokens"), "prompt_style": args.get("prompt_style", "official"),
            "definitions": args.get("definitions"), "shard": shard,
        }
        return data


def _option(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
