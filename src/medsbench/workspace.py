"""``Workspace``: the one owner of a workspace folder's layout (default ``./medsbench-work``).

::

    tasks/              task files (official JSON), one per task and split
    runs/<run>/         run folders (see medsbench.records.folder.RunFolder)
    cache.sqlite        the result cache of every eval in this workspace
    board.sqlite        the leaderboard store; site/ the static site
    mixtures/<name>/    MedS-Ins mixtures; models/<name>/ tuned models
    meds-ins/           the released MedS-Ins task files (medsbench ins pull)
    new-tasks/          task scaffolds (medsbench data new-task)

No other module spells these names: they ask a :class:`Workspace`. Paths made from names that come
from outside (a run name) go through :func:`medsbench.ids.inside`, so they stay in the workspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medsbench.ids import check_name, inside

DEFAULT_WORKSPACE = Path("medsbench-work")


@dataclass(frozen=True)
class Workspace:
    """A workspace folder; ``Workspace()`` is ``./medsbench-work``."""

    root: Path = DEFAULT_WORKSPACE

    @classmethod
    def at(cls, root: str | os.PathLike[str] | None) -> Workspace:
        """The workspace at ``root`` (None: the default folder)."""
        return cls(Path(root) if root is not None else DEFAULT_WORKSPACE)

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def cache(self) -> Path:
        return self.root / "cache.sqlite"

    @property
    def board_store(self) -> Path:
        return self.root / "board.sqlite"

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def mixtures(self) -> Path:
        return self.root / "mixtures"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def meds_ins(self) -> Path:
        return self.root / "meds-ins"

    @property
    def new_tasks(self) -> Path:
        return self.root / "new-tasks"

    @property
    def definitions_sidecar(self) -> Path:
        """Where ``medsbench ins rewrite`` writes instruction paraphrases by default."""
        return self.root / "RewriteDefinitions.json"

    def run_dir(self, name: str) -> Path:
        """``runs/<name>`` for a run name of the :data:`medsbench.ids.NAME` grammar."""
        return inside(self.runs, check_name(name, "run name"))

    def mixture_dir(self, name: str) -> Path:
        return inside(self.mixtures, check_name(name, "mixture name"))

    def model_dir(self, name: str) -> Path:
        return inside(self.models, check_name(name, "model name"))
