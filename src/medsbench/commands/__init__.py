"""The CLI's command groups; each module exposes ``register(app)``.

Every group is made by :func:`group`: plain help text (``[default: ...]`` and brackets shown as
written, defaults shown, no value placeholder on flags), and help when called without a command.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import typer


def group(help: str, **kwargs: object) -> typer.Typer:
    """A command group with the CLI's help conventions."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **kwargs)  # type: ignore[arg-type]


def echo_import(summary: Iterable[str], report: Any) -> str:
    """Print a release import's summary lines, then its warnings and errors (stderr); returns where it came
    from (``REPO@COMMIT`` from the Hub, or the local folder) for the closing line."""
    for line in summary:
        typer.echo(line)
    for line in report.warnings:
        typer.echo(f"warning: {line}", err=True)
    for line in report.errors:
        typer.echo(f"error: {line}", err=True)
    src = report.source
    at = f"@{src['commit'] or src['revision']}" if src.get("kind") == "huggingface" else ""
    return f"{src.get('repo') or src.get('folder')}{at}"
