"""Pass 2 of the MedS-Ins build: chat records of the selected instances.

The building process walks the clean instances in task and file order and
decides how often each is emitted (``mixer.Selector``: exact counts, seeded);
:func:`emit_chunk` (pure, in a worker) turns a chunk of them into records:
instruction (original definition or a paraphrase) and shot count from
``mixer.VariantChooser``, demos from the task's seeded pool
(``prompts.sample_demos``, never the instance itself) and the evaluation prompt
(``prompts.build_prompt``). Every choice is seeded by (seed, task id, instance
id, repeat), so the records do not depend on chunking or workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medsbench.ins.mixer import VariantChooser
from medsbench.prompts import build_prompt, sample_demos
from medsbench.tasks.format import Instance


@dataclass(frozen=True)
class TaskContext:
    """What a worker needs to write one task's records (sent with each of its chunks)."""

    task_id: str
    original: str
    paraphrases: tuple[str, ...]
    pool: tuple[Instance, ...]
    seed: int
    shot_probs: dict[int, float]
    paraphrase_prob: float


@dataclass(frozen=True)
class FileLabels:
    category: str
    source: str
    language: str


@dataclass(frozen=True)
class EmitJob:
    task: TaskContext
    labels: FileLabels
    items: list[tuple[str, str, str, int]]  # (instance id, input, first reference, times to emit), in file order


@dataclass
class Records:
    """Columns of the records of one chunk, in order (``export.ShardWriter.add_records`` writes them)."""

    system: list[str] = field(default_factory=list)
    user: list[str] = field(default_factory=list)
    assistant: list[str] = field(default_factory=list)
    id: list[str] = field(default_factory=list)
    task_id: str = ""
    labels: FileLabels = FileLabels("", "", "")
    shots: list[int] = field(default_factory=list)
    paraphrase: list[int] = field(default_factory=list)  # paraphrase index, -1 = original definition

    def __len__(self) -> int:
        return len(self.id)


def slim(inst: Instance) -> Instance:
    """The fields a record needs (id, input, first reference), for the demo pool and for workers."""
    return Instance(inst.id, inst.input, [inst.target])


def emit_chunk(job: EmitJob) -> Records:
    t = job.task
    chooser = VariantChooser(t.seed, t.shot_probs, t.paraphrase_prob)
    rec = Records(task_id=t.task_id, labels=job.labels)
    for iid, text, target, times in job.items:
        inst = Instance(iid, text, [target])
        for r in range(times):
            v = chooser.choose(t.task_id, inst.id, r, len(t.paraphrases))
            definition = t.paraphrases[v.paraphrase] if v.paraphrase >= 0 else t.original
            demos = sample_demos(t.pool, v.shots, seed=v.demo_seed, task_id=t.task_id, instance=inst) if v.shots else []
            p = build_prompt(definition, inst, demos)
            rec.system.append(p.system)
            rec.user.append(p.user)
            rec.assistant.append(inst.target)
            rec.id.append(f"{t.task_id}:{inst.id}" + (f"#{r}" if r else ""))
            rec.shots.append(len(demos))
            rec.paraphrase.append(v.paraphrase)
    return rec
