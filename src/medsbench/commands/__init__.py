"""CLI command groups; each module exposes ``register(app)``."""

from __future__ import annotations

import typer


def placeholder(app: typer.Typer, name: str, issue: str, summary: str) -> None:
    """Register a group that is not built yet: it says so in one line."""

    @app.command(name, help=f"{summary} (not built yet: {issue}).", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _not_built() -> None:
        typer.echo(f"medsbench {name}: not built yet ({issue}).")
        raise typer.Exit(2)
