"""`medsbench board`."""

from __future__ import annotations

import typer

from medsbench.commands import placeholder


def register(app: typer.Typer) -> None:
    placeholder(app, "board", "issue D", "Leaderboard: store, static site, submissions")
