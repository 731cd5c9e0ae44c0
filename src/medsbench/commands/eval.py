"""`medsbench eval`."""

from __future__ import annotations

import typer

from medsbench.commands import placeholder


def register(app: typer.Typer) -> None:
    placeholder(app, "eval", "issue C", "Evaluate a model on MedS-Bench tasks")
