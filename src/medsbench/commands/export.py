"""`medsbench export`: MedS-Bench as an lm-evaluation-harness task group or inspect_ai tasks."""

from __future__ import annotations

import re
from pathlib import Path

from typing import Any

import typer

from medsbench.export.items import ExportConfig
from medsbench.prompts.protocols import get_protocol

export_app = typer.Typer(help="Export tasks to other harnesses (lm-evaluation-harness, inspect_ai), with our prompts and scorers.",
                         no_args_is_help=True)


def _config(**settings: Any) -> ExportConfig:
    """The export's settings; an unknown protocol fails in one line before any file is read."""
    get_protocol(settings["protocol"])
    return ExportConfig(**settings)


def _default_name(tasks: str, protocol: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9]+', '_', tasks).strip('_')}_{protocol}"


TASKS = typer.Option(..., "--tasks", "-t", help="Task ids, categories, 'all', 'available' or 'quick' (as eval).")
OUT = typer.Option(..., "--out", help="Folder to write (created).")
NAME = typer.Option(None, "--name", help="Group name: tasks are medsbench_<name>_<task>. [default: <tasks>_<protocol>]")
WORKSPACE = typer.Option(Path("medsbench-work"), "--workspace", "-w", help="Workspace folder (tasks/).")
PROTOCOL = typer.Option("medsbench", "--protocol", help="official | paper | medsbench: whose prompts, shots, stops and limits.")
LIMIT = typer.Option(None, "--limit", min=1, help="First N items of each task.")
SHOTS = typer.Option(None, "--shots", min=0, help="Demos per prompt (default: the protocol's).")
SEED = typer.Option(0, "--seed", help="Seed of the demo choice (the same items get the same demos as eval).")
MAX_NEW = typer.Option(None, "--max-new-tokens", help="Override the protocol's generation limit.")
DEFINITIONS = typer.Option(None, "--definitions", help="RewriteDefinitions.json (protocol medsbench).")
STYLE = typer.Option("official", "--prompt-style", help="official | readable (protocol medsbench only).")


@export_app.command("lm-eval")
def lm_eval_cmd(
    tasks: str = TASKS, out: Path = OUT, name: str = NAME, workspace: Path = WORKSPACE, protocol: str = PROTOCOL,
    limit: int = LIMIT, shots: int = SHOTS, seed: int = SEED, max_new_tokens: int = MAX_NEW,
    definitions: Path = DEFINITIONS, prompt_style: str = STYLE,
    chat: bool = typer.Option(True, "--chat/--plain", help="chat: instruction block as the system message (run lm_eval with --apply_chat_template); plain: our plain prompt, for models without a chat template."),
) -> None:
    """Write an lm-evaluation-harness task group: `lm_eval --include_path OUT --tasks medsbench_<name>`."""
    from medsbench.export.lm_eval import write_lm_eval

    config = _config(tasks=tasks, workspace=workspace, protocol=protocol, limit=limit, shots=shots, seed=seed,
                     max_new_tokens=max_new_tokens, definitions=definitions, prompt_style=prompt_style)
    summary = write_lm_eval(config, out, name=name or _default_name(tasks, protocol), chat=chat)
    n = sum(summary["items"].values())
    typer.echo(f"wrote {len(summary['tasks'])} task(s), {n} item(s) to {out}")
    flag = " --apply_chat_template" if chat else ""
    typer.echo(f"run: lm_eval --model hf --model_args pretrained=MODEL --include_path {out} --tasks {summary['group']}{flag}")


@export_app.command("inspect")
def inspect_cmd(
    tasks: str = TASKS, out: Path = OUT, name: str = NAME, workspace: Path = WORKSPACE, protocol: str = PROTOCOL,
    limit: int = LIMIT, shots: int = SHOTS, seed: int = SEED, max_new_tokens: int = MAX_NEW,
    definitions: Path = DEFINITIONS, prompt_style: str = STYLE,
) -> None:
    """Write inspect_ai tasks: `inspect eval OUT/medsbench_<name>.py --model PROVIDER/MODEL`."""
    from medsbench.export.inspect_tasks import write_inspect

    config = _config(tasks=tasks, workspace=workspace, protocol=protocol, limit=limit, shots=shots, seed=seed,
                     max_new_tokens=max_new_tokens, definitions=definitions, prompt_style=prompt_style)
    summary = write_inspect(config, out, name=name or _default_name(tasks, protocol))
    n = sum(summary["items"].values())
    typer.echo(f"wrote {len(summary['tasks'])} task(s), {n} item(s) to {out}")
    # inspect resolves task files relative to the working folder (an absolute path is refused)
    typer.echo(f"run: cd {out} && inspect eval {Path(summary['file']).name} --model hf/NAME -M model_path=MODEL_DIR -M do_sample=False")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
