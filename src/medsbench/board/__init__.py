"""The leaderboard: :mod:`~medsbench.board.ingest` (a run folder -> a checked, typed BoardRun),
:mod:`~medsbench.board.store` (SQLite, SQL only), :mod:`~medsbench.board.publish` (``add_run``: ingest ->
comparisons -> store), :mod:`~medsbench.board.site` (the static site) and :mod:`~medsbench.board.submit`
(submission validation). Import the module you need: importing one loads only what it needs.
"""
