"""Differential test: ``--protocol official`` prompts vs the official prompt code, byte for byte.

The official ``Evaluation/EvalDataset.py`` (MAGIC-AI4Med/MedS-Ins @185cfc0, in
../shared/reference/meds_ins_official, CC BY-SA) is imported by path with its
heavy imports (torch, torchvision, transformers, tiktoken, PIL, numpy, pandas,
tqdm, jsonlines) stubbed in ``sys.modules`` for the import only; its prompt
assembly (``InsDataset.__getitem__`` and its ``build_inputs_*`` methods) runs
unmodified. Its module-level ``random`` is replaced by a stand-in whose
``random()`` returns 0.5 (so ``original_ins_possibility=1`` keeps the original
definition and ``no_context_possibility`` 0/1 picks the 3-shot/zero-shot path)
and whose ``sample()`` returns the demos *our* planner chose for the item, after
checking that the official code asked for 3 demos out of the whole test file.

For every MedS-Bench category and both shot settings, ``plan_task(...,
protocol="official")`` must produce exactly the official text for: the system
and user strings (the GPT-4/Claude path, and the chat messages an API backend
sends), the base-model concatenation (``default_build_inputs``), the Mistral
single user turn, and the Llama 3 and InternLM 2 strings (our rendering goes
through the published chat templates of those models, the official code
hand-writes them). Real converted task files are used where the raw data is in
../shared/data/raw; the other categories use synthetic task files (labelled so).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, missing, raw_dir

from medsbench.models.base import BaseBackend, Rendered
from medsbench.prompts import Prompt, build_prompt, render_chat
from medsbench.records.config import EvalConfig
from medsbench.runs.plan import TaskPlan, plan_task
from medsbench.tasks.catalog import catalog
from medsbench.tasks.format import Instance, iter_instances

OFFICIAL = REPO.parent / "shared" / "reference" / "meds_ins_official"
EVAL_DATASET = OFFICIAL / "Evaluation" / "EvalDataset.py"
LIMIT = 5  # items compared per task and setting

# Published chat templates (Meta-Llama-3-8B-Instruct and internlm2-chat tokenizer configs).
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
INTERNLM2_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Categories with real data: (task id, converter, raw folder). The rest are synthetic.
REAL = {
    "mcqa": ("task57", "medqa_usmle", "medqa_usmle"),
    "summarization": ("task114", "meqsum", "meqsum"),
    "information_extraction": ("task1", "ebm_nlp_pico", "ebm_nlp_pico"),
    "ner": ("task128", "species800", "species800"),
    "text_classification": ("task106", "hoc", "hoc"),
}
SYNTHETIC = {
    "explanation": "task50",
    "rationale": "task52",
    "diagnosis": "task130",
    "treatment_planning": "task131",
    "clinical_outcome": "task117",
    "fact_verification": "task16",
    "nli": "task41",
}
CATEGORIES = sorted(set(REAL) | set(SYNTHETIC))


# -- the official module ------------------------------------------------------------------------------------------


def _stub_modules() -> dict[str, types.ModuleType]:
    names = [
        "tiktoken", "tiktoken.load", "torch", "torch.utils", "torch.utils.data", "torch.nn", "torch.nn.functional",
        "torchvision", "PIL", "numpy", "tqdm", "transformers", "jsonlines", "pandas",
    ]
    mods = {n: types.ModuleType(n) for n in names}
    mods["tiktoken.load"].load_tiktoken_bpe = lambda *a, **k: None
    mods["torch.utils.data"].Dataset = type("Dataset", (), {})
    mods["torch.utils.data"].DataLoader = object
    mods["torchvision"].transforms = mods["torchvision"].datasets = types.ModuleType("stub")
    for parent, child in [("tiktoken", "load"), ("torch", "utils"), ("torch.utils", "data"), ("torch", "nn"), ("torch.nn", "functional")]:
        setattr(mods[parent], child, mods[f"{parent}.{child}"])
    return mods


@pytest.fixture(scope="module")
def official() -> types.ModuleType:
    if not EVAL_DATASET.is_file():
        missing(f"official reference code not found at {EVAL_DATASET}")
    spec = importlib.util.spec_from_file_location("meds_ins_official_evaldataset", EVAL_DATASET)
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as mp:
        for name, stub in _stub_modules().items():
            mp.setitem(sys.modules, name, stub)
        spec.loader.exec_module(module)
    return module


class ForcedRandom:
    """Stands in for the official module's ``random``: fixed draws, demos forced to ``picks`` (file positions)."""

    def __init__(self, picks: list[int] | None, n_pool: int):
        self.picks = picks
        self.n_pool = n_pool
        self.sampled = 0

    def random(self) -> float:
        return 0.5

    def sample(self, population: list[Any], k: int) -> list[Any]:
        assert self.picks is not None, "the zero-shot path must not draw demos"
        assert len(population) == self.n_pool  # the whole test file, the item included
        assert k == min(len(population), 3) and len(self.picks) == k
        self.sampled += 1
        return [population[i] for i in self.picks]


