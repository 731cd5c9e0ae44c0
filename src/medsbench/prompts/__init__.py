"""Prompt construction shared by evaluation and instruction-data building."""

from medsbench.prompts.format import (
    FEW_SHOT_SUFFIX,
    Prompt,
    build_instruction,
    build_prompt,
    build_query,
    format_demo,
    sample_demos,
)

__all__ = [
    "FEW_SHOT_SUFFIX",
    "Prompt",
    "build_instruction",
    "build_prompt",
    "build_query",
    "format_demo",
    "sample_demos",
]
