"""The paper's prompt, rendering through the tokenizer's template, demo choice and truncation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsbench.prompts import (
    FEW_SHOT_SUFFIX,
    Prompt,
    build_instruction,
    build_prompt,
    fit_prompt,
    render_chat,
    sample_demos,
)
from medsbench.tasks.format import Instance

DEFINITION = "Given a question and a list of options, select the correct answer from the options directly."


def official_prompt(definition: str, demos: list[tuple[str, str]], query: str) -> tuple[str, str]:
    """Transcription of MAGIC-AI4Med/MedS-Ins Evaluation/EvalDataset.py (3-shot path), kept literal on purpose."""
    few_shot_cases = ["Input:\n" + i + "\n" + "\n" + "Output:\n" + o + "\n" for i, o in demos]
    few_shot_string = "\n\n".join(few_shot_cases) + "\n\n"
    instruction = few_shot_string + definition + "Please learn from the few-shot cases to see what content you have to output."
    return instruction, "Input:\n" + query + "\n" + "Output:\n"


def test_prompt_is_byte_identical_to_the_official_script():
    demos = [Instance("7", "Q7?\nA. x\nB. y", ["A. x"]), Instance("9", "Q9?", ["B"])]
    item = Instance("1", "A 45-year-old man has chest pain.\nA. aspirin\nB. rest", ["A"])
    prompt = build_prompt(DEFINITION, item, demos)
    system, user = official_prompt(DEFINITION, [("Q7?\nA. x\nB. y", "A. x"), ("Q9?", "B")], item.input)
    assert prompt.system == system
    assert prompt.user == user
    assert prompt.demo_ids == ("7", "9")
    # Spelled out once, so a change in the transcription above is caught too.
    assert prompt.system == (
        "Input:\nQ7?\nA. x\nB. y\n\nOutput:\nA. x\n\n\nInput:\nQ9?\n\nOutput:\nB\n\n\n"
        + DEFINITION
        + FEW_SHOT_SUFFIX
    )
    assert prompt.user == "Input:\nA 45-year-old man has chest pain.\nA. aspirin\nB. rest\nOutput:\n"
    # Base models: the official plain concatenation instruction + "\n" + query.
    assert prompt.plain() == system + "\n" + user


def test_zero_shot_and_readable_style():
    item = Instance("1", "q", ["a"])
    p = build_prompt(DEFINITION, item)
    assert p.system == DEFINITION and p.user == "Input:\nq\nOutput:\n"
    readable = build_instruction("Def.", [("i", "o"), ("j", "p")], style="readable")
    assert readable == "Input:\ni\n\nOutput:\no\n\nInput:\nj\n\nOutput:\np\n\nDef.\n" + FEW_SHOT_SUFFIX


def test_chat_rendering_uses_the_tokenizers_own_template(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    p = Prompt("SYS", "Input:\nq\nOutput:\n")
    text = render_chat(tok, p)
    assert text == "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nInput:\nq\nOutput:\n<|im_end|>\n<|im_start|>assistant\n"
    tok.chat_template = None
    assert render_chat(tok, p) == "SYS\nInput:\nq\nOutput:\n"


def _pool(n: int) -> list[Instance]:
    return [Instance(str(i), f"input {i}", [f"out {i}"]) for i in range(n)]


def test_demos_deterministic_independent_of_order_and_limit():
    pool = _pool(50)
    items = pool[:20]
    first = {it.id: [d.id for d in sample_demos(pool, 3, seed=0, task_id="task1", instance=it)] for it in items}
    # Another order, a --limit, another process: same demos per item.
    for it in reversed(items[:5]):
        assert [d.id for d in sample_demos(pool, 3, seed=0, task_id="task1", instance=it)] == first[it.id]
    other = [d.id for d in sample_demos(pool, 3, seed=1, task_id="task1", instance=items[0])]
    assert len({tuple(v) for v in first.values()}) > 1  # not the same demos for everyone
    assert other != first[items[0].id] or len(pool) < 5


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 30), k=st.integers(0, 5), seed=st.integers(0, 10**6), dup=st.booleans())
def test_demo_never_equals_the_item(n, k, seed, dup):
    pool = _pool(n)
    item = pool[seed % n]
    if dup:  # another id with the same input (a duplicate question) must not leak either
        pool.append(Instance("copy", item.input, item.output))
    demos = sample_demos(pool, k, seed=seed, task_id="t", instance=item)
    assert all(d.id != item.id and d.input != item.input for d in demos)
    assert len(demos) == min(k, sum(1 for d in pool if d.input != item.input))
    assert len({d.id for d in demos}) == len(demos)


def _word_count(p: Prompt) -> int:
    return len(p.plain().split())


def test_truncation_drops_demos_first_then_cuts_instruction_never_the_query():
    item = Instance("q", "the query text must survive whole " * 3, ["x"])
    demos = [Instance(str(i), f"demo {i} " + "words " * 20, ["out"]) for i in range(3)]
    full = fit_prompt(DEFINITION, item, demos, count=_word_count, budget=10_000)
    assert not full.truncated and full.prompt.demo_ids == ("0", "1", "2")
    budget = _word_count(build_prompt(DEFINITION, item, demos[:1])) + 1
    one = fit_prompt(DEFINITION, item, demos, count=_word_count, budget=budget)
    assert one.truncated and one.prompt.demo_ids == ("0",) and one.demos_dropped == 2 and not one.instruction_cut
    tight = _word_count(build_prompt("", item)) + 3
    cut = fit_prompt(DEFINITION, item, demos, count=_word_count, budget=tight)
    assert cut.instruction_cut and cut.prompt.demo_ids == ()
    assert cut.prompt.user == "Input:\n" + item.input + "\nOutput:\n"
    assert DEFINITION.startswith(cut.prompt.system) and 0 < len(cut.prompt.system) < len(DEFINITION)
    assert cut.tokens <= tight
    hopeless = fit_prompt(DEFINITION, item, demos, count=_word_count, budget=2)
    assert hopeless.over_budget and hopeless.prompt.user.endswith(item.input + "\nOutput:\n")


def test_truncation_with_a_real_tokenizer_keeps_the_query(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)

    def count(p: Prompt) -> int:
        return len(tok(render_chat(tok, p), add_special_tokens=False, verbose=False)["input_ids"])

    item = Instance("q", "What are the side effects of metformin?", ["x"])
    demos = [Instance(str(i), "aspirin ibuprofen cisplatin " * 30, ["tumor"]) for i in range(3)]
    budget = count(build_prompt(DEFINITION, item)) + 5
    fitted = fit_prompt(DEFINITION, item, demos, count=count, budget=budget)
    assert fitted.truncated and fitted.prompt.demo_ids == () and fitted.tokens <= budget
    assert render_chat(tok, fitted.prompt).endswith("Input:\nWhat are the side effects of metformin?\nOutput:\n<|im_end|>\n<|im_start|>assistant\n")


def test_unknown_style_is_one_clear_error():
    from medsbench.errors import MedsbenchError

    with pytest.raises(MedsbenchError, match="prompt style"):
        build_instruction("d", [("i", "o")], style="fancy")
