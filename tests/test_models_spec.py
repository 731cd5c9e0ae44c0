"""ModelSpec (the one parser of model spec strings): kinds, typed options, overrides, redaction; weights fingerprints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from medsbench.errors import MedsbenchError
from medsbench.models import check_spec, load_backend
from medsbench.models.spec import (
    HFOptions,
    ModelSpec,
    OpenAIOptions,
    VLLMOptions,
    backend_kind,
    known_options,
)
from medsbench.redact import redact, redact_text, redact_url
from medsbench.prompts import Prompt

CANARY = "sk-canary-7d1e0b"


# --------------------------------------------------------------------------- parsing


def test_kinds_targets_and_raw_options():
    assert ModelSpec.parse("default") == ModelSpec("default", "", {})
    assert ModelSpec.parse("default,threads=1") == ModelSpec("default", "", {"threads": "1"})
    assert ModelSpec.parse("hf:/m/x,dtype=bfloat16,device=cpu") == ModelSpec("hf", "/m/x", {"dtype": "bfloat16", "device": "cpu"})
    assert ModelSpec.parse("openai:gpt-4o,base_url=http://127.0.0.1:8000/v1,concurrency=4") == ModelSpec(
        "openai", "gpt-4o", {"base_url": "http://127.0.0.1:8000/v1", "concurrency": "4"}
    )
    assert ModelSpec.parse("vllm:org/name,tensor_parallel_size=2").target == "org/name"
    spec = ModelSpec.parse("hf:/m/x")
    assert ModelSpec.parse(spec) is spec  # an already parsed spec passes through
    for bad, msg in [
        ("gguf:x", "unknown model spec"),
        ("hf:", "needs a target"),
        ("hf:/x,dtype", "bad option"),
        ("", "empty"),
        ("default:/some/path", "takes no target"),
    ]:
        with pytest.raises(MedsbenchError, match=msg):
            ModelSpec.parse(bad)


def test_options_are_typed_per_backend():
    hf = ModelSpec.parse("hf:/m/x,batch_size=4,threads=2,prune_every=0,trust_remote_code=yes,max_length=128").settings()
    assert isinstance(hf, HFOptions)
    assert (hf.batch_size, hf.threads, hf.prune_every, hf.trust_remote_code, hf.max_length) == (4, 2, 0, True, 128)
    assert ModelSpec.parse("default").settings() == HFOptions()  # documented defaults
    assert ModelSpec.parse("hf:/m/x,batch_size=auto").settings().batch_size == "auto"
    api = ModelSpec.parse("openai:m,concurrency=3,timeout=2.5,temperature=0,max_connection_errors=2").settings()
    assert isinstance(api, OpenAIOptions)
    assert (api.concurrency, api.timeout, api.temperature, api.max_connection_errors) == (3, 2.5, 0.0, 2)
    vl = ModelSpec.parse("vllm:/m,tensor_parallel_size=2,gpu_memory_utilization=0.8,enforce_eager=true").settings()
    assert isinstance(vl, VLLMOptions)
    assert vl.kwargs() == {"trust_remote_code": False, "tensor_parallel_size": 2, "gpu_memory_utilization": 0.8, "enforce_eager": True}


@pytest.mark.parametrize(
    "spec, option",
    [
        ("hf:/m/x,batch_size=0", "batch_size"),
        ("hf:/m/x,batch_size=many", "batch_size"),
        ("hf:/m/x,dtype=float8", "dtype"),
        ("hf:/m/x,device=gpu0", "device"),
        ("hf:/m/x,trust_remote_code=perhaps", "trust_remote_code"),
        ("openai:m,concurrency=-1", "concurrency"),
        ("openai:m,base_url=ftp://x", "base_url"),
        ("vllm:/m,gpu_memory_utilization=1.5", "gpu_memory_utilization"),
    ],
)
def test_bad_option_values_name_the_option(spec, option):
    with pytest.raises(MedsbenchError, match=rf"option '{option}': ") as info:
        ModelSpec.parse(spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["default", "hf", "openai", "vllm"])
def test_unknown_option_lists_the_backends_options(kind):
    spec = "default,colour=blue" if kind == "default" else f"{kind}:target,colour=blue"
    with pytest.raises(MedsbenchError) as info:
        ModelSpec.parse(spec)
    text = str(info.value)
    assert f"unknown option 'colour' for the {kind} backend" in text
    assert f"(known: {', '.join(known_options(kind))})" in text
    # Formerly dropped silently: an hf-only option on an openai spec is an error too.
    if kind == "openai":
        with pytest.raises(MedsbenchError, match="unknown option 'batch_size' for the openai backend"):
            ModelSpec.parse("openai:m,batch_size=4")
    # Reading a recorded spec can skip the option check.
    assert ModelSpec.parse(spec, strict=False).options == {"colour": "blue"}


def test_cli_overrides_merge_through_the_typed_options():
    spec = ModelSpec.parse("hf:/m/x,dtype=bfloat16,batch_size=2")
    merged = spec.settings(dtype="float16", batch_size=None, device="cuda:1", api_key_env="IGNORED_FOR_HF")
    assert (merged.dtype, merged.batch_size, merged.device) == ("float16", 2, "cuda:1")  # flag wins, None = not given
    api = ModelSpec.parse("openai:m").settings(dtype="bfloat16", device="cuda", batch_size=8, trust_remote_code=True,
                                               api_key_env="MY_KEY")
    assert api.api_key_env == "MY_KEY"  # --dtype/--device/--batch-size/--trust-remote-code: ignored for openai
    assert backend_kind("openai").ignored_flags >= {"dtype", "device", "batch_size", "trust_remote_code"}
    assert ModelSpec.parse("vllm:/m").settings(batch_size=8, dtype="bfloat16").dtype == "bfloat16"
    with pytest.raises(MedsbenchError, match="option 'prune_every' does not apply to the openai backend"):
        ModelSpec.parse("openai:m").settings(prune_every=3)
    with pytest.raises(MedsbenchError, match="option 'batch_size'"):
        spec.settings(batch_size=0)
    recorded = spec.with_overrides(dtype="float16", trust_remote_code=True, api_key_env="X")
    assert recorded.redacted() == "hf:/m/x,dtype=float16,batch_size=2,trust_remote_code=true"
    assert ModelSpec.parse(recorded.redacted()).settings() == spec.settings(dtype="float16", trust_remote_code=True)


# --------------------------------------------------------------------------- redaction


def test_redaction_with_a_canary():
    url = f"https://user:{CANARY}@api.example.org:8443/v1?api_key={CANARY}&token={CANARY}&region=eu"
    assert CANARY not in redact_url(url)
    assert redact_url(url) == "https://api.example.org:8443/v1"  # an allow-list: scheme, host, port, path
    assert CANARY not in redact_text(f"could not reach {url} (refused)")
    spec = ModelSpec.parse(f"openai:gpt-4o,base_url={url},api_key_env=MY_KEY")
    shown = spec.redacted()
    assert CANARY not in shown and CANARY not in str(spec)
    assert "api_key_env=MY_KEY" in shown  # a variable name, not a secret: resume needs it
    assert spec.unredacted().count(CANARY) == 3  # only the explicit, never-logged form keeps it
    # A key pasted into api_key_env by mistake is masked, and the error does not quote it.
    pasted = ModelSpec.parse(f"openai:m,api_key_env={CANARY}", strict=False)
    assert CANARY not in pasted.redacted()
    with pytest.raises(MedsbenchError) as info:
        pasted.settings()
    assert CANARY not in str(info.value) and "option 'api_key_env'" in str(info.value)
    # Errors about a spec never quote credentials either.
    for bad in [f"gguf:{url}", f"openai:m,base_url={url},colour=1", f"openai:m,base_url={url},concurrency=x"]:
        with pytest.raises(MedsbenchError) as info:
            ModelSpec.parse(bad)
        assert CANARY not in str(info.value)


def test_openai_identity_carries_no_credentials(monkeypatch):
    pytest.importorskip("openai")
    monkeypatch.setenv("MEDSBENCH_TEST_KEY", CANARY + "-key")
    url = f"http://user:{CANARY}@127.0.0.1:9/v1?key={CANARY}"
    backend = load_backend(f"openai:gpt-4o,base_url={url}", api_key_env="MEDSBENCH_TEST_KEY", dtype="float16")
    ident = json.dumps(backend.identity())
    assert CANARY not in ident and CANARY not in repr(backend)
    assert backend.identity()["base_url"] == "http://127.0.0.1:9/v1"
    assert backend.identity()["fingerprint_kind"] == "remote"


def test_check_spec(monkeypatch, tmp_path):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(MedsbenchError, match=r"needs an API key in \$NO_SUCH_KEY_VAR"):
        check_spec("openai:m", api_key_env="NO_SUCH_KEY_VAR")
    with pytest.raises(MedsbenchError, match="model folder not found"):
        check_spec(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(MedsbenchError, match="unknown option 'colour'"):
        check_spec(f"hf:{tmp_path},colour=1")
    assert check_spec(ModelSpec.parse(f"hf:{tmp_path}"), dtype="bfloat16").kind == "hf"


def test_load_backend_does_not_disguise_loading_errors(monkeypatch, tiny_model_dir):
    """A TypeError raised while loading the model is a real error, not a 'bad option in model spec'."""
    import transformers

    def broken(*args, **kwargs):
        raise TypeError("an internal loading bug")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", broken)
    with pytest.raises(TypeError, match="an internal loading bug"):
        load_backend(f"hf:{tiny_model_dir},threads=1")


def test_tune_resolves_its_base_through_model_spec(tiny_model_dir):
    from medsbench.tune.train import resolve_base

    assert resolve_base(f"hf:{tiny_model_dir},dtype=bfloat16") == str(Path(tiny_model_dir).resolve())
    assert resolve_base(str(tiny_model_dir)) == str(Path(tiny_model_dir).resolve())
    assert resolve_base("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(MedsbenchError, match="tune needs a local base model"):
        resolve_base("openai:gpt-4o")
    with pytest.raises(MedsbenchError, match="unknown option 'colour' for the hf backend"):
        resolve_base(f"hf:{tiny_model_dir},colour=1")


# --------------------------------------------------------------------------- fingerprints


@pytest.fixture()
def fp_cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "fingerprints.sqlite"
    monkeypatch.setenv("MEDSBENCH_FINGERPRINT_CACHE", str(path))
    return path


def _hash_calls() -> int:
    from medsbench.models.fingerprint import STATS

    return STATS["files_hashed"]


def test_fingerprint_is_content_and_cached(tiny_model_dir, tmp_path, fp_cache):
    from medsbench.models.fingerprint import CONTENT, folder_fingerprint, model_files

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    names = [p.name for p in model_files(folder)]
    assert "model.safetensors" in names and "config.json" in names and "tokenizer.json" in names
    before = _hash_calls()
    first = folder_fingerprint(folder)
    assert first.kind == CONTENT and len(first.value) == 64 and first.files == len(names)
    assert _hash_calls() - before == len(names)  # cold: every file read once
    again = folder_fingerprint(folder)
    assert again == first and _hash_calls() - before == len(names)  # warm: no file read again
    assert fp_cache.is_file()
    # A copy elsewhere has the same content, so the same fingerprint (and is hashed, being other files).
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert folder_fingerprint(copy).value == first.value
    # Files outside the model do not count; changing the tokenizer does.
    (folder / "README.md").write_text("notes")
    (folder / "checkpoint-5").mkdir()
    (folder / "checkpoint-5" / "model.safetensors").write_bytes(b"x")
    assert folder_fingerprint(folder).value == first.value
    tok = json.loads((folder / "tokenizer_config.json").read_text())
    tok["model_max_length"] = 77
    (folder / "tokenizer_config.json").write_text(json.dumps(tok))
    assert folder_fingerprint(folder).value != first.value


def test_retrained_model_in_the_same_folder_gets_a_new_identity_and_no_stale_cache(tiny_model_dir, tmp_path, fp_cache):
    """Same file names and sizes, different weights: a new identity, so the run cache misses."""
    import torch
    from transformers import AutoModelForCausalLM

    from medsbench.models.base import Request
    from medsbench.runs.cache import ResultCache, cache_key

    folder = tmp_path / "tuned"
    shutil.copytree(tiny_model_dir, folder)
    backend = load_backend(f"hf:{folder},threads=1")
    old_identity = backend.identity()
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    prompt = backend.render(Prompt("sys", "Input:\nq\nOutput:\n")).text
    [old] = backend.generate([Request("a", prompt=prompt, max_new_tokens=6)])
    cache = ResultCache(tmp_path / "cache.sqlite")
    gen = {"max_new_tokens": 6}
    cache.put_many([(cache_key(old_identity, prompt, gen), old)])

    # "Re-train": the same architecture saved into the same folder with other weights.
    model = AutoModelForCausalLM.from_pretrained(folder)
    torch.manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.save_pretrained(folder)
    assert {p.name: p.stat().st_size for p in folder.iterdir()} == sizes  # names and sizes unchanged

    new_identity = load_backend(f"hf:{folder},threads=1").identity()
    assert new_identity["fingerprint"] != old_identity["fingerprint"]
    assert {k: v for k, v in new_identity.items() if k != "fingerprint"} == {
        k: v for k, v in old_identity.items() if k != "fingerprint"
    }
    assert cache.get(cache_key(new_identity, prompt, gen)) is None  # no stale output
    assert cache.get(cache_key(old_identity, prompt, gen)) is not None
    cache.close()


def test_hub_names_resolve_to_the_local_snapshot_or_say_so(tiny_model_dir, tmp_path, fp_cache, monkeypatch):
    """A Hub name is fingerprinted from its snapshot in the HF cache (offline); without one, by name+revision."""
    from medsbench.models.fingerprint import (
        CONTENT,
        HUB_REVISION,
        fingerprint,
        folder_fingerprint,
    )

    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    # Lay out a cached snapshot the way huggingface_hub does: blobs/, snapshots/<commit>/ symlinks, refs/main.
    repo = hub / "models--medsbench-test--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for i, src in enumerate(sorted(Path(tiny_model_dir).iterdir())):
        blob = repo / "blobs" / f"blob{i}"
        shutil.copy(src, blob)
        (snap / src.name).symlink_to(blob)
    fp = fingerprint("medsbench-test/tiny")
    assert fp.kind == CONTENT and fp.value == folder_fingerprint(tiny_model_dir).value
    missing = fingerprint("medsbench-test/not-cached", revision="v2")
    assert (missing.kind, missing.value) == (HUB_REVISION, "medsbench-test/not-cached@v2")


def test_redact_text_keeps_sentence_punctuation():
    text = f"server unreachable at http://u:{CANARY}@h:1/v1?token={CANARY}: 5 errors (see http://h/x)."
    assert redact_text(text) == "server unreachable at http://h:1/v1: 5 errors (see http://h/x)."
    assert redact_text(redact_text(text)) == redact_text(text)


def test_redaction_keeps_only_scheme_host_port_path():
    # Secret-looking or not, a query, a fragment and userinfo never survive: nothing to guess.
    url = "http://alice:s3cret@gw.example:8080/v1/chat?pwd=PWDVAL&credential=CREDVAL&x=1#FRAGVAL"
    assert redact_url(url) == "http://gw.example:8080/v1/chat"
    spec = ModelSpec.parse(f"openai:m,base_url={url}")
    for shown in (spec.redacted(), redact_text(f"error at {url}"), str(redact({"cmd": ["--model", spec.unredacted()]}))):
        for value in ("s3cret", "PWDVAL", "CREDVAL", "FRAGVAL", "alice"):
            assert value not in shown, (value, shown)
    assert redact_url("http://[::1]:9/v1?k=v") == "http://[::1]:9/v1"
    assert redact(["--api-key", "abc", "--x", "pwd=zzz"]) == ["--api-key", "REDACTED", "--x", "pwd=REDACTED"]


def test_unusable_fingerprint_cache_only_costs_speed(tiny_model_dir, monkeypatch):
    from medsbench.models.fingerprint import fingerprint, folder_fingerprint

    monkeypatch.setenv("MEDSBENCH_FINGERPRINT_CACHE", "/proc/medsbench-no/fingerprints.sqlite")
    before = _hash_calls()
    first = folder_fingerprint(tiny_model_dir)
    assert folder_fingerprint(tiny_model_dir) == first
    assert _hash_calls() - before == 2 * first.files  # hashed twice: nothing could be cached
    with pytest.raises(MedsbenchError, match="model folder not found"):
        fingerprint("/no/such/model")


def test_run_cache_never_serves_a_retrained_models_old_outputs(tiny_model_dir, tmp_path, fp_cache):
    """Through the real run cache: a second run of the same folder is served from the cache; after re-training
    into the same folder (same names and sizes) every item is generated again."""
    import torch
    from transformers import AutoModelForCausalLM

    from medsbench.pipeline import evaluate
    from medsbench.tasks.format import Instance, write_task

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    ws = tmp_path / "ws"
    write_task(
        ws / "tasks" / "task57_medqa_en.test.json",
        {"Definition": ["Answer."], "Categories": ["Question Answering"]},
        [Instance(str(i), f"question {i}", ["A"]) for i in range(3)],
    )
    spec = f"hf:{folder},threads=1"

    def run(name: str):
        return evaluate(spec, "task57", workspace=ws, out=tmp_path / name, max_new_tokens=4, progress=False)

    first = run("r1")
    assert (first.n_generated, first.n_cached) == (3, 0)
    second = run("r2")
    assert (second.n_generated, second.n_cached) == (0, 3)
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    model = AutoModelForCausalLM.from_pretrained(folder)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.5)
    model.save_pretrained(folder)
    assert {p.name: p.stat().st_size for p in folder.iterdir()} == sizes
    third = run("r3")
    assert (third.n_generated, third.n_cached) == (3, 0)
    assert third.manifest.backend["fingerprint"] != first.manifest.backend["fingerprint"]
