"""medsbench: evaluate and build clinical LLMs (MedS-Bench, MedS-Ins, tuning, leaderboard)."""

__version__ = "0.1.0"