def official_inputs(
    module: types.ModuleType, folder: Path, index: int, picks: list[int] | None, monkeypatch, *, shots: bool, n_pool: int
) -> dict[str, Any]:
    """Every official rendering (one per model_type) of item ``index`` with the demos at ``picks``."""
    defs = folder.parent / f"{folder.name}.definitions.json"
    defs.write_text("{}")
    out: dict[str, Any] = {}
    tokenizers = {
        "GPT-4": types.SimpleNamespace(add_bos_token=True, bos_token="<s>"),
        "Default": types.SimpleNamespace(add_bos_token=True, bos_token="<s>"),
        "Mistral": types.SimpleNamespace(add_bos_token=True, bos_token="<s>"),
        "Llama 3": types.SimpleNamespace(add_bos_token=True, bos_token="<|begin_of_text|>"),
        "InternLM 2": types.SimpleNamespace(add_bos_token=False, bos_token="<s>"),
    }
    for model_type, tok in tokenizers.items():
        forced = ForcedRandom(picks, n_pool)
        monkeypatch.setattr(module, "random", forced)
        ds = module.InsDataset(
            tok, str(folder), definition_prompt=str(defs), original_ins_possibility=1.0,
            no_context_possibility=0.0 if shots else 1.0, model_type=model_type,
        )
        sample = ds[index]
        assert forced.sampled == (1 if shots else 0)
        out[model_type] = sample
    return out


# -- our side -----------------------------------------------------------------------------------------------------


def _tokenizer(template: str, bos: str, *, adds_bos: bool = False):
    """A word-level tokenizer with ``template``; ``adds_bos``: its post-processor puts BOS first (as Llama's do)."""
    from tokenizers import Tokenizer, models, processors
    from transformers import PreTrainedTokenizerFast

    inner = Tokenizer(models.WordLevel({"<unk>": 0, bos: 1, "</s>": 2}, unk_token="<unk>"))
    if adds_bos:
        inner.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=inner, bos_token=bos, eos_token="</s>", unk_token="<unk>")
    tok.chat_template = template
    return tok


class TemplateBackend(BaseBackend):
    """Renders like the hf/vllm backends (the tokenizer's template, or plain text); no context, so no truncation."""

    name = "template"

    def __init__(self, tokenizer: Any, *, template: bool = True):
        self.tokenizer, self.template = tokenizer, template

    def render(self, prompt: Prompt) -> Rendered:
        text = render_chat(self.tokenizer, prompt, template=self.template)
        return Rendered(text, prompt=text)


class ApiBackend(BaseBackend):
    """The default rendering: chat messages sent as is (OpenAI-compatible APIs)."""

    name = "api"


