"""Balance (caps, temperature sampling), exact streaming selection and per-example variants.

Every random choice is seeded from ``medsbench.fileio.stable_seed``: the
instruction and shot count of an example depend only on (seed, task id,
instance id, repeat), never on order, batch or shard boundaries.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from medsbench.fileio import stable_seed
from medsbench.ins.config import BalanceConfig


def allocate(sizes: dict[str, int], bal: BalanceConfig) -> dict[str, int]:
    """Examples to draw per task: p ∝ weight * min(n, cap)^(1/T), water-filled under per-task limits.

    The mixture size is ``bal.total`` or the sum of the capped sizes. A task can
    give at most ``min(n, cap) * max_repeats`` examples; what a task cannot take
    is redistributed over the others (so the total is met whenever it is
    feasible). Integer counts by the largest-remainder method, ties in task order.
    """
    capped = {}
    for t, n in sizes.items():
        cap = bal.caps.get(t, bal.cap)
        capped[t] = min(n, cap) if cap is not None else n
    weight = {t: (c ** (1.0 / bal.temperature)) * bal.weights.get(t, 1.0) if c > 0 else 0.0 for t, c in capped.items()}
    limit = {t: c * bal.max_repeats for t, c in capped.items()}
    total = bal.total if bal.total is not None else sum(capped.values())
    total = min(total, sum(limit.values()))
    fixed: dict[str, int] = {}
    active = [t for t in sizes if weight[t] > 0]
    remaining = total
    while True:
        wsum = sum(weight[t] for t in active)
        if not active or wsum <= 0:
            break
        over = [t for t in active if remaining * weight[t] / wsum >= limit[t]]
        if not over:
            break
        for t in over:
            fixed[t] = limit[t]
            remaining -= limit[t]
        active = [t for t in active if t not in fixed]
    out = {t: 0 for t in sizes}
    out.update(fixed)
    wsum = sum(weight[t] for t in active)
    if active and wsum > 0 and remaining > 0:
        raw = {t: remaining * weight[t] / wsum for t in active}
        base = {t: int(raw[t]) for t in active}
        left = remaining - sum(base.values())
        order = sorted(active, key=lambda t: -(raw[t] - base[t]))  # stable: ties keep task order
        for t in order[:left]:
            base[t] += 1
        out.update(base)
    return out


class Selector:
    """Streams exactly ``target`` emissions over ``available`` items (Knuth's selection sampling).

    Each item is emitted ``target // available`` times, plus once more for a
    seeded uniform choice of ``target % available`` items.
    """

    def __init__(self, available: int, target: int, seed: int) -> None:
        self.left = available
        self.base, self.need = divmod(target, available) if available else (0, 0)
        self.rng = random.Random(seed)

    def next(self) -> int:
        extra = 0
        if self.need and self.rng.random() * self.left < self.need:
            extra = 1
            self.need -= 1
        self.left -= 1
        return self.base + extra


@dataclass(frozen=True)
class Variant:
    paraphrase: int  # index into the task's paraphrases, -1 = original definition
    shots: int
    demo_seed: int


class VariantChooser:
    """Instruction and shot count of one example from a single 64-bit seed."""

    def __init__(self, seed: int, shot_probs: dict[int, float], paraphrase_prob: float) -> None:
        self.seed = seed
        total = sum(shot_probs.values())
        acc, self.cum = 0.0, []
        for k, p in shot_probs.items():
            if p <= 0:
                continue
            acc += p / total
            self.cum.append((acc, k))
        self.paraphrase_prob = paraphrase_prob

    def choose(self, task_id: str, instance_id: str, repeat: int, n_paraphrases: int) -> Variant:
        s = stable_seed(self.seed, "variant", task_id, instance_id, repeat)
        u_para = (s & 0x1FFFFF) / float(1 << 21)
        u_shot = ((s >> 21) & 0x1FFFFF) / float(1 << 21)
        pick = s >> 42
        para = pick % n_paraphrases if n_paraphrases and u_para < self.paraphrase_prob else -1
        k = self.cum[-1][1]
        for edge, kk in self.cum:
            if u_shot < edge:
                k = kk
                break
        demo_seed = self.seed if repeat == 0 else stable_seed(self.seed, "repeat", repeat)
        return Variant(para, k, demo_seed)


class Reservoir:
    """A seeded uniform sample of at most ``size`` items from a stream (algorithm R)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.items: list = []
        self.seen = 0
        self.rng = random.Random(seed)

    def offer(self, item) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
            return
        j = self.rng.randrange(self.seen)
        if j < self.size:
            self.items[j] = item

    def sample(self) -> Sequence:
        return self.items
