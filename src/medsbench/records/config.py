"""``EvalConfig``: everything that defines an evaluation run, typed and frozen, built once.

The CLI (``medsbench eval``) builds it from its flags (:meth:`EvalConfig.from_flags`; the flags'
help texts are the fields' descriptions), or, on ``--resume``, takes the one recorded in the run's
``manifest.json`` and checks the flags given against it field by field
(:meth:`EvalConfig.resumed_with`). From then on every stage receives this object: the runner, the
scorer (its protocol), the judge and the board read it from the manifest, never from flags or by
parsing the spec string again.

The model spec is a :class:`medsbench.models.spec.ModelSpec` (parsed once); it is written to disk
redacted (:meth:`ModelSpec.redacted`), and ``model_complete`` records whether that lost anything
(credentials in a URL): such a run's ``--resume`` must be given ``--model`` again.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError, model_validator

from medsbench.fileio import sha256_text
from medsbench.errors import MedsbenchError
from medsbench.models.spec import ModelSpec
from medsbench.errors import first_error
from medsbench.records.base import Record


def _spec(value: Any) -> ModelSpec:
    if isinstance(value, ModelSpec):
        return value
    if not isinstance(value, str):
        raise ValueError("a model spec string")
    try:
        return ModelSpec.parse(value, strict=False)
    except MedsbenchError as exc:
        raise ValueError(str(exc)) from None


Spec = Annotated[ModelSpec, BeforeValidator(_spec), PlainSerializer(lambda s: s.redacted(), return_type=str)]


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (1 <= I <= N, "shard I of N") -> (I, N). Shard I answers the items at positions
    I-1, I-1+N, I-1+2N, ... of every task (after ``--limit``), so ``medsbench runs merge`` interleaves
    shards back into the unsharded order; prompts and demos depend only on (seed, task, item)."""
    if spec is None:
        return None
    index, sep, count = str(spec).strip().partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = 0, 0
    if not sep or n < 1 or not 1 <= i <= n:
        raise MedsbenchError(f"--shard must be I/N with 1 <= I <= N (shard I of N, e.g. 1/2 and 2/2), got '{spec}'")
    return i, n


def _shard(value: Any) -> str | None:
    parsed = parse_shard(value) if value is not None else None
    return None if parsed is None else f"{parsed[0]}/{parsed[1]}"


