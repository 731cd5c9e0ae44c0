"""The leaderboard: results store (SQLite), static site builder, submission validation."""

from medsbench.board.site import build_site
from medsbench.board.store import Store
from medsbench.board.submit import (
    SubmissionReport,
    SuspicionFlag,
    suspicion_flags,
    validate_submission,
)

__all__ = ["Store", "SubmissionReport", "SuspicionFlag", "build_site", "suspicion_flags",
           "validate_submission"]
