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
from medsbench.prompts.protocols import (
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    Protocol,
    get_protocol,
)
from medsbench.prompts.render import (
    Fitted,
    fit_prompt,
    has_chat_template,
    render_chat,
    render_messages,
)

__all__ = [
    "DEFAULT_PROTOCOL",
    "FEW_SHOT_SUFFIX",
    "PROMPT_STYLES",
    "PROTOCOLS",
    "Fitted",
    "Prompt",
    "Protocol",
    "build_instruction",
    "build_prompt",
    "build_query",
    "fit_prompt",
    "format_demo",
    "get_protocol",
    "has_chat_template",
    "render_chat",
    "render_messages",
    "sample_demos",
]
