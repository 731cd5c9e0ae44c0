"""Rendering a :class:`Prompt` into the text a model sees, and fitting it into a context.

Chat models go through the tokenizer's own chat template (never a hand-written
one); tokenizers without a template get the official plain concatenation.
Truncation drops demos first (last demo first), then shortens the definition
part of the instruction; the query and the generation prompt are never cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from medsbench.prompts.format import Prompt, build_prompt
from medsbench.tasks.format import Instance


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def adds_bos(tokenizer: Any) -> bool:
    """Whether tokenizing text (with special tokens) puts the BOS token first by itself."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return bos is not None and tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [bos]


def render_plain(tokenizer: Any, prompt: Prompt) -> str:
    """The official plain prompt (``EvalDataset.default_build_inputs``): the BOS text where the tokenizer
    does not add one itself, then instruction + newline + query, tokenized with special tokens."""
    bos = "" if adds_bos(tokenizer) else (getattr(tokenizer, "bos_token", None) or "")
    return bos + prompt.plain()


def render_chat(tokenizer: Any, prompt: Prompt, *, template: bool = True) -> str:
    """The exact text the model receives: the chat template with a generation prompt, or (a tokenizer
    without a template, or ``template=False``: the model spec's ``chat_template=none``) the plain prompt."""
    if not template or not has_chat_template(tokenizer):
        return render_plain(tokenizer, prompt)
    return tokenizer.apply_chat_template(prompt.messages(), tokenize=False, add_generation_prompt=True)


def render_messages(prompt: Prompt) -> str:
    """A readable, deterministic text of a chat request (for APIs that render on their side)."""
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in prompt.messages())


@dataclass(frozen=True)
class Fitted:
    prompt: Prompt
    tokens: int | None
    truncated: bool
    demos_dropped: int = 0
    instruction_cut: bool = False
    over_budget: bool = False  # even the bare query does not fit: sent as is, flagged


def fit_prompt(
    definition: str,
    instance: Instance,
    demos: Sequence[Instance],
    *,
    count: Callable[[Prompt], int | None] | None,
    budget: int | None,
    style: str = "official",
    frame: bool = True,
) -> Fitted:
    """Build the prompt and make it fit ``budget`` tokens (context minus generation room).

    ``frame`` is passed to :func:`build_prompt` (``False``: raw zero-shot query).
    """
    prompt = build_prompt(definition, instance, demos, style=style, frame=frame)
    if count is None or budget is None:
        return Fitted(prompt, None, False)
    first = count(prompt)
    if first is None:  # the backend cannot count tokens: nothing is cut, as without a budget
        return Fitted(prompt, None, False)
    n = first

    def tokens(cand: Prompt) -> int:
        m = count(cand)
        if m is None:  # the same backend counted the full prompt above
            raise RuntimeError("count_tokens returned None for a shortened prompt")
        return m

    if n <= budget:
        return Fitted(prompt, n, False)
    kept = list(demos)
    while kept:
        kept.pop()
        prompt = build_prompt(definition, instance, kept, style=style, frame=frame)
        n = tokens(prompt)
        if n <= budget:
            return Fitted(prompt, n, True, demos_dropped=len(demos) - len(kept))
    # No demos left: cut the definition from its end (binary search on characters).
    dropped = len(demos)
    lo, hi = 0, len(definition)
    best: tuple[Prompt, int] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = build_prompt(definition[:mid], instance, (), style=style, frame=frame)
        m = tokens(cand)
        if m <= budget:
            best = (cand, m)
            lo = mid + 1
        else:
            hi = mid - 1
    if best is not None:
        return Fitted(best[0], best[1], True, demos_dropped=dropped, instruction_cut=True)
    bare = build_prompt("", instance, (), style=style, frame=frame)
    return Fitted(bare, tokens(bare), True, demos_dropped=dropped, instruction_cut=True, over_budget=True)
