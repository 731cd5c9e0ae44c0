"""The `medsbench score` table and the `medsbench judge` reliability table are readable in an
80-column terminal: long task ids wrap, the score columns stay, short ids are never cut."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from rich.console import Console

LONG_ID = "task_" + "private_clinical_triage_benchmark_with_a_very_long_name_xy"  # 63 characters


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def test_score_table_fits_80_columns_with_a_63_character_task_id(tmp_path):
    assert len(LONG_ID) == 63
    rows = []
    for i in range(4):
        rows += [
            {"task_id": "task57", "id": str(i), "input": "Q?\nA. a\nB. b\nC. c\nD. d", "reference": "The right answer is B: b.",
             "output": "B" if i else "C"},
            {"task_id": "task114", "id": str(i), "input": "q", "reference": "What is the dose of aspirin?",
             "output": "aspirin dose"},
            {"task_id": LONG_ID, "id": str(i), "input": "q", "reference": "entailment", "output": "entailment",
             "category": "nli"},
            {"task_id": "task1001", "id": str(i), "input": "q", "reference": "yes", "output": "no", "category": "fact_verification"},
        ]
    pred = tmp_path / "predictions.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    env = {**os.environ, "COLUMNS": "80", "LINES": "200"}
    proc = subprocess.run([sys.executable, "-m", "medsbench.cli", "score", str(pred), "--bootstrap", "50"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stdout)
    assert max(map(len, lines)) <= 80, "\n".join(lines)
    row = {tid: next(line for line in lines if line.startswith(tid)) for tid in ("task57", "task114", "task1001")}
    # short ids whole, and every score column on their row: n, metric, strict, reference, CI, parse, empty, majority
    cells = row["task57"].split()
    assert cells[:5] == ["task57", "4", "acc", "75.00", "75.00"] and cells[6:] == ["0.0%", "0.0%", "100!"]
    assert re.fullmatch(r"\d+\.\d-100\.0", cells[5])  # the 95% CI
    assert row["task114"].split()[:4] == ["task114", "4", "B1/RL", row["task114"].split()[3]] and "/" in row["task114"].split()[3]
    assert row["task1001"].split()[:5] == ["task1001", "4", "acc", "0.00", "0.00"]
    # the long id wraps onto several lines (nothing cut), its first line keeps the scores
    first = next(i for i, line in enumerate(lines) if line.startswith(LONG_ID[:8]))
    assert "100.00" in lines[first]
    chunks = [lines[first].split()[0]]
    for line in lines[first + 1 :]:
        if len(line.split()) != 1:
            break
        chunks.append(line.strip())
    assert "".join(chunks) == LONG_ID and len(chunks) > 1


def _judged():
    from medsbench.records.judged import Agreement, JudgedResults, JudgeInfo, ProbeSummary, ScoreSummary, TaskJudged

    probes = {k: ProbeSummary(n=10, n_scored=10, passed=9, pass_rate=0.9) for k in ("reference", "empty", "off_topic", "truncated")}
    summary = ScoreSummary(n=40, n_scored=40, mean=3.2, ci95=(2.9, 3.5), parse_failure_rate=0.0)
    task = TaskJudged(rubric="summarization@1", n=40, judges={"default": summary, "gpt-4o-mini": summary}, jury=summary,
                      agreement=Agreement(n_items=40, krippendorff_alpha=0.61, cohen_kappa=0.58),
                      rouge_l_spearman={"default": 0.41, "gpt-4o-mini": -0.12, "jury": 0.3},
                      probes={"default": probes, "gpt-4o-mini": probes, "jury": probes})
    return JudgedResults(run="run1", created="2026-01-01T00:00:00Z", template="judge@1", rubrics={"summarization": "summarization@1"},
                         judges=[JudgeInfo(name=n, spec=n, identity={}) for n in ("default", "gpt-4o-mini")],
                         tasks={"task114": task, LONG_ID: task})


def test_judge_reliability_table_fits_80_columns_and_keeps_task_ids():
    from medsbench.commands.judge import render

    console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115 - closed with the console
    render(_judged(), console)
    text = console.export_text()
    lines = _lines(text)
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Reliability"))
    rel = lines[start:]
    assert max(map(len, rel)) <= 80, "\n".join(rel)
    rows = [line for line in rel if line.startswith("task114")]
    assert rows and rows[0].split() == ["task114", "default", "9/10", "90%", "9/10", "90%", "9/10", "90%", "9/10", "90%",
                                        "0.61", "0.58", "0.41"]
    assert any(line.split()[:2] == [LONG_ID[:18], "default"] or line.startswith(LONG_ID[:8]) for line in rel)
