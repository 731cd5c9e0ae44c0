"""lm-evaluation-harness and inspect_ai run MedS-Bench from `medsbench export`: the prompts they send
equal `medsbench eval`'s byte for byte, and their scores equal `medsbench score` on their outputs.

Real runs of both harnesses (their own CLIs, in subprocesses) on the real SmolLM2-135M-Instruct
(chat template) and on the tiny random model without a chat template (plain prompts), a few items
of real converted tasks. Under CI=true a missing harness fails instead of skipping.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, build_tiny_model, need_module, raw_dir

TASKS = "task57,task114"  # MCQA (accuracy), summarization (BLEU-1/ROUGE-L); NER (F1) in the plain test
LIMIT, MAX_NEW = 2, 16


def need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        reason = f"{module} is not installed (pip install 'medsbench[export]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: the export tests must run)")
        pytest.skip(reason)


def env() -> dict[str, str]:
    src = str(REPO / "src")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src,
            "INSPECT_DISPLAY": "none", "INSPECT_LOG_LEVEL": "warning", "HF_DATASETS_OFFLINE": "1"}


def run(cmd: list[str], cwd: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=cwd, timeout=timeout)
    assert proc.returncode == 0, f"{cmd[:4]} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    return proc


def medsbench(*args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "medsbench.cli", *args])


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from medsbench.sources import convert

    ws = tmp_path_factory.mktemp("export-ws")
    convert("medqa_usmle", raw_dir("medqa_usmle"), ws / "tasks")
    convert("bc5cdr_chem", raw_dir("bc5cdr"), ws / "tasks")
    convert("meqsum", raw_dir("meqsum"), ws / "tasks")
    return ws


@pytest.fixture(scope="module")
def smol() -> Path:
    need_module("gguf")
    from medsbench.models.default import default_model_dir

    return default_model_dir()


@pytest.fixture(scope="module")
def our_run(ws, smol):
    """`medsbench eval` of SmolLM2 on the tasks (medsbench protocol): the prompts to match."""
    out = ws / "runs" / "smol"
    medsbench("eval", "--model", f"hf:{smol}", "--tasks", TASKS, "--limit", str(LIMIT), "--max-new-tokens", str(MAX_NEW),
              "-w", str(ws), "--out", str(out), "--no-progress")
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * LIMIT and not any(r["truncated"] or r["error"] for r in rows)
    return {(r["task_id"], r["id"]): r for r in rows}


def score_outputs(tmp: Path, rows: list[dict]) -> dict:
    """`medsbench score` (the CLI) on prediction rows: {task: {metric / ref_metric: value}}."""
    from medsbench.fileio import write_jsonl

    write_jsonl(tmp / "predictions.jsonl", rows)
    medsbench("score", str(tmp / "predictions.jsonl"), "--bootstrap", "0", "--out", str(tmp / "results.json"))
    res = json.loads((tmp / "results.json").read_text())
    return {tid: {**t["metrics"], **{f"ref_{k}": v for k, v in t["reference"].items()}} for tid, t in res["tasks"].items()}


def lm_eval_samples(out: Path) -> tuple[dict, list[dict]]:
    results = json.loads(Path(glob.glob(str(out / "*" / "results_*.json"))[0]).read_text())
    samples = [json.loads(line) for f in sorted(glob.glob(str(out / "*" / "samples_*.jsonl")))
               for line in Path(f).read_text().splitlines()]
    return results, samples


def check_lm_eval_scores(tmp: Path, results: dict, samples: list[dict], group: str) -> dict:
    """lm-eval's numbers equal `medsbench score` on the outputs lm-eval generated."""
    from medsbench.export.items import prediction

    ours = score_outputs(tmp, [prediction(s["doc"], s["filtered_resps"][0]) for s in samples])
    seen = {}
    for tid, metrics in ours.items():
        theirs = results["results"][f"{group}_{tid}"]
        for name, value in metrics.items():
            if name in ("precision", "recall", "ref_precision", "ref_recall"):
                continue  # exported: the headline metrics only
            assert theirs[f"{name},none"] == pytest.approx(value, abs=1e-9), (tid, name)
            seen[(tid, name)] = value
    return seen


