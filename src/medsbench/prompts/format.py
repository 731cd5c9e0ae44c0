"""The paper's prompt format, shared by evaluation and MedS-Ins instruction data.

Byte-for-byte the official evaluation prompt (MAGIC-AI4Med/MedS-Ins,
``Evaluation/EvalDataset.py``, few-shot path)::

    few_shot = "\\n\\n".join("Input:\\n" + x + "\\n\\nOutput:\\n" + y + "\\n" for each demo) + "\\n\\n"
    instruction = few_shot + definition + "Please learn from the few-shot cases to see what content you have to output."
    query = "Input:\\n" + input + "\\nOutput:\\n"

Note the official quirks kept on purpose so prompts (and scores) compare with
the paper: two blank lines between demos and *no* separator between the
definition and the few-shot hint. ``style="readable"`` offers one blank line
between demos and a newline before the hint.

Zero-shot: the official code (the ``no_context`` path of ``EvalDataset.py``)
sends the definition as the instruction and the *raw* input as the query, with
no ``Input:``/``Output:`` frame; ``build_prompt(..., frame=False)`` reproduces
that. medsbench's own protocol keeps the frame in zero-shot too
(``frame=True``, the default here), so a zero-shot query looks like a
few-shot one; which one a run uses is set by its evaluation protocol
(:mod:`medsbench.prompts.protocols`).

Chat models get system = instruction block, user = query (rendered by the
tokenizer's own template, see :mod:`medsbench.prompts.render`); base models get
the official plain concatenation ``instruction + "\\n" + query``.

Demos are chosen with a seed derived from (seed, task id, instance id), never
include the item itself (the official script samples them from the test set
and can pick the item, a leak), and so do not depend on batch size, order,
``--limit`` or sharding.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from medsbench.errors import MedsbenchError
from medsbench.fileio import stable_seed
from medsbench.tasks.format import Instance

FEW_SHOT_SUFFIX = "Please learn from the few-shot cases to see what content you have to output."
PROMPT_STYLES = ("official", "readable")


def _check_style(style: str) -> None:
    if style not in PROMPT_STYLES:
        raise MedsbenchError(f"unknown prompt style '{style}' (known: {', '.join(PROMPT_STYLES)})")


def format_demo(demo_input: str, demo_output: str) -> str:
    return f"Input:\n{demo_input}\n\nOutput:\n{demo_output}\n"


def build_instruction(definition: str, demos: Sequence[tuple[str, str]] = (), *, style: str = "official") -> str:
    """The instruction block: demos (if any), then the definition and the few-shot hint."""
    _check_style(style)
    if not demos:
        return definition
    cases = [format_demo(i, o) for i, o in demos]
    if style == "official":
        return "\n\n".join(cases) + "\n\n" + definition + FEW_SHOT_SUFFIX
    return "\n".join(cases) + "\n" + definition + "\n" + FEW_SHOT_SUFFIX


def build_query(text: str, *, frame: bool = True) -> str:
    """The query: ``Input:/Output:`` framed, or the raw input (the official zero-shot query)."""
    return f"Input:\n{text}\nOutput:\n" if frame else text


@dataclass(frozen=True)
class Prompt:
    """A prompt before chat rendering: system = instruction block, user = query."""

    system: str
    user: str
    demo_ids: tuple[str, ...] = ()

    def messages(self) -> list[dict[str, str]]:
        if not self.system:
            return [{"role": "user", "content": self.user}]
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]

    def plain(self) -> str:
        """Plain concatenation for base models without a chat template (official ``default_build_inputs``)."""
        return f"{self.system}\n{self.user}" if self.system else self.user


def sample_demos(
    pool: Sequence[Instance],
    k: int,
    *,
    seed: int,
    task_id: str,
    instance: Instance,
) -> list[Instance]:
    """Pick ``k`` demos from ``pool`` for ``instance``, never the instance itself.

    The choice depends only on (seed, task id, instance id) and the pool, so it
    is identical across batch sizes, orders, limits and shards. Items whose
    input equals the query's input are excluded too (duplicates would leak).
    """
    if k <= 0 or not pool:
        return []
    rng = random.Random(stable_seed(seed, task_id, instance.id))

    def ok(d: Instance) -> bool:
        return d.id != instance.id and d.input != instance.input

    # Draw a few spare indices and filter: O(k) per item even for huge pools.
    n = len(pool)
    drawn = [pool[i] for i in rng.sample(range(n), min(n, k + 8))]
    chosen = [d for d in drawn if ok(d)][:k]
    if len(chosen) == k or len(drawn) == n:
        return chosen
    # Pathological pools (many copies of the item): fall back to a full scan.
    candidates = [d for d in pool if ok(d)]
    return candidates if len(candidates) <= k else rng.sample(candidates, k)


def build_prompt(
    definition: str,
    instance: Instance,
    demos: Sequence[Instance] = (),
    *,
    style: str = "official",
    frame: bool = True,
) -> Prompt:
    """The paper's prompt for ``instance`` with the given demos (first reference as demo output).

    ``frame=False`` sends the raw input as the query (the official zero-shot path);
    use it only without demos.
    """
    return Prompt(
        system=build_instruction(definition, [(d.input, d.target) for d in demos], style=style),
        user=build_query(instance.input, frame=frame),
        demo_ids=tuple(d.id for d in demos),
    )
