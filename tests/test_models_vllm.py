"""The vllm backend with only the `vllm` import mocked (it cannot run on CPU-only CI machines)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from medsbench.errors import MedsbenchError
from medsbench.models import load_backend
from medsbench.models.base import Request
from medsbench.prompts import Prompt


def test_missing_vllm_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(MedsbenchError, match=r"pip install 'medsbench\[vllm\]'"):
        load_backend("vllm:/models/x")


def test_vllm_backend_with_a_stub_module(monkeypatch, tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    seen: dict = {}

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class LLM:
        def __init__(self, model, trust_remote_code=False, **engine):
            seen["init"] = dict(model=model, trust_remote_code=trust_remote_code, **engine)
            self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=4096))

        def get_tokenizer(self):
            return tokenizer

        def generate(self, prompts, params, use_tqdm=False):
            seen["prompts"], seen["params"] = prompts, params
            return [
                types.SimpleNamespace(
                    prompt_token_ids=p["prompt_token_ids"],
                    outputs=[types.SimpleNamespace(text=f"answer {i}", token_ids=[1, 2, 3])],
                )
                for i, p in enumerate(prompts)
            ]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    monkeypatch.setenv("MEDSBENCH_FINGERPRINT_CACHE", str(tmp_path / "fp.sqlite"))
    backend = load_backend(f"vllm:{tiny_model_dir},tensor_parallel_size=2,gpu_memory_utilization=0.5")
    assert seen["init"] == {"model": str(tiny_model_dir), "trust_remote_code": False, "tensor_parallel_size": 2,
                            "gpu_memory_utilization": 0.5}
    assert backend.context_length == 4096
    prompt = Prompt("sys", "Input:\nq\nOutput:\n")
    text = backend.render(prompt).text
    assert text.startswith("<|im_start|>system\nsys") and text.endswith("<|im_start|>assistant\n")
    out = backend.generate([Request("a", prompt=text, max_new_tokens=7), Request("b", messages=prompt.messages(), max_new_tokens=9)])
    assert [(r.id, r.text, r.output_tokens) for r in out] == [("a", "answer 0", 3), ("b", "answer 1", 3)]
    assert [p.kw["temperature"] for p in seen["params"]] == [0.0, 0.0]
    assert [p.kw["max_tokens"] for p in seen["params"]] == [7, 9]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert seen["prompts"][0]["prompt_token_ids"] == ids == seen["prompts"][1]["prompt_token_ids"]
    from medsbench.models.fingerprint import folder_fingerprint

    ident = backend.identity()
    assert ident["model"] == str(tiny_model_dir) and ident["fingerprint_kind"] == "content"
    assert ident["fingerprint"] == folder_fingerprint(tiny_model_dir).value
    assert ident["engine"] == {"tensor_parallel_size": "2", "gpu_memory_utilization": "0.5"}


def test_vllm_options_are_checked_before_vllm_loads(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # never reached: the options fail first
    with pytest.raises(MedsbenchError, match=r"unknown option 'swap_space' for the vllm backend \(known: .*tensor_parallel_size"):
        load_backend("vllm:/models/x,swap_space=4")
    with pytest.raises(MedsbenchError, match="option 'tensor_parallel_size'"):
        load_backend("vllm:/models/x,tensor_parallel_size=0")


def test_vllm_engine_options_and_stop_reach_vllm(monkeypatch, tiny_model_dir):
    """Typed spec options reach vllm.LLM; stop strings and greedy reach SamplingParams;
    a closing EOS token is not counted as output (as in the hf backend); a rejected item fails alone."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    seen: dict = {}

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class LLM:
        def __init__(self, model, trust_remote_code=False, **engine):
            seen["init"] = engine
            self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=64))

        def get_tokenizer(self):
            return tokenizer

        def generate(self, prompts, params, use_tqdm=False):
            seen.setdefault("params", []).extend(params)
            if any(p.kw["max_tokens"] == 13 for p in params):
                raise ValueError("bad request\nmore")
            eos = tokenizer.eos_token_id
            return [
                types.SimpleNamespace(
                    prompt_token_ids=p["prompt_token_ids"],
                    outputs=[types.SimpleNamespace(text="ok", token_ids=[5, 6, eos], finish_reason="stop", stop_reason=None)],
                )
                for p in prompts
            ]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    backend = load_backend(
        f"vllm:{tiny_model_dir},tensor_parallel_size=2,pipeline_parallel_size=3,data_parallel_size=1,"
        "gpu_memory_utilization=0.25,enforce_eager=true,dtype=float32"
    )
    assert seen["init"] == {
        "tensor_parallel_size": 2, "pipeline_parallel_size": 3, "data_parallel_size": 1,
        "gpu_memory_utilization": 0.25, "enforce_eager": True, "dtype": "float32",
    }  # fmt: skip
    text = backend.render(Prompt("sys", "q")).text
    out = backend.generate(
        [Request("a", prompt=text, max_new_tokens=7, stop=("\n", "Input:")), Request("bad", prompt=text, max_new_tokens=13),
         Request("long", prompt="aspirin " * 80, max_new_tokens=5)]
    )
    assert (out[0].text, out[0].output_tokens, out[0].error) == ("ok", 2, None)
    assert out[1].error == "vllm: bad request" and out[1].text == ""
    sent = [p.kw for p in seen["params"] if p.kw["max_tokens"] == 7]
    assert sent and all(kw["stop"] == ["\n", "Input:"] and kw["temperature"] == 0.0 for kw in sent)
    assert "max_model_len is 64" in out[2].error


