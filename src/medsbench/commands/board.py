"""`medsbench board`: results store, static site, submissions.

Every command that writes holds the store folder's lock (:func:`medsbench.fileio.exclusive_lock`), and
`board build` also the output folder's: a second writer exits at once with one line naming the holder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from medsbench.commands import group
from medsbench.workspace import DEFAULT_WORKSPACE, Workspace

board_app = group("Leaderboard: add runs, build the static site, take submissions.")

WORKSPACE = typer.Option(DEFAULT_WORKSPACE, "--workspace", "-w", help="Workspace folder (tasks/, runs/, board.sqlite, site/).")
STORE = typer.Option(None, "--store", help="Store file (default: WORKSPACE/board.sqlite).")


def _store_path(workspace: Path, store: Path | None) -> Path:
    return store or Workspace(workspace).board_store


def _store(workspace: Path, store: Path | None):
    from medsbench.board.store import Store

    return Store(_store_path(workspace, store))


def _site_lock_folder(out: Path) -> Path:
    """The lock of a site folder lives beside it: a build replaces the folder itself."""
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def _locked(*folders: tuple[Path, str]) -> Iterator[None]:
    """Hold the exclusive lock of each folder (once per folder, in a fixed order)."""
    from medsbench.fileio import exclusive_lock

    seen: dict[Path, str] = {}
    for folder, what in folders:
        seen.setdefault(folder.resolve(), what)
    with contextlib.ExitStack() as stack:
        for folder in sorted(seen):
            stack.enter_context(exclusive_lock(folder, seen[folder]))
        yield


@board_app.command("add")
def add_cmd(
    runs: list[Path] = typer.Argument(..., help="Run folders (runs/NAME) with manifest.json, predictions.jsonl, results.json."),
    model_name: str = typer.Option(None, "--model-name", help="Display name (default: from the manifest's model spec)."),
    description: str = typer.Option(None, "--description"),
    link: str = typer.Option(None, "--link", help="http(s) link to the model card."),
    size: str = typer.Option(None, "--size", help="e.g. 8B."),
    allow_partial: bool = typer.Option(
        False, "--allow-partial",
        help="Accept a run with failed items or one that did not finish (the board shows each score's coverage)."),
    baseline: str = typer.Option(
        None, "--baseline",
        help="Name of a stored run to compare with (e.g. the base model of a tuned one): paired test per task and "
             "category over the items both share, shown on the model page."),
    workspace: Path = WORKSPACE,
    store: Path = STORE,
) -> None:
    """Add (or refresh) measured runs, with their judged.json when present; re-adding an unchanged run does nothing."""
    from medsbench.board.publish import add_run

    with _locked((_store_path(workspace, store).parent, "board store")), _store(workspace, store) as st:
        for run in runs:
            status = add_run(st, run, model_name=model_name, description=description, link=link, size=size,
                             allow_partial=allow_partial, baseline=baseline)
            name, notes = run.resolve().name, []
            if st.judged(name) is not None:
                notes.append("judged scores stored")
            if (compared := st.baseline_of(name)) is not None:
                notes.append(f"compared with {compared}")
            typer.echo(f"{run}: {status}" + (f" ({'; '.join(notes)})" if notes else ""))


@board_app.command("build")
def build_cmd(
    out: Path = typer.Option(None, "--out", help="Site folder (default: WORKSPACE/site)."),
    max_items: int = typer.Option(None, "--max-items-per-task", min=1,
                                  help="Items per task in a run's item browser (default: all)."),
    max_chars: int = typer.Option(2000, "--max-chars", min=100,
                                  help="Characters kept per prompt/input/output/gold in the item browser."),
    workspace: Path = WORKSPACE,
    store: Path = STORE,
) -> None:
    """Write the static site (HTML/CSS/JS/SVG, no server or CDN needed)."""
    from medsbench.board.site import build_site

    out = out or Workspace(workspace).site
    with _locked((_store_path(workspace, store).parent, "board store"), (_site_lock_folder(out), "site folder")), \
            _store(workspace, store) as st:
        rep = build_site(st, out, max_items_per_task=max_items, max_chars=max_chars)
    typer.echo(
        f"wrote {rep.files} files ({rep.bytes / 1e6:.2f} MB) to {rep.out} in {rep.seconds:.2f}s: "
        f"{rep.models} models, {rep.runs} run pages, {rep.tasks} task pages; largest page {rep.largest_page} "
        f"({rep.largest_page_bytes / 1e3:.0f} kB); open {rep.out / 'index.html'}"
    )


@board_app.command("submit")
def submit_cmd(
    file: str = typer.Argument(..., help="Official CSV (task_id,input,GT,output) or predictions.jsonl."),
    model_name: str = typer.Option(..., "--model-name", help="Display name of the submitted model."),
    description: str = typer.Option(None, "--description"),
    tasks_dir: Path = typer.Option(None, "--tasks", help="Benchmark task files (default: WORKSPACE/tasks)."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Accept tasks that are only partly covered."),
    max_mb: float = typer.Option(100.0, "--max-mb", help="Size limit of the file."),
    workspace: Path = WORKSPACE,
    store: Path = STORE,
) -> None:
    """Validate a submission item by item, score it, and store it as pending (suspicious outputs are flagged)."""
    from medsbench.board.submit import submit

    with _locked((_store_path(workspace, store).parent, "board store")), _store(workspace, store) as st:
        run, report = submit(file, model_name=model_name, description=description, workspace=workspace, store=st,
                             tasks_dir=tasks_dir, allow_partial=allow_partial, max_bytes=int(max_mb * (1 << 20)))
    typer.echo(report.describe())
    typer.echo(f"accepted as run {run!r} (pending); publish with: medsbench board approve {run}")


@board_app.command("approve")
def approve_cmd(name: str = typer.Argument(..., help="Run name or model name."), workspace: Path = WORKSPACE, store: Path = STORE) -> None:
    """Publish a pending submission (look at its flags in `board list --pending` first)."""
    with _locked((_store_path(workspace, store).parent, "board store")), _store(workspace, store) as st:
        for run in st.approve(name):
            typer.echo(f"approved {run}")


@board_app.command("list")
def list_cmd(
    pending: bool = typer.Option(False, "--pending", help="Only pending submissions."),
    workspace: Path = WORKSPACE,
    store: Path = STORE,
) -> None:
    """List runs in the store: each run name in full on its own line (approve needs it), details below."""
    from medsbench.board.names import POOLED_PREFIX

    with _store(workspace, store) as st:
        runs = [r for r in st.runs(include_pending=True) if not pending or r.status == "pending"]
        typer.echo(f"board store {st.path} (last update {st.last_update or 'never'}): "
                   f"{len(runs)} {'pending ' if pending else ''}run(s)")
        for r in runs:
            infos = [i for i in st.task_info(r.name) if not i["task_id"].startswith(POOLED_PREFIX)]
            failed = sum(i["n_failed"] or 0 for i in infos)
            answered = sum(i["n"] or 0 for i in infos)
            details = [f"model {r.model}", r.kind, r.status, f"protocol {r.protocol or '-'}", f"{len(infos)} task(s)",
                       f"{st.prediction_count(r.name)} prediction(s)"]
            if failed:
                details.append(f"coverage {100 * answered / (answered + failed):.0f}% ({failed} failed)")
            if r.partial:
                details.append("partial")
            if st.judged(r.name) is not None:
                details.append("judged scores")
            if (compared := st.baseline_of(r.name)) is not None:
                details.append(f"compared with {compared}")
            typer.echo(r.name)
            typer.echo("    " + " · ".join(details))
            for flag in r.flags:
                typer.echo(f"    FLAG {flag.get('text', flag)}")


@board_app.command("serve")
def serve_cmd(
    site: Path = typer.Option(None, "--site", help="Site folder (default: WORKSPACE/site)."),
    port: int = typer.Option(8000, "--port"),
    workspace: Path = WORKSPACE,
) -> None:
    """Serve the built site on 127.0.0.1 for a local look (Ctrl-C stops)."""
    from medsbench.board.serve import make_server

    site = site or Workspace(workspace).site
    server = make_server(site, port)
    host, real_port = str(server.server_address[0]), server.server_address[1]
    typer.echo(f"serving {site} at http://{host}:{real_port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    app.add_typer(board_app, name="board")
