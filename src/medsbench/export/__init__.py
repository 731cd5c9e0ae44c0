"""Exports of MedS-Bench to other tools: lm-evaluation-harness task groups, inspect_ai tasks,
and Hugging Face datasets (task files and scored runs) with dataset cards.

Every harness export carries OUR rendered prompts (:mod:`medsbench.export.items`) and scores with
OUR scorers, so the other tool's prompts and numbers equal ``medsbench eval``/``medsbench score``.
Heavy libraries (lm_eval, inspect_ai, datasets) are imported only where used.
"""

from medsbench.export.items import ExportSettings, ExportTask, export_tasks, score_rows

__all__ = ["ExportSettings", "ExportTask", "export_tasks", "score_rows"]
