"""Shared fixtures. Hub access is switched off for every test."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_var] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
RAW = REPO.parent / "shared" / "data" / "raw"

# A ChatML template like SmolLM2's, so prompts go through the tokenizer's own template.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "Given a question and a list of options, select the correct answer from the options directly.",
    "Input: A 45-year-old man presents with chest pain. Output: The right answer is B: aspirin.",
    "There is no related entity. aspirin, ibuprofen, cisplatin, tumor, disease, species, mouse, human.",
    "Summarize the consumer health question. What are the side effects of metformin?",
    "The diagnosis result is pneumonia. The treatment planning is: surgery. True False yes no maybe.",
    "Sustaining proliferative signaling, evading growth suppressors, resisting cell death.",
]


def missing(reason: str) -> None:
    """Skip for a missing ../shared resource on a developer checkout, but fail under CI=true,
    where ../shared is always laid beside the repository: a lost data folder must not turn
    real tests into silent skips."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: ../shared must be present)")
    pytest.skip(reason)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """The console entry point in-process: (exit code, stdout, stderr)."""
    from medsbench.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def need_module(name: str):
    """``pytest.importorskip`` that fails under CI=true, where every dependency of the test extras is installed:
    a package lost from the install must not turn real tests into silent skips."""
    if os.environ.get("CI", "").lower() == "true":
        return importlib.import_module(name)
    return pytest.importorskip(name)


def write_punkt_tab(root: Path) -> Path:
    """An nltk data folder whose English ``punkt_tab`` model is written from the Punkt parameters
    medsbench ships (nltk's own download is unreachable offline): lets nltk.word_tokenize itself,
    and the official scripts that call it, run here. Returns ``root``."""
    from medsbench.metrics.tokenize import punkt_parameters

    params = punkt_parameters()
    model = root / "tokenizers" / "punkt_tab" / "english"
    model.mkdir(parents=True)
    (model / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(params.collocations)), encoding="utf-8")
    (model / "sent_starters.txt").write_text("".join(f"{w}\n" for w in sorted(params.sent_starters)), encoding="utf-8")
    (model / "abbrev_types.txt").write_text("".join(f"{w}\n" for w in sorted(params.abbrev_types)), encoding="utf-8")
    (model / "ortho_context.tab").write_text("".join(f"{k}\t{v}\n" for k, v in sorted(params.ortho_context.items())), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def nltk_word_tokenize(tmp_path_factory):
    """nltk.word_tokenize itself, with a punkt_tab model written from the same parameters (:func:`write_punkt_tab`)."""
    nltk = need_module("nltk")
    import nltk.tokenize as tok

    root = write_punkt_tab(tmp_path_factory.mktemp("nltk_data"))
    nltk.data.path.insert(0, str(root))
    tok._get_punkt_tokenizer.cache_clear()
    try:
        yield tok.word_tokenize
    finally:
        nltk.data.path.remove(str(root))
        tok._get_punkt_tokenizer.cache_clear()


def raw_dir(name: str) -> Path:
    """A real dataset folder under ../shared/data/raw (skips if the checkout lacks it; fails in CI)."""
    path = RAW / name
    if not path.is_dir():
        missing(f"raw dataset {name} not found at {path}")
    return path


def build_tiny_model(out: Path, arch: str = "llama") -> Path:
    """A random tiny causal LM with a BPE tokenizer trained here (well under a second)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_CORPUS * 4, trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<pad>",
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    hf_tok.model_max_length = 512
    import torch

    torch.manual_seed(0)
    if arch == "qwen2":
        from transformers import Qwen2Config as Config
        from transformers import Qwen2ForCausalLM as Model
    else:
        from transformers import LlamaConfig as Config
        from transformers import LlamaForCausalLM as Model
    config = Config(
        vocab_size=len(hf_tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = Model(config)
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Path to a saved tiny random Llama (with chat template) for unit tests."""
    need_module("transformers")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama") / "model")


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory) -> Path:
    need_module("transformers")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen") / "model", arch="qwen2")
