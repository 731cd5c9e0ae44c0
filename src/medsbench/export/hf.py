"""Task files and scored runs as Hugging Face datasets, with a dataset card.

* :func:`export_task_dataset`: the selected task files, one dataset config per task and one split
  per task file (``test``/``train``); columns ``id``, ``input``, ``output`` (list of references).
* :func:`export_run_dataset`: a run's items (predictions.jsonl) with their per-item scores in both
  modes (strict ``<metric>`` and official-script ``ref_<metric>`` columns; None for a failed item
  or one the official script does not count), one config per task.

``format="parquet"`` writes the Hub layout (``data/<config>/<split>.parquet`` + ``README.md``),
loadable with ``datasets.load_dataset("parquet", data_files=...)`` or ``load_dataset(OUT, CONFIG)``;
``format="hf"`` writes ``<config>/`` folders of ``DatasetDict.save_to_disk`` (``load_from_disk``).
The card (``README.md``) has a YAML header made with huggingface_hub's ``DatasetCardData``:
``configs`` with their data files, licence, and a ``medsbench`` block (source and sha256 of every
input file, counts per config and split). :func:`push_to_hub` uploads a parquet export.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.records.folder import RunFolder
from medsbench.errors import MedsbenchError, require
from medsbench.fileio import atomic_write, sha256_file
from medsbench.ids import inside
from medsbench.tasks.format import iter_instances, read_meta
from medsbench.tasks.workspace import resolve_tasks
from medsbench import __version__
from medsbench.metrics import score_items

FORMATS = ("parquet", "hf")


@dataclass
class Config:
    """One dataset config: its name, its splits' rows, and what the card says about it."""

    name: str
    splits: dict[str, list[dict[str, Any]]]
    info: dict[str, Any]


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise MedsbenchError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")


