"""The vllm backend with only the `vllm` import mocked (it cannot run on CPU-only CI machines)."""

from __future__ import annotations

import sys
import types

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
