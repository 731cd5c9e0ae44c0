"""The CLI's command groups; each module exposes ``register(app)``.

Every group is made by :func:`group`: plain help text (``[default: ...]`` and brackets shown as
written, defaults shown, no value placeholder on flags), and help when called without a command.
"""

from __future__ import annotations

import typer


def group(help: str, **kwargs: object) -> typer.Typer:
    """A command group with the CLI's help conventions."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **kwargs)  # type: ignore[arg-type]
