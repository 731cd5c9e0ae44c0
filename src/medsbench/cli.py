"""The ``medsbench`` command: a thin typer layer over the library.

Each command group lives in ``medsbench.commands.<name>`` and exposes
``register(app)``; importing a group must stay cheap (no torch at import time).
Every :class:`~medsbench.errors.MedsbenchError` becomes one ``error: ...`` line
on stderr and exit code 1, never a traceback; so does an ``OSError`` (a full disk,
a read-only or missing place): ``error: PATH: reason (ENOSPC|EROFS|EACCES|...)``.
"""

from __future__ import annotations

import importlib
import sys

import typer

from medsbench import __version__
from medsbench.errors import MedsbenchError
from medsbench.commands.onramp import translate
from medsbench.fileio import os_error_line

GROUPS = ("data", "score", "eval", "runs", "judge", "board", "ins", "tune", "export", "contam")

app = typer.Typer(
    name="medsbench",
    help="Evaluate and build clinical LLMs: MedS-Bench tasks, scoring, evaluation, leaderboard, MedS-Ins, tuning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text as written: "[default: ...]" stays visible, flags show no value placeholder
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medsbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """medsbench: MedS-Bench evaluation and MedS-Ins building toolkit."""


for _group in GROUPS:
    importlib.import_module(f"medsbench.commands.{_group}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        if args[:1] == ["eval"]:  # lm-evaluation-harness flags: translated where exact, else refused in one line

            rest, notes = translate(args[1:])
            for note in notes:
                typer.secho(f"note: {note}", fg="cyan", err=True)
            args = ["eval", *rest]
        app(args=args, prog_name="medsbench", standalone_mode=True)
    except MedsbenchError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    except OSError as exc:

        typer.secho(f"error: {os_error_line(exc)}", fg="red", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="yellow", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
