"""lm-evaluation-harness flags on `medsbench eval`: exact equivalents translated (with a note), the rest
refused in one line with the translation; help texts show defaults and no placeholder on flags."""

from __future__ import annotations

import pytest

from medsbench.commands.onramp import translate
from medsbench.errors import MedsbenchError
from test_runs import make_workspace
from test_runs_integrity import cli


def test_exact_equivalents_are_translated_with_a_note():
    argv, notes = translate(["--model", "hf", "--model_args", "pretrained=/m/x,dtype=bfloat16", "--tasks", "mcqa",
                             "--num_fewshot", "3", "--output_path=/tmp/out", "--batch_size", "auto",
                             "--apply_chat_template", "--log_samples", "--trust_remote_code", "--limit", "0.5"])
    assert argv == ["--model", "hf:/m/x,dtype=bfloat16", "--tasks", "mcqa", "--shots", "3", "--out", "/tmp/out",
                    "--batch-size", "auto", "--trust-remote-code", "--limit", "0.5"]
    assert "--num_fewshot 3 is --shots 3 here" in notes and "--apply_chat_template is the default here" in notes
    assert any(n.endswith("is --model hf:/m/x,dtype=bfloat16 here") for n in notes)
    argv, _ = translate(["--model", "local-chat-completions", "--model_args", "model=gpt-x,base_url=http://h/v1"])
    assert argv == ["--model", "openai:gpt-x,base_url=http://h/v1"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--gen_kwargs", "temperature=0"], "--gen_kwargs has no medsbench equivalent: decoding is greedy"),
        (["--model_args", "pretrained=x"], "--model_args without --model: options go inside the model spec"),
        (["--model", "hf", "--model_args", "dtype=float16"], "--model_args needs pretrained=NAME"),
        (["--model", "sglang", "--model_args", "pretrained=x"], "give one spec instead, e.g. --model hf:NAME"),
        (["--include_path", "dir"], "tasks come from the workspace"),
    ],
)
def test_other_lm_eval_flags_are_refused_with_the_translation(argv, message):
    with pytest.raises(MedsbenchError, match=message):
        translate(argv)


def test_the_cli_says_what_it_translated_and_runs(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", n_mcqa=4, n_ner=2)
    proc = cli("eval", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks", "task57",
               "--limit", "0.5", "--num_fewshot", "0", "--output_path", str(tmp_path / "run"), "-w", str(ws),
               "--max-new-tokens", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "note: --num_fewshot 0 is --shots 0 here" in proc.stderr
    assert "sample: 50% of each task" in proc.stdout
    assert len((tmp_path / "run" / "predictions.jsonl").read_text().splitlines()) == 2  # ceil(4 * 0.5)
    proc = cli("eval", "--gen_kwargs", "temperature=0.7")
    assert proc.returncode == 1 and proc.stderr.startswith("error: --gen_kwargs has no medsbench equivalent")


def test_help_shows_defaults_and_no_placeholder_on_flags():
    proc = cli("eval", "--help")
    text = " ".join(proc.stdout.split())
    for shown in ("[default: default]", "[default: available]", "[default: medsbench]", "'quick'", "[default: medsbench-work]"):
        assert shown in text, shown
    assert "--resume <bool>" not in text and "--no-progress <bool>" not in text and "--resume " in text


def test_tasks_answer_to_their_names_and_typos_get_a_suggestion():
    from medsbench.tasks.catalog import catalog

    cat = catalog()
    assert [e.id for e in cat.select("pubmedqa,medqa_usmle,BC5CDR_Chem,task57")] == ["task57", "task123", "task126"]
    assert all(cat.find(e.name) is e for e in cat.tasks.values())  # every task has a name that finds it
    assert len({e.name for e in cat.tasks.values()}) == len(cat.tasks)  # names are unique
    for typo, hint in (("task1233", "did you mean task123"), ("mcqq", "did you mean mcqa"), ("pubmedq", "did you mean pubmedqa")):
        with pytest.raises(MedsbenchError, match=hint):
            cat.select(typo)


def test_eval_takes_a_task_name_and_an_explicit_task_without_files_fails(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", n_mcqa=2, n_ner=2)
    proc = cli("eval", "--model", f"hf:{tiny_model_dir}", "--tasks", "medqa_usmle", "-w", str(ws), "--max-new-tokens", "2",
               "--out", str(tmp_path / "run"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    proc = cli("eval", "--model", f"hf:{tiny_model_dir}", "--tasks", "pubmedqa", "-w", str(ws), "--no-progress")
    assert proc.returncode == 1 and "task123 (PubMedQA (PQA-L)) has no test file" in proc.stderr
