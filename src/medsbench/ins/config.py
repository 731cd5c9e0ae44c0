"""The mixture build configuration: a small typed file (YAML or TOML).

Every field has a default; an empty file (or none) builds the paper's setup as
far as the paper describes it: a task-balanced mixture (below), instructions
drawn from the original definition or one of the task's paraphrases (the
paper's "19K instructions", loaded from ``instructions.definitions``, i.e. the
official ``RewriteDefinitions.json`` given by path), and a mix of zero-shot and
3-shot prompts in exactly the evaluation's prompt format. The paper does not
publish the mixing probabilities; ours are documented defaults.

Default balance (``BalanceConfig``): at most ``cap = 5000`` distinct instances
per task, temperature ``T = 2`` (p(task) ∝ min(n, cap)^(1/2)) and up to
``max_repeats = 3`` emissions of an instance of a small task (each with its own
instruction and demos). Measured on the converted train splits of the shared
raw data (24 train tasks, 179,720 clean instances), the natural mix (T = 1, no
cap) is 53.3% one task (ICD-10-CM code explanation, task115) and 55.4% the
Explanation category; the default gives 67,402 examples with no task above
6.1% (the cap bounds every task: with T >= 1 and the default total no task can
exceed ``cap``), categories NER 47.3% (9 of the 24 tasks), QA 20.3%,
information extraction 12.6%, explanation 11.3%, classification 3.5%,
summarisation 3.0%, fact verification 1.9%; ICD-10-CM 6.1% of the sources.
With the Disease Ontology, ADE, AnEM and MedQuAD tasks added (34 train tasks,
248,357 clean instances; natural mix 38.6% task115) the default gives 101,819
examples, no task above 4.2%, the largest source (Disease Ontology, 4 tasks) 16.8%.
``cap: null``, ``temperature: 1`` and ``max_repeats: 1`` give every clean
instance once (the natural mix).

Unknown keys and out-of-range values are rejected with one line naming the
field (``extra="forbid"``), so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medsbench.errors import MedsbenchError
from medsbench.settings import read_settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstructionConfig(_Strict):
    # The official RewriteDefinitions.json (task id -> original_def + auto_rewrite_def paraphrases),
    # loaded by path (CC BY-SA: never vendored). Read first, so its original_def wins over sidecars'.
    definitions: Path | None = None
    # More RewriteDefinitions.json-shaped sidecars: {task_id: {"original_def", "auto_rewrite_def": [...]}}.
    sidecars: list[Path] = Field(default_factory=list)
    # Probability that an example's instruction is a paraphrase instead of the original definition
    # (only for tasks that have paraphrases).
    paraphrase_prob: float = Field(0.5, ge=0.0, le=1.0)
    # Use the sidecar's original_def as the task's definition (matches the paper's prompts word for
    # word); off: the task file's own Definition.
    sidecar_original: bool = True


class ShotsConfig(_Strict):
    # k -> probability that an example gets k demos (normalised; 0 = zero-shot).
    probs: dict[int, float] = Field(default_factory=lambda: {0: 0.5, 3: 0.5})
    # Demos come from a seeded reservoir of this many clean train instances per task.
    demo_pool: int = Field(64, ge=1)
    # Demos longer than this (input + output characters) are not used; None = no limit.
    max_demo_chars: int | None = Field(None, ge=1)

    @field_validator("probs")
    @classmethod
    def _probs(cls, v: dict[int, float]) -> dict[int, float]:
        if not v:
            raise ValueError("needs at least one k")
        for k, p in v.items():
            if k < 0:
                raise ValueError(f"number of shots must be >= 0, got {k}")
            if p < 0:
                raise ValueError(f"probability of {k}-shot must be >= 0, got {p}")
        if sum(v.values()) <= 0:
            raise ValueError("probabilities must not all be 0")
        return dict(sorted(v.items()))


class BalanceConfig(_Strict):
    # p(task) ∝ n^(1/T) with n = min(clean instances, cap): T=1 keeps natural proportions, larger T
    # flattens towards uniform.
    temperature: float = Field(2.0, gt=0.0)
    cap: int | None = Field(5000, ge=1)  # per-task maximum of distinct instances
    caps: dict[str, int] = Field(default_factory=dict)  # per-task overrides of cap
    weights: dict[str, float] = Field(default_factory=dict)  # per-task multipliers of p (>= 0)
    total: int | None = Field(None, ge=1)  # mixture size; default: sum of capped task sizes
    # An instance may be emitted at most this many times (with different instructions/demos) when a
    # small task is upsampled at T > 1; 1 = never repeat.
    max_repeats: int = Field(3, ge=1)

    @field_validator("caps")
    @classmethod
    def _caps(cls, v: dict[str, int]) -> dict[str, int]:
        for k, c in v.items():
            if c < 1:
                raise ValueError(f"cap of {k} must be >= 1, got {c}")
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        for k, w in v.items():
            if w < 0:
                raise ValueError(f"weight of {k} must be >= 0, got {w}")
        return v


class DedupeConfig(_Strict):
    exact: bool = True
    # What makes two examples the same: "example" = definition + input + output (the same sentence
    # annotated for two entity types is two examples), "input_output", or "input".
    key: Literal["example", "input_output", "input"] = "example"
    near: bool = True
    threshold: float = Field(0.85, gt=0.0, le=1.0)  # estimated Jaccard of word shingles
    num_perm: int = Field(128, ge=16, le=1024)
    shingle: int = Field(5, ge=1, le=32)


class DecontamConfig(_Strict):
    # Off only when the user asks (``--no-decontamination``): a build finds no benchmark test file
    # otherwise refuses to run, and the card says when nothing was checked.
    enabled: bool = True
    ngram: int = Field(13, ge=1, le=100)  # tokens (words; CJK characters count one each)
    # Script-aware sizes for inputs whose tokens are mostly CJK characters (``dedupe.script_class``):
    # a CJK character carries a fraction of an English word, so 13 characters are a short clause and
    # match generic exam phrasing. Han-only text (Chinese) uses ``ngram_han`` characters, text with
    # kana or Hangul (Japanese, Korean) ``ngram_kana``. Chosen by measurement on the real splits
    # (IgakuQA train vs test; MedQA-MCMLE zh test split in two seeded halves, as it has no train split;
    # ``bench/ins_bench.py --cjk``), share of training items flagged: ja 47.9% at 13, 11.5% at 20,
    # 5.0% at 30 (what is left is almost all one exam template sentence of ~45 characters, which a
    # 13-word English template would match as well); zh 10.6% at 13, 6.3% at 20 (in a sample most
    # are the same question with edited or shuffled options, or a shared case vignette), 4.1% at 30,
    # which misses many of those re-used questions. Latin-script inputs keep ``ngram``.
    ngram_han: int = Field(20, ge=1, le=200)
    ngram_kana: int = Field(30, ge=1, le=200)
    near: bool = True
    threshold: float = Field(0.8, gt=0.0, le=1.0)
    # n-grams found in more test instances than this are boilerplate (templates, option lists) and
    # are not evidence of contamination; None = use every n-gram.
    max_ngram_test_freq: int | None = Field(5, ge=1)
    fail: bool = False  # fail the build when anything was dropped for contamination


class ExportConfig(_Strict):
    shard_rows: int = Field(100_000, ge=1)
    row_group_rows: int = Field(8192, ge=1)
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    jsonl: bool = False


class InsConfig(_Strict):
    seed: int = 0
    splits: list[str] = Field(default_factory=lambda: ["train"])  # splits of --tasks files to use
    validate_inputs: bool = True
    instructions: InstructionConfig = Field(default_factory=InstructionConfig)
    shots: ShotsConfig = Field(default_factory=ShotsConfig)
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    dedupe: DedupeConfig = Field(default_factory=DedupeConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    def updated(self, **changes: Any) -> InsConfig:
        """A copy with dotted-path changes, e.g. ``updated(**{"decontam.fail": True})``; re-validated."""
        data = self.model_dump(mode="python")
        for dotted, value in changes.items():
            node = data
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value
        return _validate(data, "config")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{loc}: {msg}"


def _validate(data: Any, where: str) -> InsConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MedsbenchError(f"config must be a mapping, got {type(data).__name__}", where=where)
    try:
        return InsConfig.model_validate(data)
    except ValidationError as exc:
        raise MedsbenchError(_first_error(exc), where=where) from None


def load_ins_config(path: str | os.PathLike | None) -> InsConfig:
    """Read a YAML (.yaml/.yml) or TOML (.toml) config; ``None`` gives the defaults.

    Relative ``definitions`` and sidecar paths are resolved against the config file's folder.
    """
    if path is None:
        return InsConfig()
    path = Path(path)
    data = read_settings(path, "MedS-Ins config")
    cfg = _validate(data, str(path))
    sidecars = [p if p.is_absolute() else (path.parent / p) for p in cfg.instructions.sidecars]
    defs = cfg.instructions.definitions
    if defs is not None and not defs.is_absolute():
        defs = path.parent / defs
    return cfg.updated(**{"instructions.sidecars": sidecars, "instructions.definitions": defs})
