"""The paper's prompt format, shared by evaluation (issue C) and MedS-Ins (issue E).

Instruction block (system turn for chat models)::

    Input:
    {demo input}

    Output:
    {demo output}
    <blank line between demos>
    {definition}
    Please learn from the few-shot cases to see what content you have to output.

With zero demos the instruction block is the definition alone. The query (user
turn) is ``Input:\\n{input}\\nOutput:\\n``. Demos are chosen with a seed derived
from (seed, task id, instance id), never include the item itself, and so do not
depend on batch size, order, ``--limit`` or sharding.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from medsbench.fileio import stable_seed
from medsbench.tasks.format import Instance

FEW_SHOT_SUFFIX = "Please learn from the few-shot cases to see what content you have to output."


def format_demo(demo_input: str, demo_output: str) -> str:
    return f"Input:\n{demo_input}\n\nOutput:\n{demo_output}\n"


def build_instruction(definition: str, demos: Sequence[tuple[str, str]] = ()) -> str:
    """The instruction block: demos (if any), then the definition and the few-shot hint."""
    if not demos:
        return definition
    shots = "\n".join(format_demo(i, o) for i, o in demos)
    return f"{shots}\n{definition}\n{FEW_SHOT_SUFFIX}"


def build_query(text: str) -> str:
    return f"Input:\n{text}\nOutput:\n"


@dataclass(frozen=True)
class Prompt:
    """A prompt before chat rendering: system = instruction block, user = query."""

    system: str
    user: str
    demo_ids: tuple[str, ...] = ()

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]

    def plain(self) -> str:
        """Plain concatenation for base models without a chat template."""
        return f"{self.system}\n\n{self.user}"


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
    candidates = [d for d in pool if d.id != instance.id and d.input != instance.input]
    if len(candidates) <= k:
        return candidates
    return rng.sample(candidates, k)


def build_prompt(
    definition: str,
    instance: Instance,
    demos: Sequence[Instance] = (),
) -> Prompt:
    """The paper's prompt for ``instance`` with the given demos (first reference as demo output)."""
    return Prompt(
        system=build_instruction(definition, [(d.input, d.target) for d in demos]),
        user=build_query(instance.input),
        demo_ids=tuple(d.id for d in demos),
    )
