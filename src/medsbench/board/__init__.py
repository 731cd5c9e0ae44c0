"""The leaderboard: ``ingest`` (a run folder -> a typed BoardRun), ``Store`` (SQLite, SQL only),
``publish.add_run`` (ingest -> comparisons -> store), the static site builder and submission validation.

Names are loaded on first use (PEP 562), so importing one module of the package loads only what it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AddOptions": "medsbench.board.ingest", "BoardRun": "medsbench.board.ingest", "ingest": "medsbench.board.ingest",
    "Store": "medsbench.board.store", "add_run": "medsbench.board.publish", "build_site": "medsbench.board.site",
    "SubmissionReport": "medsbench.board.submit", "validate_submission": "medsbench.board.submit",
    "SuspicionFlag": "medsbench.board.flags", "suspicion_flags": "medsbench.board.flags",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'medsbench.board' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
