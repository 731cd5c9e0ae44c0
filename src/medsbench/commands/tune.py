"""`medsbench tune`."""

from __future__ import annotations

import typer

from medsbench.commands import placeholder


def register(app: typer.Typer) -> None:
    placeholder(app, "tune", "issue F", "Instruction-tune a model on a mixture")
