"""`medsbench data`: task catalog, converters, validation and statistics."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from medsbench.tasks.catalog import catalog

data_app = typer.Typer(help="Task files: catalog, convert raw data, validate, stats.", no_args_is_help=True)


@data_app.command("catalog")
def catalog_cmd(
    category: str = typer.Option(None, "--category", help="Only this category key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the MedS-Bench task catalog."""
    cat = catalog()
    rows = [t for t in cat.tasks.values() if category is None or t.category == category]
    if as_json:
        import dataclasses

        from medsbench.fileio import dumps

        typer.echo(dumps([dataclasses.asdict(t) for t in rows], indent=True).decode())
        return
    table = Table(title=f"MedS-Bench catalog ({len(rows)} tasks)")
    for col in ("id", "category", "dataset", "lang", "metric", "shots", "availability", "source"):
        table.add_column(col)
    for t in rows:
        table.add_row(t.id, t.category, t.dataset, t.language, t.metric, str(t.shots), t.availability, t.source or "-")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