def test_split_by_cost_balances_and_keeps_order():
    from medsbench.models.vllm_backend import split_by_cost

    costs = [900, 100, 120, 880, 300, 310, 50]
    shares = split_by_cost(costs, 2)
    assert sorted(i for s in shares for i in s) == list(range(len(costs)))
    assert all(s == sorted(s) for s in shares)
    loads = [sum(costs[i] for i in s) for s in shares]
    assert max(loads) - min(loads) <= max(costs)  # the greedy bound
    assert shares == split_by_cost(costs, 2)  # deterministic
    assert split_by_cost([5], 3) == [[0], [], []]


def _platform(monkeypatch, *, cpu: bool, devices: int = 0):
    platform = types.SimpleNamespace(is_cpu=lambda: cpu, device_control_env_var="CUDA_VISIBLE_DEVICES",
                                     device_count=lambda: devices)
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, "vllm.platforms", types.SimpleNamespace(current_platform=platform))


def test_rank_environments_split_devices_and_cores(monkeypatch):
    from medsbench.models.vllm_backend import rank_environments

    _platform(monkeypatch, cpu=False, devices=8)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert rank_environments(4, 2) == [{"CUDA_VISIBLE_DEVICES": d} for d in ("0,1", "2,3", "4,5", "6,7")]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7")
    assert rank_environments(3, 1) == [{"CUDA_VISIBLE_DEVICES": d} for d in ("3", "5", "7")]
    with pytest.raises(MedsbenchError, match=r"data_parallel_size=2 x 2 device\(s\) per replica need 4 devices; 3 visible"):
        rank_environments(2, 2)
    _platform(monkeypatch, cpu=True)
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})
    assert rank_environments(2, 1) == [{"VLLM_CPU_OMP_THREADS_BIND": "0,1"}, {"VLLM_CPU_OMP_THREADS_BIND": "2,3"}]
    assert rank_environments(2, 2) == [{"VLLM_CPU_OMP_THREADS_BIND": "0|1"}, {"VLLM_CPU_OMP_THREADS_BIND": "2|3"}]
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-1|2-3")  # the user's own binding, one group per replica
    assert rank_environments(2, 1) == [{"VLLM_CPU_OMP_THREADS_BIND": "0-1"}, {"VLLM_CPU_OMP_THREADS_BIND": "2-3"}]
    with pytest.raises(MedsbenchError, match="need 6 CPU cores"):
        rank_environments(3, 2)


# --- The real engine (vllm-cpu) on SmolLM2-135M-Instruct ----------------------------------------
# These run only where vLLM is importable: `bash scripts/setup_vllm.sh && bash scripts/test_vllm.sh`
# (its own venv .venv-vllm, since vllm-cpu pins an older transformers). Elsewhere they skip,
# loudly, with that command in the reason.

VLLM_SETUP = "bash scripts/setup_vllm.sh && bash scripts/test_vllm.sh"
# CPU-friendly engine settings: fp32 like the hf backend, a modest KV-cache share of RAM
# (vLLM's default 0.92 fails on a machine other jobs use) and no torch.compile warm-up.
ENGINE_OPTS = "dtype=float32,max_model_len=2048,gpu_memory_utilization=0.15,enforce_eager=true"


def _real_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError:
        pytest.skip(f"SKIPPED real vLLM tests: vllm is not installed in this venv ({sys.executable}); run: {VLLM_SETUP}")
    import importlib.metadata

    return importlib.metadata.version("vllm-cpu") if _has_dist("vllm-cpu") else importlib.metadata.version("vllm")


