"""lm-evaluation-harness habits on ``medsbench eval``: flags translated where they mean exactly what
ours mean (with a note naming ours), refused in one line with the translation where they do not.

=========================  ===================================================================
lm-eval                    medsbench
=========================  ===================================================================
``--model hf --model_args pretrained=NAME,dtype=bfloat16``  ``--model hf:NAME,dtype=bfloat16``
``--model vllm --model_args pretrained=NAME,...``           ``--model vllm:NAME,...``
``--output_path DIR``      ``--out DIR`` (the run folder: predictions, official CSV, results)
``--num_fewshot N``        ``--shots N``
``--batch_size N|auto``    ``--batch-size N|auto``
``--limit 0.1``            ``--limit 0.1`` (a fraction of each task, as lm-eval)
``--apply_chat_template``  the default (medsbench renders chat models through their template)
``--log_samples``          the default (every item is in predictions.jsonl)
``--trust_remote_code``    ``--trust-remote-code``
=========================  ===================================================================
"""

from __future__ import annotations

from medsbench.errors import MedsbenchError

# lm-eval flag -> our flag (same meaning, takes a value)
_SAME = {"--output_path": "--out", "--num_fewshot": "--shots", "--batch_size": "--batch-size"}
# lm-eval flag (no value) -> our equivalent: None = already our default
_FLAGS = {"--apply_chat_template": None, "--log_samples": None, "--trust_remote_code": "--trust-remote-code"}
_REFUSED = {
    "--gen_kwargs": "decoding is greedy; set --max-new-tokens and --stop instead",
    "--include_path": "tasks come from the workspace's task files (medsbench data pull / convert)",
    "--fewshot_as_multiturn": "demos are part of the instruction block, as in the paper's prompt",
    "--system_instruction": "the task's definition is the system turn (see --definitions)",
    "--use_cache": "every answer is cached in WORKSPACE/cache.sqlite already",
}
# lm-eval model names -> our spec kinds, and the model_args key that names the model
_KINDS = {"hf": ("hf", "pretrained"), "vllm": ("vllm", "pretrained"),
          "local-chat-completions": ("openai", "model"), "openai-chat-completions": ("openai", "model")}


def _value(argv: list[str], i: int) -> tuple[str, int]:
    """The value of the flag at ``argv[i]`` (``--f=v`` or ``--f v``) and the index after it."""
    flag = argv[i]
    if "=" in flag:
        return flag.split("=", 1)[1], i + 1
    if i + 1 >= len(argv):
        raise MedsbenchError(f"{flag} needs a value")
    return argv[i + 1], i + 2


def translate(argv: list[str]) -> tuple[list[str], list[str]]:
    """``medsbench eval`` arguments with lm-eval flags translated; returns (argv, notes for the user)."""
    out: list[str] = []
    notes: list[str] = []
    model_args = None
    i = 0
    while i < len(argv):
        flag = argv[i].split("=", 1)[0]
        if flag in _SAME:
            value, i = _value(argv, i)
            out += [_SAME[flag], value]
            notes.append(f"{flag} {value} is {_SAME[flag]} {value} here")
        elif flag in _FLAGS:
            i += 1
            if _FLAGS[flag]:
                out.append(str(_FLAGS[flag]))
            notes.append(f"{flag} is {_FLAGS[flag] or 'the default'} here")
        elif flag in _REFUSED:
            raise MedsbenchError(f"{flag} has no medsbench equivalent: {_REFUSED[flag]}")
        elif flag == "--model_args":
            model_args, i = _value(argv, i)
        else:
            out.append(argv[i])
            i += 1
    if model_args is not None:
        out, note = _merge_model_args(out, model_args)
        notes.append(note)
    return out, notes


def _merge_model_args(argv: list[str], model_args: str) -> tuple[list[str], str]:
    """``--model hf --model_args pretrained=X,k=v`` -> ``--model hf:X,k=v``."""
    pos = next((j for j, a in enumerate(argv) if a in ("--model", "-m") or a.startswith("--model=")), None)
    if pos is None:
        raise MedsbenchError(f"--model_args without --model: options go inside the model spec, e.g. --model hf:NAME,{model_args}")
    name, nxt = _value(argv, pos)
    if name not in _KINDS:
        raise MedsbenchError(f"--model {name} --model_args ...: give one spec instead, e.g. --model hf:NAME,dtype=bfloat16 "
                             f"(kinds: default, hf, vllm, openai)")
    kind, key = _KINDS[name]
    pairs = [p for p in model_args.split(",") if p.strip()]
    target = next((p.split("=", 1)[1] for p in pairs if p.split("=", 1)[0].strip() == key), None)
    if target is None:
        raise MedsbenchError(f"--model_args needs {key}=NAME (the model): medsbench writes --model {kind}:NAME,OPTIONS")
    rest = [p for p in pairs if p.split("=", 1)[0].strip() != key]
    spec = ",".join([f"{kind}:{target}", *rest])
    return argv[:pos] + ["--model", spec] + argv[nxt:], f"--model {name} --model_args {model_args} is --model {spec} here"
