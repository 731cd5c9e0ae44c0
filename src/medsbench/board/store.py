"""The leaderboard store: one SQLite file (stdlib ``sqlite3``).

Tables
------
- ``models``: one row per model (name, kind = measured | submission | reported, size, link, description, source).
- ``runs``: one row per ingested run (its manifest, input hashes, status pending | approved).
  Seeded paper numbers are stored as one "run" per reported model, named ``reported:<model>``.
- ``task_scores`` / ``category_scores``: every metric key in both modes (``strict``, ``reference``) with
  its 95% CI when the scorer gave one.
- ``task_info``: n, primary metric, parse-failure and empty rates per (run, task).
- ``predictions``: the items of a run (input, output, reference, per-item verdict) for the browser.
- ``meta``: schema version, seed version, and ``last_update`` (the only date the site shows).

``add_run`` is idempotent: re-adding a run whose results and predictions hashes are unchanged is a
no-op (the store, including ``last_update``, stays byte-for-byte the same in content).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import iter_jsonl, read_json, sha256_file

SCHEMA_VERSION = 1
MODES = ("strict", "reference")
KINDS = ("measured", "submission", "reported")
STATUSES = ("pending", "approved")
REPORTED_PREFIX = "reported:"
_NAME_MAX = 100
# Control characters (except none) are never allowed in display names.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, size TEXT, link TEXT, description TEXT, source TEXT
);
CREATE TABLE IF NOT EXISTS runs (
  name TEXT PRIMARY KEY, model TEXT NOT NULL REFERENCES models(name), kind TEXT NOT NULL,
  status TEXT NOT NULL, source TEXT, manifest TEXT NOT NULL, results_sha256 TEXT, predictions_sha256 TEXT,
  added TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS task_info (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, category TEXT,
  language TEXT, n INTEGER, metric TEXT, parse_failure_rate REAL, empty_rate REAL,
  PRIMARY KEY (run, task_id)
);
CREATE TABLE IF NOT EXISTS task_scores (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, mode TEXT NOT NULL,
  metric TEXT NOT NULL, value REAL NOT NULL, ci_lo REAL, ci_hi REAL,
  PRIMARY KEY (run, task_id, mode, metric)
);
CREATE TABLE IF NOT EXISTS category_scores (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, category TEXT NOT NULL, mode TEXT NOT NULL,
  metric TEXT NOT NULL, value REAL NOT NULL, n_tasks INTEGER, derived INTEGER NOT NULL DEFAULT 0,
  ci_lo REAL, ci_hi REAL,
  PRIMARY KEY (run, category, mode, metric)
);
CREATE TABLE IF NOT EXISTS predictions (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, seq INTEGER NOT NULL, task_id TEXT NOT NULL,
  item_id TEXT, input TEXT, output TEXT, reference TEXT, correct INTEGER, strict_correct INTEGER, error TEXT,
  PRIMARY KEY (run, seq)
);
"""


def check_display_name(name: str, what: str = "model name") -> str:
    """A model name is shown as (escaped) text; it must not be able to name a path."""
    name = (name or "").strip()
    if not name:
        raise MedsbenchError(f"{what} is empty")
    if len(name) > _NAME_MAX:
        raise MedsbenchError(f"{what} is longer than {_NAME_MAX} characters")
    if _CONTROL_RE.search(name):
        raise MedsbenchError(f"{what} contains control characters")
    if "/" in name or "\\" in name or ".." in name:
        raise MedsbenchError(f"{what} {name!r} contains '/', '\\' or '..' (path traversal is not allowed)")
    return name


