"""Sharded evaluation: `eval --shard I/N` in separate processes, then `runs merge`, give the run an
unsharded eval writes: byte for byte when the unsharded run reads the same result cache (timings
come from it), and the same outputs, official CSV and metrics when it generates everything again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medsbench.errors import MedsbenchError
from test_runs import make_workspace


def _eval(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "medsbench.cli", "eval", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def _rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "predictions.jsonl").read_text().splitlines()]


def test_two_shard_processes_merge_into_the_unsharded_run(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", n_mcqa=7, n_ner=5)
    common = ["--model", f"hf:{tiny_model_dir}", "--tasks", "task57,task126", "-w", str(ws), "--no-progress",
              "--max-new-tokens", "6"]
    procs = [
        subprocess.Popen([sys.executable, "-m", "medsbench.cli", "eval", *common, "--shard", f"{i + 1}/2",
                          "--out", str(tmp_path / f"shard{i}"), "--cache", str(tmp_path / "cache.sqlite")],
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    shard_rows = [_rows(tmp_path / f"shard{i}") for i in range(2)]
    assert [len(r) for r in shard_rows] == [4 + 3, 3 + 2]  # positions 0,2,4,6 | 1,3,5 of task57; 0,2,4 | 1,3 of task126 (shards 1/2 | 2/2)

    from medsbench.cli import main

    with pytest.raises(SystemExit) as done:
        main(["runs", "merge", str(tmp_path / "shard1"), str(tmp_path / "shard0"), "--out", str(tmp_path / "merged")])
    assert done.value.code in (0, None)

    merged = tmp_path / "merged"
    assert [r["id"] for r in _rows(merged)] == [f"q{i}" for i in range(7)] + [f"t{i}" for i in range(5)]
    # the unsharded run on the shards' cache: every file byte-identical
    proc = _eval([*common, "--out", str(tmp_path / "whole"), "--cache", str(tmp_path / "cache.sqlite")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    whole = tmp_path / "whole"
    for name in ("predictions.jsonl", "predictions.csv", "results.json"):
        assert (merged / name).read_bytes() == (whole / name).read_bytes(), name
    # an independent unsharded run (its own cache: every item generated again, fp32 greedy)
    proc = _eval([*common, "--out", str(tmp_path / "fresh"), "--cache", str(tmp_path / "fresh.sqlite")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    fresh = tmp_path / "fresh"
    assert _rows(merged) == _rows(fresh)
    assert (merged / "predictions.csv").read_bytes() == (fresh / "predictions.csv").read_bytes()
    results = [json.loads((run / "results.json").read_text()) for run in (merged, fresh)]
    for res in results:  # generation times differ between runs; tokens and everything else must not
        for t in [*res["tasks"].values(), res]:
            assert t["usage"]["item_seconds"] is not None
            t["usage"]["item_seconds"] = None
    assert results[0]["tasks"] == results[1]["tasks"]  # only the predictions file's hash (timings) differs
    assert results[0]["usage"] == results[1]["usage"]

    from medsbench.records.folder import RunFolder

    m = RunFolder(merged).manifest()
    assert m.status == "finished" and m.config.shard is None and len(m.merged_from) == 2
    assert {tid: t.n for tid, t in m.tasks.items()} == {"task57": 7, "task126": 5}


def test_merge_refuses_gaps_duplicates_and_mismatches(tmp_path):
    from medsbench.pipeline import evaluate
    from medsbench.pipeline import merge_runs
    from medsbench.records.folder import RunFolder
    from test_runs import CountingBackend

    ws = make_workspace(tmp_path / "ws", n_mcqa=5, n_ner=3)
    for i in range(3):  # shard I of N counts from 1, like "1 of 3"
        evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / f"s{i}", shard=f"{i + 1}/3", progress=False)
    evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "other", shard="2/3", seed=7, progress=False)
    evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "plain", progress=False)
    with pytest.raises(MedsbenchError, match=r"missing shard\(s\) 3/3"):
        merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")
    with pytest.raises(MedsbenchError, match="given twice"):
        merge_runs([tmp_path / "s0", tmp_path / "s1", tmp_path / "s1", tmp_path / "s2"], tmp_path / "m")
    with pytest.raises(MedsbenchError, match="measures something else.*seed"):
        merge_runs([tmp_path / "s0", tmp_path / "other", tmp_path / "s2"], tmp_path / "m")
    with pytest.raises(MedsbenchError, match="not a shard"):
        merge_runs([tmp_path / "plain"], tmp_path / "m")
    for bad in ("0/3", "4/3", "1/0", "x"):  # 1-based: "0/3" is no shard of three
        with pytest.raises(MedsbenchError, match="--shard must be I/N with 1 <= I <= N"):
            evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "bad", shard=bad, progress=False)
    # the merge never overwrites its own input, nor another run
    with pytest.raises(MedsbenchError, match="one of the shards"):
        merge_runs([tmp_path / "s2", tmp_path / "s0", tmp_path / "s1"], tmp_path / "s0")
    with pytest.raises(MedsbenchError, match="already holds a run"):
        merge_runs([tmp_path / "s2", tmp_path / "s0", tmp_path / "s1"], tmp_path / "plain")
    assert (tmp_path / "s0" / "predictions.jsonl").is_file() and RunFolder(tmp_path / "plain").manifest().config.shard is None
    merged = merge_runs([tmp_path / "s2", tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")
    assert merged.status == "finished"
    assert (tmp_path / "m" / "predictions.csv").read_bytes() == (tmp_path / "plain" / "predictions.csv").read_bytes()