@pytest.mark.slow
def test_lm_eval_chat_prompts_and_scores_equal_ours(ws, smol, our_run, tmp_path):
    need("lm_eval")
    out = tmp_path / "lm"
    medsbench("export", "lm-eval", "--tasks", TASKS, "--limit", str(LIMIT), "--max-new-tokens", str(MAX_NEW),
              "-w", str(ws), "--out", str(out), "--name", "rt")
    logs = tmp_path / "lm-out"
    run([sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={smol},dtype=float32",
         "--include_path", str(out), "--tasks", "medsbench_rt", "--apply_chat_template", "--log_samples",
         "--output_path", str(logs), "--batch_size", "4", "--device", "cpu"])
    results, samples = lm_eval_samples(logs)
    assert len(samples) == 2 * LIMIT
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol)
    for s in samples:
        doc, (context, gen) = s["doc"], (s["arguments"]["gen_args_0"]["arg_0"], s["arguments"]["gen_args_0"]["arg_1"])
        mine = our_run[(doc["task_id"], doc["id"])]
        assert context == mine["prompt"]  # after the chat template: byte-equal
        # before the template: the messages lm-eval built are ours (system = instruction block, user = query)
        messages = [{"role": "system", "content": doc["system"]}, {"role": "user", "content": doc["user"]}]
        assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == mine["prompt"]
        assert gen["until"][0] == "\nInput:" and gen["max_gen_toks"] == MAX_NEW and gen["do_sample"] is False
    seen = check_lm_eval_scores(tmp_path, results, samples, "medsbench_rt")
    assert {t for t, _ in seen} == {"task57", "task114"}
    assert any(v > 0 for v in seen.values())  # real outputs: numbers that could differ, not only 0 == 0


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory) -> Path:
    """The tiny random model without a chat template and with a 4096-token context (plain prompts)."""
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-plain") / "model")
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = 4096
    (folder / "config.json").write_text(json.dumps(config))
    tok_cfg = json.loads((folder / "tokenizer_config.json").read_text())
    tok_cfg["model_max_length"] = 4096
    tok_cfg.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    for extra in ("chat_template.jinja", "chat_template.json"):
        (folder / extra).unlink(missing_ok=True)
    return folder


def test_lm_eval_plain_official_prompts_and_scores_equal_ours(ws, plain_model, tmp_path):
    """The official protocol (3 demos from the test file, no stop strings) for a model without a chat template."""
    need("lm_eval")
    from transformers import AutoTokenizer

    ours = tmp_path / "run"
    medsbench("eval", "--model", f"hf:{plain_model}", "--tasks", "task126", "--protocol", "official", "--limit", "3",
              "--max-new-tokens", "8", "-w", str(ws), "--out", str(ours), "--no-progress")
    mine = {r["id"]: r for r in map(json.loads, (ours / "predictions.jsonl").read_text().splitlines())}
    assert not any(r["truncated"] for r in mine.values()) and all(len(r["demo_ids"]) == 3 for r in mine.values())
    out = tmp_path / "lm"
    medsbench("export", "lm-eval", "--tasks", "task126", "--protocol", "official", "--plain", "--limit", "3",
              "--max-new-tokens", "8", "-w", str(ws), "--out", str(out), "--name", "off")
    logs = tmp_path / "lm-out"
    # add_bos_token: the official plain prompt starts with BOS (EvalDataset.default_build_inputs), which our
    # eval writes as text where the tokenizer adds none and lm-eval adds as a token
    run([sys.executable, "-m", "lm_eval", "run", "--model", "hf",
         "--model_args", f"pretrained={plain_model},dtype=float32,add_bos_token=True",
         "--include_path", str(out), "--tasks", "medsbench_off", "--log_samples", "--output_path", str(logs),
         "--batch_size", "1", "--device", "cpu"])
    results, samples = lm_eval_samples(logs)
    assert len(samples) == 3
    for s in samples:
        context, gen = s["arguments"]["gen_args_0"]["arg_0"], s["arguments"]["gen_args_0"]["arg_1"]
        bos = AutoTokenizer.from_pretrained(plain_model).bos_token or ""
        assert bos + context == mine[s["doc"]["id"]]["prompt"]  # the official plain prompt: BOS, instruction, newline, query
        assert context.startswith("Input:\n") and "Please learn from the few-shot cases" in context
        assert gen["max_gen_toks"] == 8 and gen["until"] in ([], ["<|im_end|>"])  # no stop string but EOS
    check_lm_eval_scores(tmp_path, results, samples, "medsbench_off")