def slugify(name: str) -> str:
    """A file-system and URL safe, unique slug (readable part + short hash of the exact name)."""
    import hashlib

    readable = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "x"
    return f"{readable}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def load_seed() -> dict[str, Any]:
    text = resources.files("medsbench.board").joinpath("seed_reported.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class RunRow:
    name: str
    model: str
    kind: str
    status: str
    source: str | None
    manifest: dict[str, Any]
    added: str


class Store:
    """The leaderboard database. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike, *, seed: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path)
        except sqlite3.Error as exc:
            raise MedsbenchError(f"cannot open the board store: {exc}", where=str(self.path)) from None
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        try:
            with self.db:
                self.db.executescript(_SCHEMA)
                self._set_default("schema_version", str(SCHEMA_VERSION))
        except sqlite3.DatabaseError as exc:
            raise MedsbenchError(f"not a board store ({exc})", where=str(self.path)) from None
        version = int(self.get_meta("schema_version") or 0)
        if version != SCHEMA_VERSION:
            raise MedsbenchError(f"store schema {version} is not supported (expected {SCHEMA_VERSION})", where=str(self.path))
        if seed:
            self.seed_reported()

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction that also stamps ``last_update``."""
        with self.db:
            yield self.db
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('last_update', ?)", (_now(),))

    def _set_default(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    @property
    def last_update(self) -> str | None:
        return self.get_meta("last_update")

    # -- seeded (reported) rows -------------------------------------------------------------

    def seed_reported(self, seed: dict[str, Any] | None = None) -> bool:
        """Insert the packaged published numbers once per seed version. Returns True if it wrote."""
        seed = seed or load_seed()
        version = str(seed["seed_version"])
        if self.get_meta("seed_version") == version:
            return False
        from medsbench.tasks.catalog import catalog

        cat = catalog()
        with self._tx() as db:
            old = [r["name"] for r in db.execute("SELECT name FROM runs WHERE kind = 'reported'")]
            for name in old:
                db.execute("DELETE FROM runs WHERE name = ?", (name,))
            db.execute("DELETE FROM models WHERE kind = 'reported'")
            for m in seed["models"]:
                src = seed["sources"][m["source"]]
                db.execute(
                    "INSERT INTO models(name, kind, size, link, description, source) VALUES (?,?,?,?,?,?)",
                    (m["name"], "reported", m.get("size"), m.get("link"), m.get("description"), m["source"]),
                )
                run = REPORTED_PREFIX + m["name"]
                manifest = {"reported": True, "source": m["source"], **src}
                db.execute(
                    "INSERT INTO runs(name, model, kind, status, source, manifest, added) VALUES (?,?,?,?,?,?,?)",
                    (run, m["name"], "reported", "approved", m["source"], _dump(manifest), "seed"),
                )
                for tid, metrics in m.get("tasks", {}).items():
                    entry = cat[tid]
                    db.execute(
                        "INSERT INTO task_info(run, task_id, category, language, metric) VALUES (?,?,?,?,?)",
                        (run, tid, entry.category, entry.language, _primary_key(entry.metric)),
                    )
                    for key, value in metrics.items():
                        db.execute(
                            "INSERT INTO task_scores(run, task_id, mode, metric, value) VALUES (?,?,?,?,?)",
                            (run, tid, "reference", key, float(value)),
                        )
                for group, metrics in m.get("pooled", {}).items():
                    tid = f"pooled:{group}"
                    db.execute(
                        "INSERT INTO task_info(run, task_id, category, metric) VALUES (?,?,?,?)",
                        (run, tid, "summarization", "bleu1"),
                    )
                    for key, value in metrics.items():
                        db.execute(
                            "INSERT INTO task_scores(run, task_id, mode, metric, value) VALUES (?,?,?,?,?)",
                            (run, tid, "reference", key, float(value)),
                        )
                cats = {k: dict(v) for k, v in m.get("categories", {}).items()}
                for key, metrics in cats.items():
                    for metric, value in metrics.items():
                        db.execute(
                            "INSERT INTO category_scores(run, category, mode, metric, value, derived) VALUES (?,?,?,?,?,0)",
                            (run, key, "reference", metric, float(value)),
                        )
                self._derive_categories(db, run, skip=set(cats))
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('seed_version', ?)", (version,))
        return True

    def _derive_categories(self, db: sqlite3.Connection, run: str, skip: set[str]) -> None:
        """Category means over the (non-pooled) tasks a per-task source reported."""
        rows = db.execute(
            "SELECT i.category, s.mode, s.metric, AVG(s.value) AS v, COUNT(*) AS n FROM task_scores s "
            "JOIN task_info i ON i.run = s.run AND i.task_id = s.task_id "
            "WHERE s.run = ? AND s.task_id NOT LIKE 'pooled:%' GROUP BY i.category, s.mode, s.metric",
            (run,),
        ).fetchall()
        for r in rows:
            if r["category"] in skip:
                continue
            db.execute(
                "INSERT INTO category_scores(run, category, mode, metric, value, n_tasks, derived) VALUES (?,?,?,?,?,?,1)",
                (run, r["category"], r["mode"], r["metric"], round(r["v"], 4), r["n"]),
            )

    # -- measured runs and submissions ------------------------------------------------------

    def add_run(
        self,
        run_dir: str | os.PathLike,
        *,
        model_name: str | None = None,
        kind: str = "measured",
        status: str = "approved",
        description: str | None = None,
        link: str | None = None,
        size: str | None = None,
        run_name: str | None = None,
    ) -> str:
        """Ingest ``runs/NAME`` (manifest.json, predictions.jsonl, results.json). Returns
        ``"added"``, ``"updated"`` or ``"unchanged"``."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise MedsbenchError("run folder not found", where=str(run_dir))
        results_path = run_dir / "results.json"
        preds_path = run_dir / "predictions.jsonl"
        if not results_path.is_file():
            raise MedsbenchError("results.json missing (score the run first: medsbench score)", where=str(run_dir))
        if not preds_path.is_file():
            raise MedsbenchError("predictions.jsonl missing", where=str(run_dir))
        manifest_path = run_dir / "manifest.json"
        manifest = read_json(manifest_path) if manifest_path.is_file() else {}
        if not isinstance(manifest, dict):
            raise MedsbenchError("manifest.json must hold an object", where=str(manifest_path))
        status_of_run = manifest.get("status")
        if isinstance(status_of_run, str) and status_of_run != "finished":
            raise MedsbenchError(
                f"run is {status_of_run} (manifest status); finish it first: medsbench eval --resume --out {run_dir}",
                where=str(manifest_path),
            )
        name = check_display_name(run_name or run_dir.resolve().name, "run name")
        model = check_display_name(model_name or _model_name_of(manifest) or name)
        if kind not in KINDS or kind == "reported":
            raise MedsbenchError(f"kind must be measured or submission, got {kind!r}")
        if status not in STATUSES:
            raise MedsbenchError(f"status must be one of {STATUSES}, got {status!r}")
        results = read_json(results_path)
        _check_results(results, results_path)
        res_sha, pred_sha = sha256_file(results_path), sha256_file(preds_path)

        existing = self.db.execute("SELECT * FROM runs WHERE name = ?", (name,)).fetchone()
        if existing is not None:
            if existing["kind"] == "reported":
                raise MedsbenchError(f"run name {name!r} is taken by a reported (seeded) row")
            same = (
                existing["results_sha256"] == res_sha
                and existing["predictions_sha256"] == pred_sha
                and existing["model"] == model
                and existing["kind"] == kind
            )
            if same:
                return "unchanged"
        other = self.db.execute("SELECT kind FROM models WHERE name = ?", (model,)).fetchone()
        if other is not None and other["kind"] == "reported":
            raise MedsbenchError(
                f"model name {model!r} is a reported (seeded) row; pick another name with --model-name "
                f"(e.g. '{model} (ours)') so measured and reported numbers stay apart"
            )
        from medsbench.tasks.catalog import catalog

        cat = catalog()
        with self._tx() as db:
            db.execute("DELETE FROM runs WHERE name = ?", (name,))
            db.execute(
                "INSERT INTO models(name, kind, size, link, description, source) VALUES (?,?,?,?,?,NULL) "
                "ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, "
                "size = COALESCE(excluded.size, models.size), link = COALESCE(excluded.link, models.link), "
                "description = COALESCE(excluded.description, models.description)",
                (model, kind, size, link, description),
            )
            db.execute(
                "INSERT INTO runs(name, model, kind, status, source, manifest, results_sha256, predictions_sha256, added) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (name, model, kind, status, None, _dump(manifest), res_sha, pred_sha, _now()),
            )
            self._insert_results(db, name, results, cat)
            self._insert_predictions(db, name, preds_path)
            self._drop_orphan_models(db)
        return "updated" if existing is not None else "added"

    def _insert_results(self, db: sqlite3.Connection, run: str, results: dict[str, Any], cat: Any) -> None:
        for tid, t in sorted(results.get("tasks", {}).items()):
            entry = cat.get(tid)
            category = t.get("category") or (entry.category if entry else None)
            db.execute(
                "INSERT INTO task_info(run, task_id, category, language, n, metric, parse_failure_rate, empty_rate) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (run, tid, category, t.get("language"), t.get("n"), t.get("metric"),
                 t.get("parse_failure_rate"), t.get("empty_rate")),
            )
            for mode, key in (("strict", "metrics"), ("reference", "reference")):
                cis = _cis_for(t, mode)
                for metric, value in sorted((t.get(key) or {}).items()):
                    if not _is_number(value):
                        continue
                    lo, hi = cis.get(metric, (None, None))
                    db.execute(
                        "INSERT INTO task_scores(run, task_id, mode, metric, value, ci_lo, ci_hi) VALUES (?,?,?,?,?,?,?)",
                        (run, tid, mode, metric, float(value), lo, hi),
                    )
        for ckey, c in sorted(results.get("categories", {}).items()):
            for mode, key in (("strict", "metrics"), ("reference", "reference")):
                cis = _cis_for(c, mode)
                for metric, value in sorted((c.get(key) or {}).items()):
                    if not _is_number(value):
                        continue
                    lo, hi = cis.get(metric, (None, None))
                    db.execute(
                        "INSERT INTO category_scores(run, category, mode, metric, value, n_tasks, derived, ci_lo, ci_hi) "
                        "VALUES (?,?,?,?,?,?,0,?,?)",
                        (run, ckey, mode, metric, float(value), c.get("n_tasks"), lo, hi),
                    )
        for group, p in sorted((results.get("pooled") or {}).items()):
            tid = f"pooled:{group}"
            db.execute(
                "INSERT INTO task_info(run, task_id, category, n, metric) VALUES (?,?,?,?,?)",
                (run, tid, "summarization", p.get("n"), "bleu1"),
            )
            for mode, key in (("strict", "metrics"), ("reference", "reference")):
                metrics = p.get(key) if isinstance(p.get(key), dict) else None
                if metrics is None and mode == "reference":
                    metrics = {k: v for k, v in p.items() if _is_number(v) and k != "n"}
                for metric, value in sorted((metrics or {}).items()):
                    if _is_number(value):
                        db.execute(
                            "INSERT INTO task_scores(run, task_id, mode, metric, value) VALUES (?,?,?,?,?)",
                            (run, tid, mode, metric, float(value)),
                        )

    def _insert_predictions(self, db: sqlite3.Connection, run: str, path: Path) -> None:
        from medsbench.board.verdict import item_verdicts

        verdicts = item_verdicts(path)
        rows = []
        for seq, ((lineno, row), (ref_ok, strict_ok)) in enumerate(zip(iter_jsonl(path), verdicts)):
            if not isinstance(row, dict) or "task_id" not in row:
                raise MedsbenchError("prediction row must be an object with task_id", where=f"{path}:{lineno}")
            reference = row.get("reference")
            if reference is None:
                refs = row.get("references") or [""]
                reference = refs[0] if refs else ""
            rows.append((
                run, seq, str(row["task_id"]), None if row.get("id") is None else str(row["id"]),
                str(row.get("input") or ""), "" if row.get("output") is None else str(row["output"]), str(reference),
                ref_ok, strict_ok, None if row.get("error") is None else str(row["error"]),
            ))
        db.executemany(
            "INSERT INTO predictions(run, seq, task_id, item_id, input, output, reference, correct, strict_correct, error) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )

    def _drop_orphan_models(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM models WHERE kind != 'reported' AND name NOT IN (SELECT model FROM runs)")

    def approve(self, name: str) -> list[str]:
        """Approve a pending run, or every pending run of a model. Returns the run names approved."""
        rows = self.db.execute(
            "SELECT name FROM runs WHERE status = 'pending' AND (name = ? OR model = ?) ORDER BY name", (name, name)
        ).fetchall()
        if not rows:
            known = self.db.execute("SELECT status FROM runs WHERE name = ? OR model = ?", (name, name)).fetchall()
            if known:
                raise MedsbenchError(f"{name!r} has nothing pending (already approved)")
            raise MedsbenchError(f"no run or model named {name!r} (see `medsbench board list`)")
        names = [r["name"] for r in rows]
        with self._tx() as db:
            db.executemany("UPDATE runs SET status = 'approved' WHERE name = ?", [(n,) for n in names])
        return names

    def remove(self, name: str) -> None:
        with self._tx() as db:
            cur = db.execute("DELETE FROM runs WHERE name = ? AND kind != 'reported'", (name,))
            if cur.rowcount == 0:
                raise MedsbenchError(f"no measured or submitted run named {name!r}")
            self._drop_orphan_models(db)

    # -- queries (used by the site) ---------------------------------------------------------

    def runs(self, *, include_pending: bool = False) -> list[RunRow]:
        sql = "SELECT * FROM runs" + ("" if include_pending else " WHERE status = 'approved'") + " ORDER BY name"
        return [
            RunRow(r["name"], r["model"], r["kind"], r["status"], r["source"], json.loads(r["manifest"]), r["added"])
            for r in self.db.execute(sql)
        ]

    def models(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM models ORDER BY name").fetchall()

    def task_info(self, run: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM task_info WHERE run = ? ORDER BY task_id", (run,)).fetchall()

    def task_scores(self, run: str | None = None) -> list[sqlite3.Row]:
        if run is None:
            return self.db.execute("SELECT * FROM task_scores ORDER BY run, task_id, mode, metric").fetchall()
        return self.db.execute(
            "SELECT * FROM task_scores WHERE run = ? ORDER BY task_id, mode, metric", (run,)
        ).fetchall()

    def category_scores(self, run: str) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM category_scores WHERE run = ? ORDER BY category, mode, metric", (run,)
        ).fetchall()

    def predictions(self, run: str) -> Iterable[sqlite3.Row]:
        return self.db.execute("SELECT * FROM predictions WHERE run = ? ORDER BY seq", (run,))

    def prediction_count(self, run: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM predictions WHERE run = ?", (run,)).fetchone()[0]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _primary_key(metric_family: str) -> str:
    return {"accuracy": "accuracy", "bleu_rouge": "bleu1", "f1_micro": "f1", "f1_macro": "f1"}.get(metric_family, metric_family)


def _cis_for(block: dict[str, Any], mode: str) -> dict[str, tuple[float, float]]:
    """CIs of one mode. A flat ``ci`` belongs to strict mode (the contract); ``{"strict": .., "reference": ..}``
    or ``reference_ci`` are read too."""
    ci = block.get("ci") or {}
    if isinstance(ci, dict) and set(ci) & set(MODES) and all(isinstance(v, dict) for v in ci.values()):
        ci = ci.get(mode) or {}
    elif mode == "reference":
        ci = block.get("reference_ci") or {}
    out: dict[str, tuple[float, float]] = {}
    for key, pair in (ci or {}).items():
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_is_number(x) for x in pair):
            out[key] = (float(pair[0]), float(pair[1]))
    return out


def _check_results(results: Any, where: Path) -> None:
    if not isinstance(results, dict) or not isinstance(results.get("tasks"), dict):
        raise MedsbenchError('results.json must hold an object with a "tasks" object (contract 2)', where=str(where))
    for tid, t in results["tasks"].items():
        if not isinstance(t, dict):
            raise MedsbenchError(f"tasks.{tid} must be an object", where=str(where))


def _model_name_of(manifest: dict[str, Any]) -> str | None:
    """Best-effort model name from a run manifest (its exact shape belongs to the eval runner).

    A spec such as ``hf:/models/llama-3-8b`` becomes its last path part: names never carry paths.
    """
    found: str | None = None
    for key in ("model_name", "model", "model_spec"):
        value = manifest.get(key)
        if isinstance(value, dict):
            value = next((value[s] for s in ("name", "spec") if isinstance(value.get(s), str) and value[s]), None)
        if isinstance(value, str) and value:
            found = value
            break
    if found is None:
        return None
    base = found.split(",")[0]
    base = re.sub(r"^(hf|vllm|openai):", "", base).rstrip("/\\")
    base = re.split(r"[/\\]", base)[-1].replace("..", ".")
    return base or None
