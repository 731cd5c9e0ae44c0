"""The paper's prompt, rendering through the tokenizer's template, demo choice and truncation."""

from __future__ import annotations

import pytest

from medsbench.records.config import EvalConfig
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
    tok.chat_template = None  # no template: the official plain prompt, BOS text first (this tokenizer adds none)
    assert render_chat(tok, p) == tok.bos_token + "SYS\nInput:\nq\nOutput:\n" and tok.bos_token


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


def test_a_backend_that_cannot_count_tokens_is_not_truncated():
    # ModelBackend.count_tokens may return None (BaseBackend does): the prompt is kept whole, as with no budget.
    item = Instance("q", "the query " * 50, ["x"])
    demos = [Instance(str(i), "words " * 50, ["out"]) for i in range(3)]
    fitted = fit_prompt(DEFINITION, item, demos, count=lambda p: None, budget=5)
    assert not fitted.truncated and fitted.tokens is None and fitted.prompt.demo_ids == ("0", "1", "2")


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


# -- evaluation protocols -----------------------------------------------------------------------------------------


def test_protocol_registry_and_unknown_name():
    from medsbench.errors import MedsbenchError
    from medsbench.prompts import DEFAULT_PROTOCOL, PROTOCOLS, get_protocol

    assert DEFAULT_PROTOCOL == "medsbench" and set(PROTOCOLS) == {"official", "paper", "medsbench"}
    assert get_protocol(PROTOCOLS["paper"]) is PROTOCOLS["paper"]
    with pytest.raises(MedsbenchError) as err:
        get_protocol("offical")
    assert str(err.value) == "unknown protocol 'offical' (known: official, paper, medsbench)"
    for p in PROTOCOLS.values():  # every protocol names its departures from the official scripts
        assert p.deviations and all(isinstance(d, str) and d for d in p.deviations)
        assert p.to_json()["name"] == p.name and p.to_json()["deviations"] == list(p.deviations)


def test_protocols_differ_exactly_where_documented():
    from medsbench.prompts import PROTOCOLS

    off, paper, ours = PROTOCOLS["official"], PROTOCOLS["paper"], PROTOCOLS["medsbench"]
    # Shots: official 3 everywhere, paper MCQA 0, medsbench the catalog's; an explicit --shots always wins.
    assert [off.shots_for(c, 0) for c in ("mcqa", "ner")] == [3, 3]
    assert [paper.shots_for(c, 3) for c in ("mcqa", "ner")] == [0, 3]
    assert [ours.shots_for("mcqa", 0), ours.shots_for("ner", 3)] == [0, 3]
    assert off.shots_for("ner", 3, override=0) == 0 and ours.shots_for("mcqa", 0, override=2) == 2
    # Zero-shot framing: only medsbench keeps Input:/Output: without demos.
    assert (off.frame_for(0), paper.frame_for(0), ours.frame_for(0)) == (False, False, True)
    assert off.frame_for(3) and ours.frame_for(3)
    # Generation limits: 200 officially, the catalog's otherwise.
    assert (off.new_tokens_for(1000), paper.new_tokens_for(1000), ours.new_tokens_for(1000)) == (200, 200, 1000)
    assert off.new_tokens_for(1000, override=64) == 64
    assert (off.demo_pool, paper.demo_pool, ours.demo_pool) == ("test", "test", "train_else_test")
    assert (off.prompt_tokens, paper.prompt_tokens, ours.prompt_tokens) == (2048, 2048, None)
    assert off.definition_source == paper.definition_source == "task_file"
    assert ours.definition_source == "definitions_then_task_file"


def test_raw_zero_shot_query():
    item = Instance("1", "  raw question?\n", ["a"])
    p = build_prompt(DEFINITION, item, frame=False)
    assert p.system == DEFINITION and p.user == "  raw question?\n"
    assert p.plain() == DEFINITION + "\n  raw question?\n"


class _WordBackend:
    """A backend that counts words as tokens and renders plain text (enough for planning)."""

    def __init__(self, context: int | None):
        self._context = context

    @property
    def context_length(self):
        return self._context

    def count_tokens(self, prompt: Prompt) -> int:
        return len(prompt.plain().split())

    def render(self, prompt: Prompt):
        from medsbench.models.base import Rendered

        return Rendered(prompt.plain(), prompt=prompt.plain())