def _write(configs: Sequence[Config], out: Path, fmt: str) -> list[dict[str, Any]]:
    """Write every config's splits; returns the card's ``configs`` entries."""
    datasets = require("datasets", "export", "Hugging Face dataset export")
    import pyarrow.parquet as pq
    entries = []
    for cfg in configs:
        files = []
        for split, rows in cfg.splits.items():
            ds = datasets.Dataset.from_list(rows)
            if fmt == "parquet":
                rel = f"data/{cfg.name}/{split}.parquet"
                target = inside(out, *rel.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(ds.data.table, str(target))  # no progress bar, unlike Dataset.to_parquet
                files.append({"split": split, "path": rel})
        if fmt == "hf":
            dd = datasets.DatasetDict({s: datasets.Dataset.from_list(r) for s, r in cfg.splits.items()})
            dd.save_to_disk(str(inside(out, cfg.name)))
            files = [{"split": s, "path": f"{cfg.name}/{s}"} for s in cfg.splits]
        entries.append({"config_name": cfg.name, "data_files": files})
    return entries


def _card(out: Path, meta: dict[str, Any], body: str) -> Path:
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(**meta)
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    path = out / "README.md"
    with atomic_write(path) as fh:
        fh.write(str(card))
    return path


def _licence(infos: Sequence[dict[str, Any]]) -> str:
    """The card's licence: the one licence every config shares, else ``other`` (each config names its own)."""
    found = {str(i.get("license")) for i in infos if i.get("license")}
    if len(found) == 1:
        value = found.pop()
        spdx = {"CC BY 4.0": "cc-by-4.0", "CC BY-SA 4.0": "cc-by-sa-4.0", "CC BY-NC 4.0": "cc-by-nc-4.0", "MIT": "mit",
                "Apache-2.0": "apache-2.0", "CC0 1.0": "cc0-1.0", "CC BY-SA 3.0": "cc-by-sa-3.0"}
        return spdx.get(value, "other")
    return "other" if found else "unknown"


# ----------------------------------------------------------------- task files


def task_configs(tasks: str, workspace: str | os.PathLike) -> list[Config]:
    """The selected workspace tasks (as ``medsbench eval --tasks``), every split they have."""

    entries, files, _skipped = resolve_tasks(tasks, Path(workspace) / "tasks")
    configs = []
    for entry in entries:
        splits: dict[str, list[dict[str, Any]]] = {}
        sources: dict[str, Any] = {}
        ours: dict[str, Any] = {}
        for split, path in sorted(files[entry.id].items()):
            splits[split] = [{"id": i.id, "input": i.input, "output": list(i.output)} for i in iter_instances(path)]
            meta = read_meta(path)
            ours = meta.get("medsbench") or ours
            sources[split] = {"file": path.name, "sha256": sha256_file(path), "instances": len(splits[split]),
                              "source": _first(meta.get("Source")), "url": _first(meta.get("URL"))}
            if isinstance(ours.get("source"), dict):  # a file imported by `data pull`: the release file it came from
                sources[split]["release"] = ours["source"]
        configs.append(Config(entry.id, splits, {
            "task_id": entry.id, "title": entry.title, "category": entry.category, "language": entry.language,
            "dataset": entry.dataset, "license": ours.get("license"), "split_method": ours.get("split_method"),
            "files": sources,
        }))
    return configs


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value or None


def export_task_dataset(tasks: str, workspace: str | os.PathLike, out: str | os.PathLike, *, fmt: str = "parquet") -> dict[str, Any]:
    """Write the selected task files as a dataset with its card; returns the card's ``medsbench`` block."""
    _check_format(fmt)
    configs = task_configs(tasks, workspace)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = _write(configs, out, fmt)
    block = _block(configs, fmt)
    rows = "\n".join(
        f"| {c.name} | {c.info['title']} | {c.info['category']} | {c.info['language']} | "
        + ", ".join(f"{s} {len(r)}" for s, r in c.splits.items()) + f" | {c.info['license'] or '?'} |"
        for c in configs
    )
    body = (
        "# MedS-Bench task files\n\nWritten by `medsbench data export`: one config per task, one split per task "
        "file; columns `id`, `input`, `output` (the list of references, the first is canonical).\n\n"
        "| config | task | category | language | instances | licence |\n|---|---|---|---|---|---|\n" + rows + "\n\n"
        "Each config's source, licence and the sha256 of the task file it was read from are in the `medsbench` "
        "block of the YAML header. Licences are the sources' own: check them before redistributing.\n"
    )
    _card(out, {"license": _licence([c.info for c in configs]), "pretty_name": "MedS-Bench task files",
                "configs": entries, "medsbench": block}, body)
    return block


def _block(configs: Sequence[Config], fmt: str) -> dict[str, Any]:

    return {
        "medsbench_version": __version__, "format": fmt,
        "counts": {c.name: {s: len(r) for s, r in c.splits.items()} for c in configs},
        "configs": {c.name: c.info for c in configs},
    }


# ----------------------------------------------------------------- runs


def read_run(run_dir: str | os.PathLike) -> tuple[Any, list[Any], Path]:
    """A run folder's manifest and its prediction rows, checked against the plan (and the predictions
    file), through :class:`medsbench.records.folder.RunFolder`."""
    folder = RunFolder.of(run_dir)
    return folder.manifest(), folder.predictions(), folder.predictions_path


def run_configs(rows: Sequence[Any]) -> list[Config]:
    """One config per task: the prediction rows with per-item scores of both modes."""

    per_task, _unknown, _warnings = score_items(rows)  # keeps the row objects: matched by identity below
    by_task: dict[str, list[Any]] = {}
    for r in rows:
        by_task.setdefault(r.task_id, []).append(r)
    configs = []
    for tid, task_rows in by_task.items():
        items = per_task.get(tid)
        position = {id(r): i for i, r in enumerate(items.rows)} if items is not None else {}
        strict_keys = list(items.strict_metrics(items.strict[0])) if items is not None and items.rows else []
        ref_keys = list(items.reference_metrics(items.reference[0])) if items is not None and items.rows else []
        out = []
        for r in task_rows:
            d = r.model_dump(exclude={"schema_version"})
            i = position.get(id(r))
            strict = items.strict_metrics(items.strict[i]) if items is not None and i is not None else {}
            counted = items is not None and i is not None and bool(items.ref_counted[i])
            ref = items.reference_metrics(items.reference[i]) if counted else {}  # type: ignore[union-attr]
            d.update({k: _num(strict.get(k)) for k in strict_keys})
            d.update({f"ref_{k}": _num(ref.get(k)) for k in ref_keys})
            d["parsed"] = bool(items.parsed[i]) if items is not None and i is not None else None
            out.append(d)
        configs.append(Config(tid, {"test": out}, {"task_id": tid}))
    return configs


def _num(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return None if v != v else round(v, 6)


def export_run_dataset(run_dir: str | os.PathLike, out: str | os.PathLike, *, fmt: str = "parquet") -> dict[str, Any]:
    """Write a run's items with their per-item scores as a dataset with its card."""
    _check_format(fmt)
    manifest, rows, pred = read_run(run_dir)
    configs = run_configs(rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = _write(configs, out, fmt)
    block = _block(configs, fmt)
    block.update({"run": str(Path(run_dir).resolve().name), "model": manifest.model, "protocol": manifest.protocol,
                  "status": manifest.status, "predictions_sha256": sha256_file(pred),
                  "tasks": {tid: t.model_dump() for tid, t in manifest.tasks.items()}})
    body = (
        f"# MedS-Bench run `{block['run']}`\n\nModel `{manifest.model}`, protocol `{manifest.protocol}`, status "
        f"`{manifest.status}`. Written by `medsbench runs export`: one config per task, one row per item "
        "(prompt, output, references) with its scores alone: strict metrics by name, the official scripts' as "
        "`ref_<metric>` (empty for a failed item, which is missing from every metric, and for items the official "
        "script skips). Corpus-level numbers (micro F1 over a task) are the run's results.json, not a mean of "
        "these columns.\n"
    )
    _card(out, {"license": "other", "pretty_name": f"MedS-Bench run {block['run']}", "configs": entries,
                "medsbench": block}, body)
    return block


# ----------------------------------------------------------------- the Hub


def push_to_hub(folder: str | os.PathLike, repo: str, *, private: bool = False) -> str:
    """Upload a parquet export (README.md + data/) to the dataset repository ``repo``; returns its URL.

    Offline (``HF_HUB_OFFLINE=1``) or without a connection this is one error line, never a traceback.
    """
    folder = Path(folder)
    if not (folder / "README.md").is_file() or not (folder / "data").is_dir():
        raise MedsbenchError("not a parquet export (README.md and data/ expected): export with --format parquet", where=str(folder))
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise MedsbenchError(f"cannot push to the Hub ({repo}): offline mode is on (HF_HUB_OFFLINE=1); the export is in {folder}")
    api = HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="dataset",
                                 commit_message="medsbench export")
    except Exception as exc:  # network, auth and hub errors: one line
        raise MedsbenchError(f"cannot push to the Hub ({repo}): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/datasets/{repo}")