@pytest.mark.slow
def test_inspect_scores_equal_ours(ws, smol, our_run, tmp_path):
    need("inspect_ai")
    out = tmp_path / "inspect"
    medsbench("export", "inspect", "--tasks", TASKS, "--limit", str(LIMIT), "--max-new-tokens", str(MAX_NEW),
              "-w", str(ws), "--out", str(out), "--name", "rt")
    logs = tmp_path / "logs"
    run([sys.executable, "-m", "inspect_ai", "eval", "medsbench_rt.py", "--model", "hf/smollm2", "-M", f"model_path={smol}", "-M", "device=cpu",
         "-M", "do_sample=False", "--log-dir", str(logs), "--log-format", "json"], cwd=out)
    logs_by_task = {}
    for f in glob.glob(str(logs / "*.json")):
        log = json.loads(Path(f).read_text())
        assert log["status"] == "success", log.get("error")
        logs_by_task[log["eval"]["task"]] = log
    assert set(logs_by_task) == {"medsbench_rt_task57", "medsbench_rt_task114"}
    from transformers import AutoTokenizer

    from medsbench.export.items import prediction
    from medsbench.models.base import cut_at_stop

    tok = AutoTokenizer.from_pretrained(smol)
    for name, log in logs_by_task.items():
        rows = []
        for s in log["samples"]:
            mine = our_run[(s["metadata"]["task_id"], s["id"])]
            messages = [{"role": m["role"], "content": m["content"]} for m in s["input"]]
            assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == mine["prompt"]
            completion = s["output"]["choices"][0]["message"]["content"]
            if isinstance(completion, list):
                completion = "".join(c.get("text", "") for c in completion)
            rows.append(prediction(s["metadata"], cut_at_stop(completion, ["\nInput:"])[0]))
        ours = score_outputs(tmp_path / name, rows) if (tmp_path / name).mkdir() is None else {}
        theirs = log["results"]["scores"][0]["metrics"]
        for tid, metrics in ours.items():
            for metric, value in metrics.items():
                assert theirs[metric]["value"] == pytest.approx(value, abs=1e-9), (tid, metric)
    assert logs_by_task["medsbench_rt_task114"]["results"]["scores"][0]["metrics"]["bleu1"]["value"] > 0


def test_lm_eval_utils_score_like_medsbench_and_check_their_input(ws, tmp_path):
    """Without running lm-eval: the written utils module's functions on gold and wrong outputs, and
    the items file checks (ids, fields, a path outside the export)."""
    out = tmp_path / "lm"
    medsbench("export", "lm-eval", "--tasks", "task57,task114", "--limit", "6", "-w", str(ws), "--out", str(out), "--name", "u")
    sys.path.insert(0, str(out))
    try:
        import utils  # the module lm-eval loads for `!function utils.*`
    finally:
        sys.path.remove(str(out))
        sys.modules.pop("utils", None)
    from medsbench.errors import MedsbenchError
    from medsbench.export.items import prediction, score_rows

    docs = list(utils.load(items="data/task57.jsonl")["test"])
    assert len(docs) == 6
    outputs = [d["references"][0] if i % 2 else "The right answer is Z." for i, d in enumerate(docs)]
    rows = [utils.process_task57(d, [o])["accuracy"] for d, o in zip(docs, outputs)]
    assert utils.agg_task57_accuracy(rows) == 50.0 == score_rows([prediction(d, o) for d, o in zip(docs, outputs)])["task57"]["accuracy"]
    text = list(utils.load(items="data/task114.jsonl")["test"])
    rows = [utils.process_task114(d, [d["references"][0]])["rougeL"] for d in text]
    assert utils.agg_task114_rougeL(rows) == 100.0 and utils.agg_task114_ref_bleu1(rows) == 100.0
    with pytest.raises(MedsbenchError, match="refusing to write outside"):
        utils.load(items="../../outside.jsonl")
    bad = out / "data" / "task57.jsonl"
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join([lines[0].replace('"id":"', '"id":"\\u0007'), *lines[1:]]) + "\n")
    with pytest.raises(MedsbenchError, match="instance id"):
        utils.load(items="data/task57.jsonl")
