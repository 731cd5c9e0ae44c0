"""The leaderboard: results store (SQLite), static site builder, submission validation."""

from medsbench.board.site import build_site
from medsbench.board.store import Store
from medsbench.board.submit import SubmissionReport, validate_submission

__all__ = ["Store", "SubmissionReport", "build_site", "validate_submission"]
