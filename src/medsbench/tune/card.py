"""Model card and training record written beside the tuned weights."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from medsbench.fileio import atomic_write, iter_jsonl
import yaml

from medsbench.models.training import TRAINING_RECORD


def loss_points(out: Path) -> list[tuple[int, float]]:
    path = Path(out) / "metrics.jsonl"
    if not path.exists():
        return []
    return [(int(r["step"]), float(r["loss"])) for _, r in iter_jsonl(path) if "loss" in r]


def plot_loss(out: Path) -> Path | None:
    points = loss_points(out)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    ax.plot([s for s, _ in points], [v for _, v in points], lw=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (assistant tokens)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(out) / "loss_curve.png"
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return path


def _md(text: Any) -> str:
    # The card is Markdown that hubs render as HTML: escape user-controlled strings.
    return html.escape(str(text), quote=False)


def write_card(out: Path, info: dict[str, Any]) -> Path:

    out = Path(out)
    png = plot_loss(out)
    cfg_yaml = yaml.safe_dump(info.get("config", {}), sort_keys=False).strip()
    card_link = info.get("mixture_card")
    data_line = f"[{_md(info.get('mixture_name'))}]({_md(card_link)})" if card_link else _md(info.get("mixture"))
    loss = info.get("train_loss")
    lines = [
        "---",
        "library_name: " + ("peft" if info.get("method") == "lora" else "transformers"),
        "tags: [medsbench, medical, sft, trl]",
        "---",
        f"# {_md(out.name)}",
        "",
        "Instruction-tuned with `medsbench tune` (TRL SFTTrainer, assistant-only loss).",
        "",
        "| | |",
        "|---|---|",
        f"| base | `{_md(info.get('base'))}` |",
        f"| data | {data_line} |",
        f"| method | {_md(info.get('method'))} |",
        f"| steps | {_md(info.get('steps'))} |",
        f"| examples | {_md(info.get('examples'))} |",
        f"| final mean training loss | {loss:.4f} |" if isinstance(loss, float) else "| final mean training loss | - |",
        f"| packing | {_md(info.get('packing'))} |",
        f"| chat template sha256 | `{_md(info.get('chat_template_sha256'))}` |",
        "",
    ]
    if png is not None:
        lines += ["## Loss curve", "", f"![loss curve]({png.name})", ""]
    lines += ["## Config", "", "```yaml", _md(cfg_yaml), "```", ""]
    lines += [
        "Evaluate with `medsbench eval --model hf:" + _md(out) + "`; the chat template used in training is recorded in "
        f"`{TRAINING_RECORD}` and checked by eval.",
        "",
    ]
    path = out / "README.md"
    with atomic_write(path) as fh:
        fh.write("\n".join(lines))
    return path
