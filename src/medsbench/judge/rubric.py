"""Judge rubrics, the judge prompt template and the strict score parser.

Rubrics, the prompt template and the probe settings are versioned data files in
``medsbench/judge/rubrics/`` (``<id>.yaml``, ``prompt.yaml``, ``probes.yaml``); this module only
loads, validates and fills them. A rubric is chosen per task: one naming the task id in
``applies_to.tasks`` first, then one naming its catalog category, else ``generic``.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medsbench.errors import MedsbenchError
from medsbench.settings import load_settings

PROMPT_FILE = "prompt.yaml"
PROBES_FILE = "probes.yaml"
GENERIC = "generic"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Criterion(_Data):
    name: str
    ask: str


class AppliesTo(_Data):
    categories: list[str] = Field(default_factory=list)
    tasks: list[str] = Field(default_factory=list)


class Rubric(_Data):
    id: str
    version: int
    title: str
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    task: str
    criteria: list[Criterion]
    scale: dict[int, str]

    @property
    def ref(self) -> str:
        """``id@version``: what judged.json and the cache key record."""
        return f"{self.id}@{self.version}"


class PromptTemplate(_Data):
    id: str
    version: int
    system: str
    user: str
    retry: str
    criterion_line: str
    scale_line: str
    empty_answer: str
    input_max_chars: int = 3000
    score_pattern: str
    scale_min: int = 1
    scale_max: int = 5

    @model_validator(mode="after")
    def _check(self) -> PromptTemplate:
        re.compile(self.score_pattern)
        if self.scale_min >= self.scale_max:
            raise ValueError("scale_min must be below scale_max")
        return self

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @functools.cached_property
    def _pattern(self) -> re.Pattern[str]:
        return re.compile(self.score_pattern, re.IGNORECASE)

    def messages(self, rubric: Rubric, *, input: str | None, reference: str, answer: str) -> list[dict[str, str]]:
        """The chat messages asking a judge to grade ``answer`` against ``reference`` with ``rubric``."""
        criteria = "\n".join(self.criterion_line.format(name=c.name, ask=c.ask) for c in rubric.criteria)
        scale = "\n".join(
            self.scale_line.format(score=s, text=rubric.scale[s]) for s in sorted(rubric.scale, reverse=True)
        )
        text = (input or "").strip()
        if len(text) > self.input_max_chars:
            text = text[: self.input_max_chars] + " [...]"
        user = self.user.format(
            task=rubric.task.strip(),
            criteria=criteria,
            scale=scale,
            input=text or "(none)",
            reference=reference.strip(),
            answer=answer.strip() or self.empty_answer,
        )
        return [{"role": "system", "content": self.system.strip()}, {"role": "user", "content": user}]

    def retry_messages(self, first: list[dict[str, str]], reply: str) -> list[dict[str, str]]:
        """The second attempt after an unparseable reply: the conversation plus a format reminder."""
        return [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": self.retry.strip()}]

    def parse(self, reply: str) -> int | None:
        """The score on the reply's last non-empty line, or None (a parse failure, never a default score)."""
        lines = [line.strip() for line in (reply or "").splitlines() if line.strip()]
        if not lines:
            return None
        m = self._pattern.fullmatch(lines[-1])
        if not m:
            return None
        value = int(m.group(1))
        return value if self.scale_min <= value <= self.scale_max else None


class ProbeChecks(_Data):
    reference: dict[str, float]
    empty: dict[str, float]
    off_topic: dict[str, float]
    truncated: dict[str, float]


class ProbeSettings(_Data):
    version: int
    sample: int
    checks: ProbeChecks


def _validate(cls: type[_Data], path: Any, what: str) -> Any:
    return load_settings(cls, path, what)


def _folder(folder: str | Path | None):
    return Path(folder) if folder is not None else resources.files("medsbench.judge").joinpath("rubrics")


@functools.lru_cache(maxsize=4)
def _load_all(folder: str | None) -> tuple[dict[str, Rubric], PromptTemplate, ProbeSettings]:
    root = _folder(folder)
    rubrics: dict[str, Rubric] = {}
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml") or entry.name in (PROMPT_FILE, PROBES_FILE):
            continue
        rubric = _validate(Rubric, entry, "judge rubric")
        if rubric.id in rubrics:
            raise MedsbenchError(f"duplicate rubric id '{rubric.id}'", where=str(entry))
        rubrics[rubric.id] = rubric
    template = _validate(PromptTemplate, root.joinpath(PROMPT_FILE), "judge prompt template")
    probes = _validate(ProbeSettings, root.joinpath(PROBES_FILE), "judge probe settings")
    want = set(range(template.scale_min, template.scale_max + 1))
    for rubric in rubrics.values():
        if set(rubric.scale) != want:
            raise MedsbenchError(
                f"rubric '{rubric.id}' must describe every score {template.scale_min}..{template.scale_max}",
                where=str(root),
            )
    if GENERIC not in rubrics:
        raise MedsbenchError(f"no '{GENERIC}' rubric (the fallback)", where=str(root))
    return rubrics, template, probes


def load_rubrics(folder: str | Path | None = None) -> tuple[dict[str, Rubric], PromptTemplate, ProbeSettings]:
    """All rubrics (by id), the prompt template and the probe settings (packaged, or from ``folder``)."""
    return _load_all(str(folder) if folder is not None else None)


def rubric_for(task_id: str, category: str | None, rubrics: dict[str, Rubric]) -> Rubric:
    """The rubric naming ``task_id``, else the one naming ``category``, else ``generic``."""
    for rubric in rubrics.values():
        if task_id in rubric.applies_to.tasks:
            return rubric
    for rubric in rubrics.values():
        if category and category in rubric.applies_to.categories:
            return rubric
    return rubrics[GENERIC]
