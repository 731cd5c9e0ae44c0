"""Typed stage records: the files that pass between stages, each with one reader and one writer.

- :mod:`medsbench.records.predictions`: ``PredictionRow`` (``predictions.jsonl`` and the official
  ``predictions.csv``), written by :mod:`medsbench.runs`, read by :mod:`medsbench.metrics` and
  :mod:`medsbench.board`.
- :mod:`medsbench.records.manifest`: ``RunManifest`` (``manifest.json``), written and read by
  :mod:`medsbench.runs`, read by :mod:`medsbench.board`.
- :mod:`medsbench.records.judged`: ``JudgedResults`` (``judged.json``), written by
  :mod:`medsbench.judge`, read by :mod:`medsbench.board`.
- :mod:`medsbench.records.results`: ``Results`` (``results.json``), written by
  :mod:`medsbench.metrics`, read by :mod:`medsbench.board` and ``medsbench compare``.

Every record carries ``schema_version``; a reader refuses a file of another version or shape in one
line naming the file (see :func:`medsbench.records.base.load_model`).
"""

from medsbench.records.base import SCHEMA_VERSION, Record
from medsbench.records.judged import JudgedResults
from medsbench.records.predictions import (
    CSV_COLUMNS,
    PredictionRow,
    read_predictions,
    write_official_csv,
    write_predictions,
)

__all__ = [
    "CSV_COLUMNS",
    "JudgedResults",
    "SCHEMA_VERSION",
    "PredictionRow",
    "Record",
    "read_predictions",
    "write_official_csv",
    "write_predictions",
]