def _tasks(tmp_path, train: bool = True, words: int = 0):
    from medsbench.tasks.format import write_task

    meta = {"Definition": ["Recognize the chemicals."], "Categories": ["Named Entity Recognition"]}
    files = {"test": tmp_path / "task126_bc5cdr_chem.test.json"}
    write_task(files["test"], meta, [Instance(f"t{i}", f"Sentence {i} with aspirin. " + "w " * words, ["aspirin"]) for i in range(6)])
    if train:
        files["train"] = tmp_path / "task126_bc5cdr_chem.train.json"
        write_task(files["train"], meta, [Instance(f"tr{i}", f"Train sentence {i} with cisplatin. " + "w " * words, ["cisplatin"]) for i in range(9)])
    return files


def _plan(files, protocol="medsbench", backend=None, **kw):
    from medsbench.runs.plan import plan_task
    from medsbench.tasks.catalog import catalog

    defs = kw.pop("definitions", {})
    if "style" in kw:
        kw["prompt_style"] = kw.pop("style")
    if protocol is not None:
        kw["protocol"] = protocol
    return plan_task(catalog()["task126"], files, backend or _WordBackend(None), EvalConfig.from_flags(**kw),
                     definitions=defs)


def test_plan_task_applies_the_protocol(tmp_path):
    files = _tasks(tmp_path)
    default, ours, off = _plan(files, protocol=None), _plan(files), _plan(files, "official")
    assert [i.text for i in default.items] == [i.text for i in ours.items]  # medsbench is the default
    assert default.protocol == "medsbench" and off.protocol == "official"
    # medsbench: train-split demos; official: demos from the test file, never the item itself.
    assert all(len(i.demo_ids) == 3 and all(d.startswith("tr") for d in i.demo_ids) for i in ours.items)
    assert all(len(i.demo_ids) == 3 and i.instance.id not in i.demo_ids and all(d.startswith("t") and not d.startswith("tr") for d in i.demo_ids) for i in off.items)
    # Zero-shot: medsbench keeps the frame, official sends the raw input.
    z_ours, z_off = _plan(files, shots=0), _plan(files, "official", shots=0)
    assert z_ours.items[0].text == "Recognize the chemicals.\nInput:\nSentence 0 with aspirin. \nOutput:\n"
    assert z_off.items[0].text == "Recognize the chemicals.\nSentence 0 with aspirin. "
    # --definitions replaces the file's Definition for medsbench only.
    defs = {"task126": "Paper definition."}
    assert _plan(files, definitions=defs).definition == "Paper definition."
    assert _plan(files, "official", definitions=defs).definition == "Recognize the chemicals."
    assert _plan(files, "paper", definitions=defs).definition == "Recognize the chemicals."


def test_plan_task_generation_limits_and_style(tmp_path):
    from medsbench.errors import MedsbenchError
    from medsbench.runs.plan import plan_task
    from medsbench.tasks.catalog import catalog

    files = _tasks(tmp_path)
    meqsum = catalog()["task114"]  # summarization: 1000 new tokens in the catalog
    def plan(**kw):
        return plan_task(meqsum, files, _WordBackend(None), EvalConfig.from_flags(limit=1, shots=0, **kw), definitions={})

    assert plan().max_new_tokens == meqsum.max_new_tokens == 1000
    assert plan(protocol="official").max_new_tokens == 200
    assert plan(protocol="paper", max_new_tokens=50).max_new_tokens == 50
    assert _plan(files, style="readable").items  # medsbench allows the readable style
    with pytest.raises(MedsbenchError, match="prompt style 'readable' is not allowed with --protocol official"):
        _plan(files, "official", style="readable")
    with pytest.raises(MedsbenchError, match="unknown protocol"):
        _plan(files, "fancy")


def test_official_prompt_budget_is_2048_tokens_and_never_cuts_the_query(tmp_path):
    files = _tasks(tmp_path, words=600)  # each demo and the query ~610 words: 3 demos + query ~2440 "tokens"
    big = _WordBackend(100_000)
    ours, off = _plan(files, backend=big), _plan(files, "official", backend=big)
    assert all(len(i.demo_ids) == 3 and not i.truncated for i in ours.items)  # medsbench: the whole context
    for item in off.items:
        assert item.truncated and len(item.demo_ids) == 2 and len(item.text.split()) <= 2048
        assert item.text.endswith("Input:\n" + item.instance.input + "\nOutput:\n")
        assert item.max_new_tokens == 200
    # A small model context is the tighter budget under every protocol.
    small = _WordBackend(1300 + 200)
    assert all(len(i.demo_ids) == 1 for i in _plan(files, "official", backend=small).items)
    assert all(len(i.demo_ids) == 1 for i in _plan(files, backend=small).items)
