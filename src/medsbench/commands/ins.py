"""`medsbench ins`."""

from __future__ import annotations

import typer

from medsbench.commands import placeholder


def register(app: typer.Typer) -> None:
    placeholder(app, "ins", "issue E", "Build MedS-Ins instruction-tuning mixtures")
