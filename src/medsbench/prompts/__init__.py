"""Prompt construction shared by evaluation and instruction-data building."""

from medsbench.prompts.format import (
    FEW_SHOT_SUFFIX,
    PROMPT_STYLES,
    Prompt,
    build_instruction,
    build_prompt,
    build_query,
    format_demo,
    sample_demos,
)
from medsbench.prompts.render import Fitted, fit_prompt, has_chat_template, render_chat, render_messages

__all__ = [
    "FEW_SHOT_SUFFIX",
    "PROMPT_STYLES",
    "Fitted",
    "Prompt",
    "build_instruction",
    "build_prompt",
    "build_query",
    "fit_prompt",
    "format_demo",
    "has_chat_template",
    "render_chat",
    "render_messages",
    "sample_demos",
]
