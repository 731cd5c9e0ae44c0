"""`medsbench export`: MedS-Bench as an lm-evaluation-harness task group or inspect_ai tasks."""

from __future__ import annotations

import re
from pathlib import Path

from typing import Any

import typer

from medsbench.commands import group
from medsbench.prompts.protocols import get_protocol
from medsbench.records.config import EvalConfig
from medsbench.workspace import DEFAULT_WORKSPACE, Workspace

export_app = group("Export tasks to other harnesses (lm-evaluation-harness, inspect_ai), with our prompts and scorers.")
HELP = EvalConfig.cli_fields()


def _settings(workspace: Path | None, **given: Any) -> Any:
    """The export's settings (:class:`medsbench.export.items.ExportSettings`): the eval settings that shape
    prompts, as `medsbench eval` takes them; an unknown protocol fails in one line before any file is read."""
    from medsbench.export.items import ExportSettings

    config = EvalConfig.from_flags(**given)
    get_protocol(config.protocol)
    return ExportSettings(config, Workspace.at(workspace))


def _default_name(tasks: str, protocol: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9]+', '_', tasks).strip('_')}_{protocol}"


# The prompt-shaping flags are EvalConfig fields, with eval's help texts (a test checks they stay so).
TASKS = typer.Option(..., "--tasks", "-t", help=HELP["tasks"])
OUT = typer.Option(..., "--out", help="Folder to write (created).")
NAME = typer.Option(None, "--name", help="Group name: tasks are medsbench_<name>_<task>. [default: <tasks>_<protocol>]")
WORKSPACE = typer.Option(DEFAULT_WORKSPACE, "--workspace", "-w", help="Workspace folder (tasks/).")
PROTOCOL = typer.Option("medsbench", "--protocol", help=HELP["protocol"])
LIMIT = typer.Option(None, "--limit", help=HELP["limit"])
SHOTS = typer.Option(None, "--shots", min=0, help=HELP["shots"])
SEED = typer.Option(0, "--seed", help=HELP["seed"] + " (the same items get the same demos as eval)")
MAX_NEW = typer.Option(None, "--max-new-tokens", help=HELP["max_new_tokens"])
DEFINITIONS = typer.Option(None, "--definitions", help=HELP["definitions"])
STYLE = typer.Option("official", "--prompt-style", help=HELP["prompt_style"])


@export_app.command("lm-eval")
def lm_eval_cmd(
    tasks: str = TASKS, out: Path = OUT, name: str = NAME, workspace: Path = WORKSPACE, protocol: str = PROTOCOL,
    limit: str = LIMIT, shots: int = SHOTS, seed: int = SEED, max_new_tokens: int = MAX_NEW,
    definitions: Path = DEFINITIONS, prompt_style: str = STYLE,
    chat: bool = typer.Option(True, "--chat/--plain", help="chat: instruction block as the system message (run lm_eval with --apply_chat_template); plain: our plain prompt, for models without a chat template."),
) -> None:
    """Write an lm-evaluation-harness task group: `lm_eval --include_path OUT --tasks medsbench_<name>`."""
    from medsbench.export.lm_eval import write_lm_eval

    settings = _settings(workspace, tasks=tasks, protocol=protocol, limit=limit, shots=shots, seed=seed,
                         max_new_tokens=max_new_tokens, definitions=definitions, prompt_style=prompt_style)
    summary = write_lm_eval(settings, out, name=name or _default_name(tasks, protocol), chat=chat)
    n = sum(summary["items"].values())
    typer.echo(f"wrote {len(summary['tasks'])} task(s), {n} item(s) to {out}")
    flag = " --apply_chat_template" if chat else ""
    typer.echo(f"run: lm_eval --model hf --model_args pretrained=MODEL --include_path {out} --tasks {summary['group']}{flag}")


@export_app.command("inspect")
def inspect_cmd(
    tasks: str = TASKS, out: Path = OUT, name: str = NAME, workspace: Path = WORKSPACE, protocol: str = PROTOCOL,
    limit: str = LIMIT, shots: int = SHOTS, seed: int = SEED, max_new_tokens: int = MAX_NEW,
    definitions: Path = DEFINITIONS, prompt_style: str = STYLE,
) -> None:
    """Write inspect_ai tasks: `inspect eval OUT/medsbench_<name>.py --model PROVIDER/MODEL`."""
    from medsbench.export.inspect_tasks import write_inspect

    settings = _settings(workspace, tasks=tasks, protocol=protocol, limit=limit, shots=shots, seed=seed,
                         max_new_tokens=max_new_tokens, definitions=definitions, prompt_style=prompt_style)
    summary = write_inspect(settings, out, name=name or _default_name(tasks, protocol))
    n = sum(summary["items"].values())
    typer.echo(f"wrote {len(summary['tasks'])} task(s), {n} item(s) to {out}")
    # inspect resolves task files relative to the working folder (an absolute path is refused)
    typer.echo(f"run: cd {out} && inspect eval {Path(summary['file']).name} --model hf/NAME -M model_path=MODEL_DIR -M do_sample=False")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