def _limit(value: Any) -> int | float | None:
    """A whole number of items (>= 1) or a fraction of each task (0 < f < 1), from a flag or a file."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not (0 < number < 1 or (number >= 1 and number == int(number))):
        raise ValueError(f"must be a whole number of items (at least 1) or a fraction between 0 and 1, got {value!r}")
    return int(number) if number >= 1 else number


def _path(value: Any) -> str | None:
    return None if value is None else str(Path(value).expanduser().resolve())


class EvalConfig(Record):
    """What a run measures. Field descriptions are the ``medsbench eval`` help texts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Spec = Field(
        default_factory=lambda: ModelSpec.parse("default"),
        description="default | hf:PATH[,dtype=..,device=..,batch_size=..] | vllm:PATH[,tensor_parallel_size=..] | "
        "openai:MODEL[,base_url=..,concurrency=..]",
    )
    model_complete: bool = Field(True, description="False when the recorded spec lost credentials (resume needs --model)")
    tasks: str = Field("available", description="Task ids or names (task57, pubmedqa), categories, 'all', 'available' "
                       "(tasks with files here) or 'quick' (one available task per category); comma-separated")
    protocol: str = Field("medsbench", description="official | paper | medsbench: whose evaluation protocol to follow "
                          "(recorded with its deviations)")
    shots: int | None = Field(None, ge=0, description="Demos per prompt (default: the protocol's; the catalog's 3, MCQA 0)")
    seed: int = Field(0, description="Seed of the demo choice (per task and item)")
    limit: Annotated[int | float | None, BeforeValidator(_limit)] = Field(
        None, description="First N items of each task, or a fraction of each task below 1 (a sample, not a failure)")
    max_new_tokens: int | None = Field(None, ge=1, description="Token cap for every task (default: the protocol's per-category caps)")
    stop: tuple[str, ...] | None = Field(None, description="Stop strings for every task (default: the protocol's per-category ones)")
    prompt_style: str = Field("official", description="official (byte-exact paper prompt) | readable")
    definitions: Annotated[str | None, BeforeValidator(_path)] = Field(
        None, description="RewriteDefinitions.json: use the paper's own definitions")
    shard: Annotated[str | None, BeforeValidator(_shard)] = Field(
        None, description="I/N: answer only shard I of N (items I, I+N, ... of each task; merge with `medsbench runs merge`)")
    scoring: Literal["generate", "loglik"] = Field(
        "generate", description="generate (greedy text, parsed by the scorers) | loglik (closed-answer tasks only: the "
        "option whose continuation has the highest log-likelihood; adds acc_norm and calibration)")

    @model_validator(mode="before")
    @classmethod
    def _completeness(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model_complete" not in data and isinstance(data.get("model"), ModelSpec):
            spec = data["model"]
            data = {**data, "model_complete": spec.redacted() == spec.unredacted()}
        return data

    # -- building ------------------------------------------------------------
    @classmethod
    def from_flags(cls, **given: Any) -> EvalConfig:
        """A new run's config from the flags given (None = not given: the field's default)."""
        values = {k: v for k, v in given.items() if v is not None}
        if isinstance(values.get("model"), str):
            values["model"] = ModelSpec.parse(values["model"])
        return _validated(values)

    def resumed_with(self, where: str | os.PathLike[str], **given: Any) -> EvalConfig:
        """This recorded config, checked against the flags given with ``--resume`` (None = not given).

        A flag that disagrees with the recorded value is refused in one line naming every differing
        field; a model spec given again may only restore what redaction removed (and change options
        that do not change what is measured, such as where the API key comes from).
        """
        conflicts = []
        update: dict[str, Any] = {}
        for name, value in given.items():
            if value is None:
                continue
            if name == "model":
                spec = ModelSpec.parse(value) if isinstance(value, str) else value
                if spec.measured().redacted() != self.model.measured().redacted():
                    conflicts.append(f"--model {spec.redacted()} conflicts with the run's {self.model.redacted()}")
                else:
                    update["model"], update["model_complete"] = spec, True
                continue
            have = getattr(self, name)
            want = getattr(_validated({name: value}), name)
            if want != have:
                shown = "setting (not given)" if have is None else repr(have)
                conflicts.append(f"--{name.replace('_', '-')} {want} conflicts with the run's {shown}")
        if conflicts:
            raise MedsbenchError(
                f"--resume takes its settings from {where}: {'; '.join(conflicts)} "
                "(drop the flag, or start a new run with another --out)"
            )
        if not (update.get("model_complete") or self.model_complete):
            raise MedsbenchError(
                f"the run's model spec held credentials (recorded redacted: {self.model.redacted()}); give it again: "
                f"medsbench eval --resume --out {Path(where).parent} --model SPEC"
            )
        return self.model_copy(update=update) if update else self

    # -- comparing -----------------------------------------------------------
    def measured(self) -> dict[str, Any]:
        """The fields that determine a run's outputs, as JSON values (the model spec redacted, without
        options that do not change outputs, e.g. where an API key comes from)."""
        data = self.model_dump(mode="json", exclude={"model", "model_complete"})
        data["model"] = self.model.measured().redacted()
        if data["scoring"] == "generate":  # absent from generative configs: their digests stay as they were
            del data["scoring"]
        return data

    def differences(self, other: EvalConfig, *, ignore: tuple[str, ...] = ()) -> list[str]:
        """Names of the measured fields that differ between two configs."""
        mine, theirs = self.measured(), other.measured()
        return sorted(k for k in set(mine) | set(theirs) if k not in ignore and mine.get(k) != theirs.get(k))

    def digest(self) -> str:
        """A short, stable id of :meth:`measured` (default run folder names never collide)."""
        return sha256_text(orjson.dumps(self.measured(), option=orjson.OPT_SORT_KEYS).decode())[:8]

    def items_of(self, n_total: int) -> int:
        """How many of a task's ``n_total`` items this run takes: all, the first ``limit``, or
        ``ceil(n_total * limit)`` for a fraction (as lm-evaluation-harness counts a fractional limit)."""
        if self.limit is None:
            return n_total
        if isinstance(self.limit, float):
            return min(n_total, math.ceil(n_total * self.limit))
        return min(n_total, self.limit)

    @property
    def shard_index(self) -> tuple[int, int] | None:
        """(I, N) of ``shard`` (1-based I), or None for an unsharded run."""
        return parse_shard(self.shard)

    def default_run_name(self) -> str:
        """``<model run name>-<digest>``: one folder per configuration."""
        return f"{self.model.run_name}-{self.digest()}"

    @classmethod
    def cli_fields(cls) -> dict[str, str]:
        """Field name -> help text of every field a flag sets (``model_complete`` is recorded, not given)."""
        return {name: f.description or "" for name, f in cls.model_fields.items() if name != "model_complete"}


def _validated(values: dict[str, Any]) -> EvalConfig:
    try:
        return EvalConfig.model_validate(values)
    except ValidationError as exc:
        field, _, why = first_error(exc).partition(": ")
        raise MedsbenchError(f"--{field.replace('_', '-')}: {why.removeprefix('Value error, ')}") from None
