"""End to end: `medsbench eval --model default` (the real SmolLM2-135M-Instruct) on a few items of two real tasks."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from conftest import need_module, raw_dir


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from medsbench.sources import convert

    ws = tmp_path_factory.mktemp("e2e-ws")
    convert("medqa_usmle", raw_dir("medqa_usmle"), ws / "tasks")
    convert("bc5cdr_chem", raw_dir("bc5cdr"), ws / "tasks")
    return ws


@pytest.mark.slow
def test_default_model_end_to_end(workspace):
    need_module("gguf")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "medsbench.cli", "eval", "--model", "default", "--tasks", "task57,task126",
           "--limit", "2", "--max-new-tokens", "24", "-w", str(workspace), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "task57" in proc.stdout and "task126" in proc.stdout and "accuracy" in proc.stdout  # summary table
    run = Path(next(line for line in proc.stderr.splitlines() if line.startswith("run folder: "))[len("run folder: "):])
    assert run.parent == workspace / "runs" and run.name.startswith("default-")  # one folder per configuration
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["error"]) for r in rows] == [("task57", None)] * 2 + [("task126", None)] * 2
    assert all(r["output"].strip() and 0 < r["output_tokens"] <= 24 for r in rows)
    # SmolLM2's own ChatML template: system = the instruction block, user = the query.
    from medsbench.tasks.format import read_meta

    definition = read_meta(workspace / "tasks" / "task57_medqa_en.test.json")["Definition"][0]
    first = rows[0]
    assert first["prompt"].startswith(f"<|im_start|>system\n{definition}<|im_end|>\n<|im_start|>user\nInput:\n")
    assert first["prompt"].endswith(f"Input:\n{first['input']}\nOutput:\n<|im_end|>\n<|im_start|>assistant\n")
    assert len(rows[2]["demo_ids"]) == 3 and rows[2]["id"] not in rows[2]["demo_ids"]
    results = json.loads((run / "results.json").read_text())
    assert set(results["tasks"]) == {"task57", "task126"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["backend"]["dtype"] == "float32"

    # The backend's batched output equals the official one-item `generate` loop on the same prompt.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from medsbench.models.default import default_model_dir

    torch.set_num_threads(1)
    folder = default_model_dir()
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    for row in (rows[0], rows[2]):
        enc = tok(row["prompt"], return_tensors="pt", add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=24, do_sample=False)
        assert tok.decode(out[0][enc["input_ids"].shape[1]:], skip_special_tokens=True) == row["output"]

    # Re-running the same command is free: everything comes from the cache.
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert again.returncode == 0 and "4 items (4 cached" in again.stdout.replace("\n", " ")
