"""Instruction tuning on the tiny random Llama: labels, packing, resume, LoRA, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from medsbench.errors import MedsbenchError  # noqa: E402
from medsbench.prompts.format import build_instruction, build_query  # noqa: E402

# Realistic MedS-Ins-style rows: (task_id, category, language, definition, input, output).
_EXAMPLES = [
    ("task57", "Multiple-choice Question Answering", "en",
     "Given a medical question and options, select the correct answer from the options directly.",
     "A 23-year-old woman presents with dysuria and urinary frequency. Urinalysis shows nitrites. "
     "Which is the most likely causative organism? A. Escherichia coli B. Staphylococcus aureus "
     "C. Candida albicans D. Treponema pallidum",
     "A. Escherichia coli"),
    ("task57", "Multiple-choice Question Answering", "en",
     "Given a medical question and options, select the correct answer from the options directly.",
     "A 60-year-old man with crushing chest pain has ST elevation in leads II, III and aVF. "
     "Which artery is most likely occluded? A. Left anterior descending B. Right coronary "
     "C. Left circumflex D. Left main",
     "B. Right coronary"),
    ("task121", "Named Entity Recognition", "en",
     "Extract all chemical entities from the sentence. Output them separated by commas, or 'There is no related entity.'",
     "Cisplatin-induced nephrotoxicity was attenuated by pretreatment with N-acetylcysteine in rats.",
     "Cisplatin, N-acetylcysteine"),
    ("task121", "Named Entity Recognition", "en",
     "Extract all chemical entities from the sentence. Output them separated by commas, or 'There is no related entity.'",
     "The patient reported mild headache after the second visit.",
     "There is no related entity."),
    ("task30", "Text Summarization", "en",
     "Summarize the consumer health question into a short question.",
     "Hi, my mother is 72 and was started on metformin last month for her sugar. She has had "
     "diarrhea most days since. Is this a side effect and will it stop?",
     "Does metformin cause diarrhea and how long does it last?"),
    ("task46", "Natural Language Inference", "en",
     "Decide whether the hypothesis is entailment, contradiction or neutral given the premise.",
     "Premise: Patient denies fever or chills. Hypothesis: The patient is febrile.",
     "contradiction"),
    ("task16", "Text Classification", "en",
     "Classify the abstract into cancer hallmarks; output the hallmark names separated by commas.",
     "Loss of p53 function allowed tumour cells to evade apoptosis after DNA damage.",
     "resisting cell death"),
    ("task99", "Diagnosis", "zh",
     "根据患者的描述给出最可能的诊断。",
     "患者男性，45岁，咳嗽发热三天，右下肺可闻及湿啰音，胸片示右下肺片状阴影。",
     "社区获得性肺炎"),
]


def make_rows(n: int, shots: int = 0) -> list[dict]:
    rows = []
    for i in range(n):
        task_id, cat, lang, definition, inp, out = _EXAMPLES[i % len(_EXAMPLES)]
        demos = [(e[4], e[5]) for e in _EXAMPLES if e[0] == task_id and e[4] != inp][:shots]
        rows.append({
            "id": f"{task_id}-{i}",
            "messages": [
                {"role": "system", "content": build_instruction(definition, demos)},
                {"role": "user", "content": build_query(inp)},
                {"role": "assistant", "content": out},
            ],
            "task_id": task_id,
            "category": cat,
            "source": "test-fixture",
            "language": lang,
            "shots": len(demos),
        })
    return rows


def write_mixture(root: Path, rows: list[dict], shards: int = 2, drop: tuple[str, ...] = ()) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        part = [{c: v for c, v in r.items() if c not in drop} for r in rows[k::shards]]
        pq.write_table(pa.Table.from_pylist(part), data / f"train-{k:05d}-of-{shards:05d}.parquet")
    (root / "card.md").write_text("# test mixture\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def mixture(tmp_path_factory) -> Path:
    return write_mixture(tmp_path_factory.mktemp("mix") / "med-tiny", make_rows(48, shots=1))


def _tokenizer(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def small_cfg(**kw):
    from medsbench.tune.config import load_tune_config

    base = {"max_steps": 4, "save_steps": 2, "max_length": 512, "per_device_batch_size": 2,
            "gradient_accumulation_steps": 2, "warmup_ratio": 0.25, "learning_rate": 5e-3}
    return load_tune_config("cpu_small_lora", **{**base, **kw})


# ----------------------------------------------------------------------------- labels


@pytest.mark.parametrize("shots", [0, 1])
def test_labels_cover_exactly_the_assistant_tokens(tiny_model_dir, shots):
    from medsbench.tune.data import IGNORE_INDEX, encode_conversation

    tok = _tokenizer(tiny_model_dir)
    for row in make_rows(len(_EXAMPLES), shots=shots):
        msgs = row["messages"]
        enc = encode_conversation(tok, msgs)
        ids, labels = enc["input_ids"], enc["labels"]
        assert ids == tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
        kept = [k for k, lab in enumerate(labels) if lab != IGNORE_INDEX]
        # one contiguous run at the end of the conversation, minus the template's trailing newline
        assert kept == list(range(kept[0], kept[-1] + 1))
        assert tok.decode([ids[k] for k in kept]) == msgs[-1]["content"] + "<|im_end|>"
        assert tok.decode(ids[kept[-1] + 1:]) == "\n"
        prompt = tok.decode(ids[: kept[0]])
        assert prompt == tok.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
        assert all(labels[k] == ids[k] for k in kept)


def test_labels_multi_turn_and_truncation(tiny_model_dir):
    from medsbench.tune.data import IGNORE_INDEX, encode_conversation

    tok = _tokenizer(tiny_model_dir)
    msgs = [
        {"role": "system", "content": "You are a careful clinician."},
        {"role": "user", "content": "Which drug treats pain?"},
        {"role": "assistant", "content": "aspirin"},
        {"role": "user", "content": "Which tumor marker?"},
        {"role": "assistant", "content": "There is no related entity."},
    ]
    enc = encode_conversation(tok, msgs)
    ids, labels = enc["input_ids"], enc["labels"]
    runs, cur = [], []
    for k, lab in enumerate(labels):
        if lab != IGNORE_INDEX:
            cur.append(ids[k])
        elif cur:
            runs.append(tok.decode(cur))
            cur = []
    assert runs == ["aspirin<|im_end|>", "There is no related entity.<|im_end|>"]
    # cut inside the first answer: only its surviving tokens stay trained
    first = next(k for k, lab in enumerate(labels) if lab != IGNORE_INDEX)
    cut = encode_conversation(tok, msgs, max_length=first + 1)
    assert sum(lab != IGNORE_INDEX for lab in cut["labels"]) == 1
    # cut before any answer: nothing to learn, the example is dropped
    assert encode_conversation(tok, msgs, max_length=first) is None


# ----------------------------------------------------------------------------- packing


def _packed_batch(tok, rows, max_length=512):
    from datasets import Dataset
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from medsbench.tune.data import encode_conversation

    encs = [encode_conversation(tok, r["messages"]) for r in rows]
    packed = pack_dataset(Dataset.from_list(encs), max_length, "bfd", {})
    assert len(packed) == 1  # all three fit one row
    collate = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)
    return encs, collate([packed[0]])


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_qwen_dir"])
def test_packing_keeps_examples_separate(request, fixture):
    import torch
    from transformers import AutoModelForCausalLM

    from medsbench.tune.train import packing_isolates_examples

    path = request.getfixturevalue(fixture)
    tok = _tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa").eval()
    assert packing_isolates_examples(model)
    rows = [make_rows(8)[i] for i in (2, 5, 6)]
    encs, batch = _packed_batch(tok, rows)
    assert "attention_mask" not in batch and batch["position_ids"][0].tolist().count(0) == 3

    def token_losses(ids, labels, **kw):
        logits = model(input_ids=ids, use_cache=False, **kw).logits[0, :-1]
        return torch.nn.functional.cross_entropy(logits, labels[0, 1:], ignore_index=-100, reduction="none")

    with torch.no_grad():
        packed = token_losses(batch["input_ids"], batch["labels"], position_ids=batch["position_ids"])
        alone = [token_losses(torch.tensor([e["input_ids"]]), torch.tensor([e["labels"]])) for e in encs]
        leaky = token_losses(batch["input_ids"], batch["labels"])  # no position_ids: plain causal attention
    total_alone = sum(a.sum() for a in alone)
    assert torch.allclose(packed.sum(), total_alone, rtol=1e-5)
    # per example, too; BFD reorders examples, so find each one's segment by its position_ids reset
    flat = batch["input_ids"][0].tolist()
    starts = [k for k, p in enumerate(batch["position_ids"][0].tolist()) if p == 0] + [len(flat)]
    seen = set()
    for s0, s1 in zip(starts, starts[1:]):
        i = next(i for i, e in enumerate(encs) if e["input_ids"] == flat[s0:s1])
        seen.add(i)
        # the last token of a segment predicts the next example's first token: label -100, not compared
        assert torch.allclose(packed[s0:s1 - 1], alone[i], atol=1e-5)
        assert alone[i].sum() > 0
    assert seen == {0, 1, 2}
    assert not torch.allclose(leaky.sum(), total_alone, rtol=1e-5)  # the check can fail


# ----------------------------------------------------------------------------- training


def _losses(out: Path) -> list[tuple[int, float, float]]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["grad_norm"]) for r in rows if "loss" in r]


def test_train_lora_writes_model_card_and_training_record(tiny_model_dir, mixture, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from medsbench.fileio import sha256_text
    from medsbench.tune.merge import merge
    from medsbench.tune.train import train

    out = tmp_path / "m"
    res = train(str(tiny_model_dir), mixture, out, small_cfg(max_steps=3, save_steps=3))
    assert res.steps == 3 and res.packing and res.examples == 48
    info = json.loads((out / "medsbench_training.json").read_text())
    assert info["method"] == "lora" and info["base"] == str(tiny_model_dir)
    assert info["chat_template_sha256"] == sha256_text(_tokenizer(tiny_model_dir).chat_template)
    assert info["mixture_card"].endswith("card.md") and info["steps"] == 3
    assert sorted(info["lora_target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    card = (out / "README.md").read_text()
    assert "loss_curve.png" in card and "card.md" in card and (out / "loss_curve.png").stat().st_size > 1000
    assert [s for s, _, _ in _losses(out)] == [1, 2, 3]
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("step,")
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "config.json").is_file()

    # the merged folder in --out and `tune merge` of the adapter give the same model, differing from the base
    merged = merge(out, tmp_path / "merged")
    ids = torch.tensor([_tokenizer(out)("Input:\naspirin\nOutput:\n")["input_ids"]])
    with torch.no_grad():
        a = AutoModelForCausalLM.from_pretrained(out)(input_ids=ids).logits
        b = AutoModelForCausalLM.from_pretrained(merged)(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, base, atol=1e-4)
    assert json.loads((merged / "medsbench_training.json").read_text())["chat_template_sha256"] == \
        info["chat_template_sha256"]


def test_resume_reproduces_the_uninterrupted_loss_curve(tiny_model_dir, mixture, tmp_path):
    from transformers import TrainerCallback

    from medsbench.tune.train import train

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 2:
                control.should_training_stop = True

    cfg = small_cfg(max_steps=4, save_steps=2)
    full = tmp_path / "full"
    train(str(tiny_model_dir), mixture, full, cfg, merge=False)
    cut = tmp_path / "cut"
    train(str(tiny_model_dir), mixture, cut, cfg, merge=False, callbacks=[StopAt()])
    assert [s for s, _, _ in _losses(cut)] == [1, 2]
    with pytest.raises(MedsbenchError, match="not empty"):
        train(str(tiny_model_dir), mixture, cut, cfg)
    res = train(str(tiny_model_dir), mixture, cut, cfg, resume=True, merge=False)
    assert res.steps == 4
    a, b = _losses(full), _losses(cut)
    assert [s for s, _, _ in b] == [1, 2, 3, 4]
    assert a[0][1] != a[-1][1]  # the loss moves, so equal curves mean something
    for (s1, l1, g1), (s2, l2, g2) in zip(a, b):
        assert s1 == s2 and l1 == pytest.approx(l2, rel=1e-5) and g1 == pytest.approx(g2, rel=1e-4)


def test_full_finetune(tiny_model_dir, mixture, tmp_path):
    from medsbench.tune.train import train

    out = tmp_path / "full"
    res = train(str(tiny_model_dir), mixture, out, small_cfg(method="full", max_steps=2, learning_rate=1e-3))
    assert res.steps == 2 and (out / "model.safetensors").is_file() and not (out / "adapter").exists()
    assert json.loads((out / "medsbench_training.json").read_text())["method"] == "full"


# ----------------------------------------------------------------------------- bad input (one line each)


def _cli_error(capsys, argv: list[str]) -> str:
    from medsbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err  # progress bars may precede it; one error line
    return lines[0]


def test_bad_inputs_give_one_line(tiny_model_dir, mixture, tmp_path, capsys):
    bad = write_mixture(tmp_path / "bad", make_rows(4), shards=1, drop=("category", "shots"))
    err = _cli_error(capsys, ["tune", "--base", str(tiny_model_dir), "--data", str(bad), "--out", str(tmp_path / "o1")])
    assert "category, shots" in err and "train-00000-of-00001.parquet" in err

    err = _cli_error(capsys, ["tune", "run", "--base", str(tmp_path / "nope"), "--data", str(mixture),
                              "--out", str(tmp_path / "o2")])
    assert "base model not found" in err and "nope" in err

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("lora:\n  target_modules: [c_attn, q_proj]\n")
    err = _cli_error(capsys, ["tune", "--base", str(tiny_model_dir), "--data", str(mixture), "--out",
                              str(tmp_path / "o3"), "--config", str(cfg)])
    assert "c_attn" in err and "q_proj, " not in err.split("(")[0] and "linear layers" in err

    err = _cli_error(capsys, ["tune", "--base", str(tiny_model_dir), "--data", str(tmp_path / "missing"),
                              "--out", str(tmp_path / "o4")])
    assert "mixture folder not found" in err

    cfg.write_text("learning_rat: 1e-4\n")
    assert "learning_rat" in _cli_error(capsys, ["tune", "--base", str(tiny_model_dir), "--data", str(mixture),
                                                 "--out", str(tmp_path / "o5"), "--config", str(cfg)])
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))


def test_empty_assistant_message_names_the_row(tiny_model_dir, tmp_path):
    from medsbench.tune.data import load_mixture, tokenize_mixture

    rows = make_rows(3)
    rows[1]["messages"][-1]["content"] = " "
    ds = load_mixture(write_mixture(tmp_path / "m", rows, shards=1))
    with pytest.raises(MedsbenchError, match=r"row 1 \(id task57-1\).*no non-empty assistant"):
        tokenize_mixture(ds, _tokenizer(tiny_model_dir), 512)


# ----------------------------------------------------------------------------- config


def test_shipped_configs():
    from medsbench.tune.config import load_tune_config

    paper = load_tune_config("paper_8b_full")
    assert (paper.method, paper.max_length, paper.global_batch_size, paper.learning_rate) == ("full", 2048, 128, 1e-5)
    assert paper.bf16 and paper.gradient_checkpointing and paper.lr_scheduler_type == "cosine"
    assert paper.accumulation_steps(8) == 4 and paper.accumulation_steps(1) == 32
    with pytest.raises(MedsbenchError, match="not a multiple"):
        paper.accumulation_steps(3)
    cpu = load_tune_config("cpu_small_lora", method="full")
    assert cpu.method == "full" and not cpu.bf16 and cpu.packing
    with pytest.raises(MedsbenchError, match="config not found"):
        load_tune_config("no_such_config")


# ----------------------------------------------------------------------------- distributed


def test_two_process_cpu_ddp(tiny_model_dir, mixture, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    import signal
    import socket

    with socket.socket() as sock:  # a free port: other test sessions may share this machine
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # torchrun, not `accelerate launch --cpu`: accelerate 1.x starts a single process for --cpu on one machine.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "medsbench", "tune", "run",
           "--base", str(tiny_model_dir), "--data", str(mixture), "--out", str(out), "--max-steps", "2",
           "--no-merge"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too, not only the launcher
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-2000:]
    info = json.loads((out / "medsbench_training.json").read_text())
    assert info["world_size"] == 2 and info["steps"] == 2
    assert [s for s, _, _ in _losses(out)] == [1, 2]  # one writer (rank 0), not two
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


# ----------------------------------------------------------------------------- demo helpers


def test_cli_registers_tune_and_demo():
    from typer.testing import CliRunner

    from medsbench.cli import app

    runner = CliRunner()
    assert "merge" in runner.invoke(app, ["tune", "--help"]).output
    assert "--steps" in runner.invoke(app, ["demo", "--help"]).output


def test_lora_top_layers_adapts_only_the_top_of_the_stack(tiny_model_dir):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from medsbench.tune.train import lora_config

    cfg = small_cfg()
    cfg.lora.top_layers = 1
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, lora_config(base, cfg))
    trained = {n.split(".layers.")[1].split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {"1"}  # the tiny model has layers 0 and 1