@pytest.fixture(scope="module")
def backends() -> dict[str, BaseBackend]:
    pytest.importorskip("transformers")
    base = _tokenizer("", "<s>", adds_bos=True)  # the official "Default" below: add_bos_token=True
    base.chat_template = None
    return {
        "api": ApiBackend(),
        "base": TemplateBackend(base),
        "llama3": TemplateBackend(_tokenizer(LLAMA3_TEMPLATE, "<|begin_of_text|>")),
        "internlm2": TemplateBackend(_tokenizer(INTERNLM2_TEMPLATE, "<s>")),
    }


def _synthetic_task(task_id: str, category: str) -> dict[str, Any]:
    """A small synthetic task file in the official layout (clearly not real data)."""
    entry = catalog()[task_id]
    rows = []
    for i in range(7):
        text = (
            f"SYNTHETIC {category} item {i}: a {40 + i}-year-old patient reports cough for {i + 2} days;\n"
            f"temperature 38.{i} C, \"quoted\" note,  trailing spaces  \n"
        )
        gold = f"synthetic answer {i} for {category}"
        # Even-numbered synthetic tasks store outputs as lists (the official except-branch: output[0]).
        out: Any = [gold, f"alternative {i}"] if int(task_id[4:]) % 2 == 0 else gold
        rows.append({"id": f"{task_id}-syn-{i}", "input": text, "output": out})
    return {
        "Contributors": ["synthetic"], "Source": ["synthetic"], "URL": [""], "Categories": [entry.category],
        "Reasoning": [], "Definition": [f"SYNTHETIC definition for {entry.title}: answer the question below. "],
        "Input_language": ["English"], "Output_language": ["English"], "Instruction_language": ["English"],
        "Domains": ["Medicine"], "Positive Examples": [], "Negative Examples": [], "Instances": rows,
        "medsbench": {"task_id": task_id, "split": "test", "synthetic": True},
    }


@pytest.fixture(scope="module")
def task_files(tmp_path_factory) -> dict[str, Any]:
    """A cache: "_root" -> work folder, category -> (task id, {split: path}) filled lazily by ``_files_for``."""
    return {"_root": tmp_path_factory.mktemp("protocol_tasks")}


def _files_for(category: str, cache: dict[str, Any]) -> tuple[str, dict[str, Path]]:
    if category in cache:
        return cache[category]
    root: Path = cache["_root"]
    if category in REAL:
        from medsbench.sources import convert

        task_id, converter, folder = REAL[category]
        paths = convert(converter, raw_dir(folder), root / converter)
        files = {}
        for p in paths:
            meta_split = "train" if ".train." in p.name else "test"
            if p.name.startswith(f"{task_id}_"):
                files[meta_split] = p
        assert "test" in files, f"{converter} wrote no test file for {task_id}"
    else:
        task_id = SYNTHETIC[category]
        entry = catalog()[task_id]
        path = root / "synthetic" / entry.file_name("test")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_synthetic_task(task_id, category), ensure_ascii=False, indent=1))
        files = {"test": path}
    cache[category] = (task_id, files)
    return cache[category]


def _official_folder(test_file: Path, root: Path) -> Path:
    """The official loader reads every file of a folder: give it this task's test file alone."""
    folder = root / f"official_{test_file.stem.replace('.', '_')}"
    if not folder.is_dir():
        folder.mkdir()
        shutil.copy(test_file, folder / test_file.name)
    return folder


def _plan(task_id: str, files: dict[str, Path], backend: BaseBackend, protocol: str, shots: int | None) -> TaskPlan:
    config = EvalConfig.from_flags(limit=LIMIT, shots=shots, protocol=protocol)
    return plan_task(catalog()[task_id], files, backend, config, definitions={})


