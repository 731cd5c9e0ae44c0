"""`medsbench data export` / `runs export`: task files and scored runs as Hugging Face datasets with a card."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, need_module, raw_dir

datasets = need_module("datasets")


def cli(*args: str, ok: bool | None = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "medsbench.cli", *args], capture_output=True, text=True, env=env, timeout=600)
    assert ok is None or (proc.returncode == 0) == ok, proc.stderr[-2000:]
    return proc


def card(folder) -> dict:
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from medsbench.sources import convert

    ws = tmp_path_factory.mktemp("hf-ws")
    convert("meqsum", raw_dir("meqsum"), ws / "tasks")
    convert("medqa_usmle", raw_dir("medqa_usmle"), ws / "tasks")
    return ws


def test_task_files_as_parquet_dataset_with_card(ws, tmp_path):
    from medsbench.fileio import sha256_file
    from medsbench.tasks.format import iter_instances

    out = tmp_path / "ds"
    proc = cli("data", "export", "--tasks", "task114,task57", "-w", str(ws), "--out", str(out))
    files = {split: ws / "tasks" / f"task114_meqsum.{split}.json" for split in ("test", "train")}
    instances = {split: list(iter_instances(p)) for split, p in files.items()}
    n114 = sum(len(v) for v in instances.values())
    n57 = len(list(iter_instances(ws / "tasks" / "task57_medqa_en.test.json")))
    assert f"wrote {n114 + n57} instance(s) of 2 task(s)" in proc.stdout
    meta = card(out)
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == {"task57", "task114"}
    assert {f["split"]: f["path"] for f in configs["task114"]["data_files"]} == {
        "test": "data/task114/test.parquet", "train": "data/task114/train.parquet"}
    block = meta["medsbench"]
    assert block["counts"]["task114"] == {s: len(v) for s, v in instances.items()}
    info = block["configs"]["task114"]
    assert info["license"] == "CC BY 4.0" and info["files"]["test"]["sha256"] == sha256_file(files["test"])
    assert info["files"]["test"]["source"] == "MeQSum" and "hash" in info["split_method"]
    assert meta["license"] == "other"  # CC BY 4.0 and MIT: each config names its own
    # Loads with datasets: the parquet files directly, and the folder through the card's configs.
    test = datasets.load_dataset("parquet", data_files={"test": str(out / "data/task114/test.parquet")})["test"]
    assert test.num_rows == len(instances["test"])
    assert [(r["id"], r["input"], r["output"]) for r in test] == [(i.id, i.input, i.output) for i in instances["test"]]
    by_card = datasets.load_dataset(str(out), "task114")
    assert {s: by_card[s].num_rows for s in by_card} == block["counts"]["task114"]


def test_task_files_save_to_disk_format(ws, tmp_path):
    out = tmp_path / "disk"
    cli("data", "export", "--tasks", "task114", "-w", str(ws), "--out", str(out), "--format", "hf")
    dd = datasets.load_from_disk(str(out / "task114"))
    assert set(dd) == {"test", "train"} and dd["test"].column_names == ["id", "input", "output"]
    meta = card(out)
    assert meta["configs"][0]["data_files"][0]["path"] == "task114/test" and meta["license"] == "cc-by-4.0"
    bad = cli("data", "export", "--tasks", "task114", "-w", str(ws), "--out", str(tmp_path / "x"), "--format", "csv", ok=False)
    assert bad.stderr.strip() == "error: unknown format 'csv' (known: parquet, hf)"


def test_push_refuses_cleanly_offline(ws, tmp_path):
    out = tmp_path / "push"
    proc = cli("data", "export", "--tasks", "task114", "-w", str(ws), "--out", str(out), "--push-to-hub", "me/meds", ok=False)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot push to the Hub (me/meds): offline mode is on" in lines[0], proc.stderr
    assert (out / "data/task114/test.parquet").is_file()  # the export itself was written
    disk = tmp_path / "disk"
    cli("data", "export", "--tasks", "task114", "-w", str(ws), "--out", str(disk), "--format", "hf")
    from medsbench.errors import MedsbenchError
    from medsbench.export.hf import push_to_hub

    with pytest.raises(MedsbenchError, match="not a parquet export"):
        push_to_hub(disk, "me/meds")


def test_run_items_with_per_item_scores(ws, tiny_model_dir, tmp_path):
    from medsbench.metrics import score_predictions
    from medsbench.records import read_predictions

    run = tmp_path / "run"
    # The tiny model's 512-token context cannot take some MedQA prompts: those items fail for real (exit 1).
    cli("eval", "--model", f"hf:{tiny_model_dir}", "--tasks", "task57,task114", "--limit", "4", "--max-new-tokens", "4",
        "-w", str(ws), "--out", str(run), "--no-progress", ok=None)
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    mcqa = [r for r in rows if r["task_id"] == "task57"]
    failed = [i for i, r in enumerate(mcqa) if r["error"]]
    live = [i for i, r in enumerate(mcqa) if not r["error"]]
    assert failed and live
    mcqa[live[0]]["output"] = mcqa[live[0]]["reference"]  # a right answer among the random ones
    text = [r for r in rows if r["task_id"] == "task114"]
    text[0]["output"] = text[0]["reference"]
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ds"
    proc = cli("runs", "export", str(run), "--out", str(out))
    assert "wrote 8 item(s) of 2 task(s)" in proc.stdout
    meta = card(out)
    assert meta["medsbench"]["model"] == f"hf:{tiny_model_dir}" and meta["medsbench"]["protocol"] == "medsbench"
    from medsbench.fileio import sha256_file

    assert meta["medsbench"]["predictions_sha256"] == sha256_file(run / "predictions.jsonl")
    d57 = datasets.load_dataset("parquet", data_files=str(out / "data/task57/test.parquet"))["train"]
    acc = d57["accuracy"]
    assert acc[live[0]] == 100.0 and d57["ref_accuracy"][live[0]] == 100.0
    assert all(acc[i] is None and d57["ref_accuracy"][i] is None and d57["error"][i] for i in failed)
    results = score_predictions(read_predictions(run / "predictions.jsonl"), bootstrap=0)
    scored = [a for a in acc if a is not None]
    assert sum(scored) / len(scored) == pytest.approx(results.tasks["task57"].metrics["accuracy"])
    d114 = datasets.load_dataset("parquet", data_files=str(out / "data/task114/test.parquet"))["train"]
    assert d114["rougeL"][0] == 100.0 and d114["ref_rougeL"][0] == 100.0
    assert sum(d114["rougeL"]) / 4 == pytest.approx(results.tasks["task114"].metrics["rougeL"], abs=1e-4)
    assert d114["prompt"][0].startswith("<|im_start|>system\n")
