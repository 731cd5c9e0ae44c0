"""`medsbench score`."""

from __future__ import annotations

import typer

from medsbench.commands import placeholder


def register(app: typer.Typer) -> None:
    placeholder(app, "score", "issue B", "Score predictions (reference and strict metrics)")