def _has_dist(name: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def smollm2_dir():
    """The default model as a safetensors folder (MEDSBENCH_VLLM_MODEL overrides)."""
    _real_vllm()
    import os
    from pathlib import Path

    if os.environ.get("MEDSBENCH_VLLM_MODEL"):
        return Path(os.environ["MEDSBENCH_VLLM_MODEL"])
    from medsbench.models.default import default_model_dir

    return default_model_dir()


@pytest.fixture(scope="module")
def medqa_workspace(tmp_path_factory):
    from conftest import raw_dir
    from medsbench.sources import convert

    ws = tmp_path_factory.mktemp("vllm-ws")
    convert("medqa_usmle", raw_dir("medqa_usmle"), ws / "tasks")
    return ws


@pytest.fixture(scope="module")
def real_backend(smollm2_dir):
    import os

    old = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # engine core in this process too
    try:
        backend = load_backend(f"vllm:{smollm2_dir},{ENGINE_OPTS}")
    finally:
        if old is None:
            os.environ.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
        else:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = old
    yield backend
    backend.close()


LIST_PROMPT = Prompt("Answer briefly.", "Input:\nName three organs of the human body, one per line.\nOutput:\n")


@pytest.mark.vllm
def test_real_vllm_eval_on_medqa(real_backend, medqa_workspace):
    """run_eval with the real engine: 4 MedQA items answered, counted, scored; prompts via SmolLM2's template."""
    import json

    from medsbench.pipeline import evaluate

    assert real_backend.chat and real_backend.identity()["dtype"] == "float32"
    result = evaluate(real_backend, "task57", workspace=medqa_workspace, limit=4, max_new_tokens=48, progress=False)
    rows = [json.loads(line) for line in (result.run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and [r["error"] for r in rows] == [None] * 4
    for row in rows:
        assert row["output"].strip()
        assert row["prompt"].startswith("<|im_start|>system\n") and row["prompt"].endswith("<|im_start|>assistant\n")
        assert row["prompt_tokens"] == len(real_backend.tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
        assert 0 < row["output_tokens"] <= 48
    results = json.loads((result.run_dir / "results.json").read_text())
    assert "task57" in results["tasks"]


@pytest.mark.vllm
def test_real_vllm_stop_strings_and_limits(real_backend):
    text = real_backend.render(LIST_PROMPT).text
    free, stopped, capped = real_backend.generate(
        [
            Request("free", prompt=text, max_new_tokens=40),
            Request("stop", prompt=text, max_new_tokens=40, stop=("\n",)),
            Request("cap", prompt=text, max_new_tokens=3),
        ]
    )
    assert "\n" in free.text.strip()  # the control: without a stop string the answer spans lines
    assert stopped.text and "\n" not in stopped.text and free.text.startswith(stopped.text)
    assert stopped.output_tokens < free.output_tokens
    assert capped.output_tokens == 3 and free.text.startswith(capped.text)
    # The same prompt as chat messages renders through the same template: same greedy answer.
    (as_messages,) = real_backend.generate([Request("m", messages=LIST_PROMPT.messages(), max_new_tokens=40)])
    assert as_messages.text == free.text and as_messages.prompt_tokens == free.prompt_tokens


@pytest.mark.vllm
def test_real_vllm_errors_stay_per_item(real_backend):
    limit = real_backend.context_length
    ok = real_backend.render(LIST_PROMPT).text
    out = real_backend.generate(
        [Request("long", prompt="word " * (limit + 10), max_new_tokens=4), Request("ok", prompt=ok, max_new_tokens=4),
         Request("empty", prompt="", max_new_tokens=4)]
    )
    assert [r.id for r in out] == ["long", "ok", "empty"]
    assert out[0].error and "max_model_len" in out[0].error and out[0].text == ""
    assert out[1].error is None and out[1].text
    assert out[2].error == "empty prompt"


@pytest.mark.vllm
def test_real_vllm_data_parallel_replicas(smollm2_dir, real_backend, medqa_workspace, monkeypatch):
    """data_parallel_size=2: two engine processes, one core each, answer their shares; the outputs equal
    the single engine's (greedy, fp32) and come back in request order; close() ends both processes and
    the engine processes each of them started."""
    from medsbench.records.config import EvalConfig
    from medsbench.runs.plan import plan_task
    from medsbench.tasks.workspace import resolve_tasks

    entries, files, _ = resolve_tasks("task57", medqa_workspace / "tasks")
    config = EvalConfig.from_flags(limit=6, seed=0, max_new_tokens=24, protocol="official")
    plan = plan_task(entries[0], files["task57"], real_backend, config, definitions={})
    reqs = [Request(str(i), prompt=item.text, max_new_tokens=item.max_new_tokens) for i, item in enumerate(plan.items)]
    single = real_backend.generate(reqs)
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache per replica (a share of RAM would count the weights)
    dp = load_backend(f"vllm:{smollm2_dir},dtype=float32,max_model_len=2048,enforce_eager=true,data_parallel_size=2")
    try:
        import psutil  # a vLLM dependency

        procs = list(dp.ranks.procs)
        assert len(procs) == 2 and all(p.is_alive() for p in procs)
        engines = [c for p in procs for c in psutil.Process(p.pid).children(recursive=True)]  # engine cores, workers
        assert engines
        assert dp.identity()["engine"]["data_parallel_size"] == "2" and dp.identity()["dtype"] == "float32"
        assert dp.context_length == 2048 and dp.chunk_size == 2 * max(256, 4 * dp.ranks.info["max_num_seqs"])
        out = dp.generate(reqs)
        assert [r.id for r in out] == [q.id for q in reqs]
        assert [r.error for r in out] == [None] * len(reqs)
        assert [(r.text, r.output_tokens, r.prompt_tokens) for r in out] == [
            (r.text, r.output_tokens, r.prompt_tokens) for r in single]
        too_long = dp.generate([Request("long", prompt="word " * 2100, max_new_tokens=4)])
        assert "max_model_len is 2048" in too_long[0].error
    finally:
        dp.close()
    assert all(not p.is_alive() for p in procs)
    _, alive = psutil.wait_procs(engines, timeout=60)
    assert not alive, f"engine processes left running: {[p.pid for p in alive]}"  # a rank stops its own engine


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(smollm2_dir, tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` on CPU (the `vllm` CLI is absent: the
    distribution is vllm-cpu); waits for /health (bounded), always killed afterwards."""
    import os
    import signal
    import subprocess
    import time
    import urllib.request

    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(smollm2_dir),
        "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "2048", "--gpu-memory-utilization", "0.15",
        "--enforce-eager", "--distributed-executor-backend", "uni",
    ]  # fmt: skip
    with open(log_path, "wb") as log_fh:
        proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server not healthy after 600 s: {log_path.read_text()[-2000:]}")
            time.sleep(2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its engine processes
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


@pytest.mark.vllm
def test_openai_backend_against_a_real_vllm_server(vllm_server, medqa_workspace, monkeypatch):
    """Our openai backend (retries, stop pass-through) against vLLM's own OpenAI-compatible server."""
    import json

    from medsbench.pipeline import evaluate

    monkeypatch.setenv("MEDSBENCH_VLLM_TEST_KEY", "dummy-key")
    backend = load_backend(f"openai:smollm2,base_url={vllm_server},api_key_env=MEDSBENCH_VLLM_TEST_KEY,concurrency=4")
    free, stopped = backend.generate(
        [
            Request("free", messages=LIST_PROMPT.messages(), max_new_tokens=40),
            Request("stop", messages=LIST_PROMPT.messages(), max_new_tokens=40, stop=("\n",)),
        ]
    )
    assert free.error is None and stopped.error is None
    assert "\n" in free.text.strip()
    assert stopped.text and "\n" not in stopped.text and free.text.startswith(stopped.text)
    assert stopped.output_tokens < free.output_tokens and free.prompt_tokens and free.prompt_tokens > 0

    result = evaluate(backend, "task57", workspace=medqa_workspace, limit=4, max_new_tokens=48, progress=False,
                      out=medqa_workspace / "runs" / "openai-vllm-server")
    rows = [json.loads(line) for line in (result.run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and [r["error"] for r in rows] == [None] * 4
    assert all(r["output"].strip() and 0 < r["output_tokens"] <= 48 and r["prompt_tokens"] > 0 for r in rows)


# -- likelihood scoring (the same engine: one vLLM engine per process fits a shared machine) ----------------


@pytest.mark.vllm
def test_vllm_loglik_equals_hf_on_real_medqa(real_backend, smollm2_dir, medqa_workspace):
    from medsbench.metrics.choices import task_choices
    from medsbench.models.hf import HFBackend
    from medsbench.prompts import build_prompt
    from medsbench.runs.loglik import loglik_request
    from medsbench.tasks.format import iter_instances, read_meta

    test = next((medqa_workspace / "tasks").glob("task57_*.test.json"))
    definition = read_meta(test)["Definition"][0]
    options = task_choices("task57", "mcqa", test)
    hf = HFBackend(str(smollm2_dir))
    requests = []
    for inst in list(iter_instances(test))[:4]:
        text = real_backend.render(build_prompt(definition, inst, [])).text
        assert text == hf.render(build_prompt(definition, inst, [])).text  # one chat template, one prompt
        choices = options(inst.input)
        assert not isinstance(choices, str)
        requests.append(loglik_request(inst.id, text, choices))
    got = list(real_backend.loglikelihood(requests))
    want = list(hf.loglikelihood(requests))
    assert [g.id for g in got] == [r.id for r in requests]
    for g, w in zip(got, want):
        assert g.error is None and g.tokens == w.tokens and g.prompt_tokens == w.prompt_tokens
        assert np.allclose(g.logprobs, w.logprobs, atol=2e-3, rtol=1e-4), (g.logprobs, w.logprobs)
        assert int(np.argmax(g.logprobs[:4])) == int(np.argmax(w.logprobs[:4]))  # the letter variant's choice
        assert int(np.argmax(g.logprobs[4:])) == int(np.argmax(w.logprobs[4:]))  # the option-text variant's