def _assert_matches_official(official, task_files, backends, monkeypatch, category, protocol, shots, *, official_shots):
    task_id, files = _files_for(category, task_files)
    positions = {inst.id: i for i, inst in enumerate(iter_instances(files["test"]))}
    plans = {name: _plan(task_id, files, b, protocol, shots) for name, b in backends.items()}
    folder = _official_folder(files["test"], task_files["_root"])
    n = 0
    for i, item in enumerate(plans["api"].items):
        demo_ids = list(item.demo_ids)
        assert (len(demo_ids) == 3) == official_shots  # 3 demos from the test file, or none
        assert item.instance.id not in demo_ids
        for other in plans.values():
            assert list(other.items[i].demo_ids) == demo_ids  # the demos do not depend on the backend
        picks = [positions[d] for d in demo_ids] if official_shots else None
        off = official_inputs(official, folder, i, picks, monkeypatch, shots=official_shots, n_pool=len(positions))
        gpt = off["GPT-4"]["input"]
        # System/user pair and the chat messages an API backend sends.
        assert item.messages == [{"role": "system", "content": gpt["system"]}, {"role": "user", "content": gpt["user"]}]
        # Base models: the official default_build_inputs text (tokenizer adds its BOS itself).
        assert plans["base"].items[i].text == off["Default"]["input"]
        # Mistral: one user turn, instruction + "\n" + query: our base-model text.
        assert off["Mistral"]["input"] == [{"role": "user", "content": plans["base"].items[i].text}]
        # Llama 3 and InternLM 2: the official hand-written strings == the models' own templates.
        assert plans["llama3"].items[i].text == off["Llama 3"]["input"]
        assert plans["internlm2"].items[i].text == off["InternLM 2"]["input"]
        # The reference the official CSV records as GT.
        assert off["GPT-4"]["output"] == item.instance.target
        assert off["GPT-4"]["task_id"] == task_id
        n += 1
    assert n == min(LIMIT, plans["api"].n_total) and n > 0
    for p in plans.values():
        assert p.max_new_tokens == 200 and all(it.max_new_tokens == 200 for it in p.items)
        assert p.protocol == protocol
    return plans


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("shots", [None, 0], ids=["3shot", "0shot"])
def test_official_protocol_prompts_are_byte_identical(official, task_files, backends, monkeypatch, category, shots):
    plans = _assert_matches_official(
        official, task_files, backends, monkeypatch, category, "official", shots, official_shots=shots is None
    )
    item = plans["api"].items[0]
    if shots == 0:  # the official zero-shot query is the raw input, no Input:/Output: frame
        assert item.messages[-1]["content"] == item.instance.input
    else:
        assert item.messages[-1]["content"] == "Input:\n" + item.instance.input + "\nOutput:\n"


@pytest.mark.parametrize("category", ["mcqa", "ner", "nli"])
def test_paper_protocol_is_official_zero_shot_for_mcqa_only(official, task_files, backends, monkeypatch, category):
    _assert_matches_official(
        official, task_files, backends, monkeypatch, category, "paper", None, official_shots=category != "mcqa"
    )


def test_official_uses_the_task_files_definition_and_whole_test_file_as_demo_pool(task_files, backends):
    task_id, files = _files_for("mcqa", task_files)
    definition = json.loads(files["test"].read_text())["Definition"][0]
    plan = plan_task(catalog()[task_id], files, backends["api"], EvalConfig.from_flags(limit=LIMIT, protocol="official"),
                     definitions={task_id: "A REPLACEMENT DEFINITION"})
    assert plan.definition == definition
    assert all(it.messages[0]["content"].endswith(definition + "Please learn from the few-shot cases to see what content you have to output.") for it in plan.items)
    test_ids = {inst.id for inst in iter_instances(files["test"])}
    assert all(set(it.demo_ids) <= test_ids for it in plan.items)


