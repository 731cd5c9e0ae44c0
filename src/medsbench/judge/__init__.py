"""medsbench.judge: model-graded (judged) scoring of free-text answers, with reliability checks.

Library entry points: :func:`judge_run` (writes ``RUN/judged.json``, a
:class:`medsbench.records.judged.JudgedResults`), :func:`load_rubrics`, :func:`rubric_for`.
Rubrics and the judge prompt are versioned data files in ``medsbench/judge/rubrics/``.
"""

from medsbench.judge.rubric import PromptTemplate, Rubric, load_rubrics, rubric_for
from medsbench.judge.run import judge_run, resolve_cache, select_items

__all__ = ["PromptTemplate", "Rubric", "judge_run", "load_rubrics", "resolve_cache", "rubric_for", "select_items"]
