"""Hostile sizes: an input certainly longer than the model context fails its item at planning, untokenized."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from medsbench.models.base import BaseBackend, Rendered
from medsbench.prompts import Prompt
from medsbench.runs.plan import MAX_CHARS_PER_TOKEN, too_long
from medsbench.tasks.format import Instance, write_task


class _Counted(BaseBackend):
    def render(self, prompt: Prompt) -> Rendered:
        return Rendered(prompt.plain(), prompt=prompt.plain())


def test_the_bound_is_context_times_the_longest_token():
    plain = _Counted()
    assert too_long("x" * (100 * MAX_CHARS_PER_TOKEN), 100, plain) is None  # could still fit: tokenized as usual
    why = too_long("x" * (100 * MAX_CHARS_PER_TOKEN + 1), 100, plain)
    assert why and "certainly longer than the model context of 100 tokens" in why
    assert too_long("x" * 10**7, None, plain) is None  # no known context (API backends): never judged here
    tight = _Counted()
    tight.max_token_chars = 5  # type: ignore[attr-defined]  # a backend that knows its tokenizer's longest token
    assert too_long("x" * 500, 100, tight) is None and too_long("x" * 501, 100, tight)


def test_hf_backend_knows_its_longest_token(tiny_model_dir):
    from medsbench.models.hf import HFBackend

    backend = HFBackend(str(tiny_model_dir), threads=1)
    tok = backend.tokenizer
    longest = max(len(tok.convert_tokens_to_string([t])) for t in tok.get_vocab())
    assert backend.max_token_chars == longest and 1 < longest < MAX_CHARS_PER_TOKEN


def test_a_50_mb_instance_fails_alone_and_fast_through_medsbench_eval(tmp_path, tiny_model_dir):
    """Through the CLI on the tiny model: the huge item is a failed row with a clear error (never sent,
    never tokenized: the run would otherwise spend minutes and GBs in the tokenizer), the others are answered."""
    tasks = tmp_path / "ws" / "tasks"
    definition = {"Definition": ["Given a question and a list of options, select the correct answer."],
                  "Categories": ["Question Answering"]}
    huge = "The patient reports chest pain. " * (50 * 1024 * 1024 // 32)
    write_task(tasks / "task57_medqa_en.test.json", definition,
               [Instance("q0", "Question 0?\nA. yes\nB. no", ["A"]), Instance("q1", huge, ["B"]),
                Instance("q2", "Question 2?\nA. yes\nB. no", ["B"])])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-m", "medsbench.cli", "eval", "--model", f"hf:{tiny_model_dir},threads=1",
                           "--tasks", "task57", "-w", str(tmp_path / "ws"), "--out", str(tmp_path / "run"),
                           "--max-new-tokens", "4", "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]  # failed items make the exit code 1
    rows = [json.loads(line) for line in Path(tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"]
    assert rows[0]["error"] is None and rows[2]["error"] is None and rows[0]["output"] is not None
    assert rows[1]["output"] is None and rows[1]["prompt_tokens"] is None
    assert f"input of {len(huge)} characters is certainly longer than the model context of 512 tokens" in rows[1]["error"]
    assert "certainly longer" in proc.stderr