def test_plain_prompts_carry_one_bos_as_the_official_code_sends_them(official, task_files, monkeypatch):
    """A model outside the official template families (chat_template=none, or no template at all) gets the
    official plain text: the BOS string written in front when the tokenizer does not add one itself."""
    task_id, files = _files_for("mcqa", task_files)
    positions = {inst.id: i for i, inst in enumerate(iter_instances(files["test"]))}
    no_bos = _tokenizer("{{ messages }}", "<|im_start|>")  # SmolLM2's case: BOS text, never added by the tokenizer
    plan = _plan(task_id, files, TemplateBackend(no_bos, template=False), "official", None)
    folder = _official_folder(files["test"], task_files["_root"])
    module = official
    forced = ForcedRandom([positions[d] for d in plan.items[0].demo_ids], len(positions))
    monkeypatch.setattr(module, "random", forced)
    defs = folder.parent / f"{folder.name}.definitions.json"
    defs.write_text("{}")
    ds = module.InsDataset(types.SimpleNamespace(add_bos_token=False, bos_token="<|im_start|>"), str(folder),
                           definition_prompt=str(defs), original_ins_possibility=1.0, no_context_possibility=0.0,
                           model_type="SmolLM2")
    assert plan.items[0].text == ds[0]["input"] and plan.items[0].text.startswith("<|im_start|>")
    assert no_bos(plan.items[0].text)["input_ids"].count(1) == 1  # one BOS reaches the model


def test_the_official_llama3_string_sends_two_bos_tokens_ours_one():
    """The deviation named for Llama 3: the official code writes <|begin_of_text|> into its prompt string and
    tokenizes it with special tokens on, so a tokenizer that adds BOS (Llama 3's does) sends two."""
    tok = _tokenizer(LLAMA3_TEMPLATE, "<|begin_of_text|>", adds_bos=True)
    prompt = build_prompt("Pick one.", Instance("q", "Which? A. x B. y", ["A"]), [])
    text = render_chat(tok, prompt)
    assert text.startswith("<|begin_of_text|>")
    official_ids = tok(text)["input_ids"]  # eval.py: tokenizer(input_sentence) with its defaults
    ours = tok(text, add_special_tokens=False)["input_ids"]  # the hf backend: a template carries its own tokens
    assert official_ids[:2] == [1, 1] and ours.count(1) == 1


def test_official_runs_name_what_their_model_and_settings_do_differently(tmp_path, tiny_model_dir):
    """dtype, chat template and token cap: named under --protocol official, gone once the settings match."""
    import json

    from medsbench.prompts.protocols import run_deviations
    from test_runs import make_workspace
    from test_runs_integrity import cli

    named = run_deviations("official", {"dtype": "float32", "chat_template_sha256": "x"}, None)
    assert len(named) == 3 and "bfloat16" in named[0] and "chat_template=none" in named[1] and "1000" in named[2]
    assert run_deviations("official", {"dtype": "bfloat16", "chat_template_sha256": None}, 1000) == []
    assert run_deviations("medsbench", {"dtype": "float32", "chat_template_sha256": "x"}, None) == []
    ws = make_workspace(tmp_path / "ws", n_mcqa=2, n_ner=0)
    common = ["--model", f"hf:{tiny_model_dir}", "--tasks", "task57", "-w", str(ws), "--protocol", "official",
              "--no-progress"]
    assert cli("eval", *common, "--max-new-tokens", "2", "--out", str(tmp_path / "a")).returncode == 0
    default = json.loads((tmp_path / "a" / "results.json").read_text())["protocol_deviations"]
    assert sum("bfloat16" in d or "chat_template=none" in d for d in default) == 2
    proc = cli("eval", *common, "--max-new-tokens", "1000", "--dtype", "bfloat16", "--chat-template", "none",
               "--limit", "1", "--out", str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr
    matched = json.loads((tmp_path / "b" / "results.json").read_text())["protocol_deviations"]
    assert not any("bfloat16" in d or "chat_template=none" in d or "--eos_id" in d for d in matched)
    prompt = json.loads((tmp_path / "b" / "predictions.jsonl").read_text().splitlines()[0])["prompt"]
    # the plain prompt: the BOS text, then instruction and query, with no chat markup
    assert "system" not in prompt and "assistant" not in prompt and prompt.count("<|im_start|>") <= 1
