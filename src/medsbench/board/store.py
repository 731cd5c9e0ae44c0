"""The leaderboard store: one SQLite file (stdlib ``sqlite3``).

Tables
------
- ``models``: one row per model (name, kind = measured | submission | reported, size, link, description, source).
- ``runs``: one row per ingested run: its manifest (credentials redacted, see :mod:`medsbench.board.redact`),
  input hashes, status pending | approved, protocol, whether failed items were let in (``partial``) and the
  suspicion flags of its outputs (:func:`medsbench.board.submit.suspicion_flags`).
  Seeded paper numbers are stored as one "run" per reported model, named ``reported:<model>``.
- ``task_scores`` / ``category_scores``: every metric key in both modes (``strict``, ``reference``) with
  its 95% CI when the scorer gave one. A task none of whose items was answered has no score at all.
- ``task_info``: n (items scored), items failed, coverage, items planned and in the test file (a run
  limited with ``--limit`` is a sample), primary metric, majority baseline, degenerate flag,
  parse-failure and empty rates per (run, task).
- ``predictions``: the items of a run (input, output, reference, per-item verdict) for the browser.
- ``meta``: schema version, seed version, and ``last_update`` (the only date the site shows).

Run folders are read only through the typed stage records (:class:`medsbench.records.manifest.RunManifest`,
:class:`medsbench.records.results.Results`, :func:`medsbench.records.read_predictions`); an old or foreign
file is refused in one line naming it. ``add_run`` is idempotent: re-adding a run whose results and
predictions hashes are unchanged is a no-op (the store, including ``last_update``, stays the same).
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

from medsbench.metrics import primary_metric
from medsbench.board.redact import redact_value
from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file

SCHEMA_VERSION = 2
MODES = ("strict", "reference")
KINDS = ("measured", "submission", "reported")
STATUSES = ("pending", "approved")
REPORTED_PREFIX = "reported:"
REPORTED_PROTOCOL = "as published"  # seeded rows: the paper's own protocol, not re-run here
POOLED_CATEGORY = "summarization"  # pooled groups (MIMIC-IV CT/MRI reports) are report summarization
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
  added TEXT NOT NULL, protocol TEXT, partial INTEGER NOT NULL DEFAULT 0, flags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS task_info (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, category TEXT,
  language TEXT, n INTEGER, metric TEXT, parse_failure_rate REAL, empty_rate REAL,
  n_failed INTEGER, coverage REAL, n_planned INTEGER, n_total INTEGER, majority_baseline REAL,
  degenerate INTEGER NOT NULL DEFAULT 0,
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

# Columns added by schema 2 (a schema-1 store is migrated in place: ALTER TABLE, manifests re-redacted).
_V2_COLUMNS = {
    "runs": ("protocol TEXT", "partial INTEGER NOT NULL DEFAULT 0", "flags TEXT NOT NULL DEFAULT '[]'"),
    "task_info": ("n_failed INTEGER", "coverage REAL", "n_planned INTEGER", "n_total INTEGER",
                  "majority_baseline REAL", "degenerate INTEGER NOT NULL DEFAULT 0"),
}


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
    protocol: str | None = None
    partial: bool = False
    flags: tuple[dict[str, Any], ...] = ()


class Store:
    """The leaderboard database. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike, *, seed: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60)
        except sqlite3.Error as exc:
            raise MedsbenchError(f"cannot open the board store: {exc}", where=str(self.path)) from None
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA secure_delete = ON")  # replaced rows (e.g. a manifest redacted again) leave no trace
        try:
            with self.db:
                fresh = self.db.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone() is None
                if fresh:
                    self.db.executescript(_SCHEMA)
                    self._set_default("schema_version", str(SCHEMA_VERSION))
                elif (self.get_meta("schema_version") or "") == "1":
                    self._migrate_v1()
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

    def _migrate_v1(self) -> None:
        """Schema 1 -> 2: the new columns (unknown for old rows) and manifests redacted again."""
        for table, columns in _V2_COLUMNS.items():
            have = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})")}
            for col in columns:
                if col.split()[0] not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {col}")
        for r in self.db.execute("SELECT name, manifest FROM runs").fetchall():
            self.db.execute("UPDATE runs SET manifest = ? WHERE name = ?",
                            (_dump(redact_value(json.loads(r["manifest"]))), r["name"]))
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

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
                    "INSERT INTO runs(name, model, kind, status, source, manifest, added, protocol) VALUES (?,?,?,?,?,?,?,?)",
                    (run, m["name"], "reported", "approved", m["source"], _dump(manifest), "seed", REPORTED_PROTOCOL),
                )
                for tid, metrics in m.get("tasks", {}).items():
                    entry = cat[tid]
                    db.execute(
                        "INSERT INTO task_info(run, task_id, category, language, metric) VALUES (?,?,?,?,?)",
                        (run, tid, entry.category, entry.language, primary_metric(entry)),
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
                        (run, tid, POOLED_CATEGORY, primary_metric(cat.categories[POOLED_CATEGORY])),
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
        allow_partial: bool = False,
    ) -> str:
        """Ingest ``runs/NAME`` (manifest.json, predictions.jsonl, results.json, read through the stage
        records). Returns ``"added"``, ``"updated"`` or ``"unchanged"``.

        A run with failed items (a backend that gave up), or one that did not finish, is refused unless
        ``allow_partial``: failed items are missing, never scores of 0. A run none of whose items was
        answered is always refused: nothing was measured.
        """
        from medsbench.models.spec import ModelSpec
        from medsbench.records import read_predictions
        from medsbench.records.manifest import MANIFEST, RunManifest
        from medsbench.records.results import Results

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise MedsbenchError("run folder not found", where=str(run_dir))
        results_path = run_dir / "results.json"
        preds_path = run_dir / "predictions.jsonl"
        if not results_path.is_file():
            raise MedsbenchError("results.json missing (score the run first: medsbench score)", where=str(run_dir))
        if not preds_path.is_file():
            raise MedsbenchError("predictions.jsonl missing", where=str(run_dir))
        if kind not in KINDS or kind == "reported":
            raise MedsbenchError(f"kind must be measured or submission, got {kind!r}")
        if status not in STATUSES:
            raise MedsbenchError(f"status must be one of {STATUSES}, got {status!r}")
        manifest = RunManifest.load(run_dir)
        results = Results.load(results_path)
        rows = read_predictions(preds_path, format="jsonl")
        name = check_display_name(run_name or run_dir.resolve().name, "run name")
        model = check_display_name(model_name or ModelSpec.parse(manifest.model).display_name)
        protocol = _protocol_of(manifest, results, results_path)
        partial = _check_complete(manifest, results, rows, run_dir, allow_partial)

        res_sha, pred_sha = sha256_file(results_path), sha256_file(preds_path)
        for scored in results.inputs:
            if Path(scored.path).name == preds_path.name and scored.sha256 != pred_sha:
                raise MedsbenchError(
                    "results.json was scored from another version of predictions.jsonl (sha256 differs); "
                    "score the run again: medsbench score", where=str(results_path))
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
        other = self.db.execute(
            "SELECT name FROM models WHERE kind = 'reported' AND lower(name) = lower(?)", (model,)).fetchone()
        if other is not None:  # "gpt-4" measured beside "GPT-4" reported would read as the same model
            raise MedsbenchError(
                f"model name {model!r} is (up to case) the reported (seeded) row {other['name']!r}; pick another name with --model-name "
                f"(e.g. '{model} (ours)') so measured and reported numbers stay apart"
            )
        from medsbench.board.submit import suspicion_flags
        from medsbench.tasks.catalog import catalog

        cat = catalog()
        from medsbench.board.verdict import item_verdicts

        flags = [f.as_dict() for f in suspicion_flags(rows)]
        verdicts = item_verdicts(rows)  # scored before the write transaction: readers are never held up
        stored_manifest = redact_value(manifest.model_dump(mode="json"))
        if not isinstance(stored_manifest, dict):  # pragma: no cover - model_dump gives a dict
            raise MedsbenchError("manifest is not an object", where=str(run_dir / MANIFEST))
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
                "INSERT INTO runs(name, model, kind, status, source, manifest, results_sha256, predictions_sha256, added, "
                "protocol, partial, flags) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (name, model, kind, status, None, _dump(stored_manifest), res_sha, pred_sha, _now(),
                 protocol, int(partial), _dump(flags)),
            )
            self._insert_results(db, name, results, manifest, cat, rows)
            self._insert_predictions(db, name, rows, verdicts)
            self._drop_orphan_models(db)
        return "updated" if existing is not None else "added"

    def _insert_results(self, db: sqlite3.Connection, run: str, results: Any, manifest: Any, cat: Any,
                        rows: list[Any]) -> None:
        answered: set[str] = set()
        for tid in sorted(set(manifest.tasks) - set(results.tasks)):
            # Planned but absent from results.json: every item failed (shown as coverage 0, no score).
            failed = sum(1 for r in rows if r.task_id == tid and r.failed)
            if not failed:
                continue
            planned, entry = manifest.tasks[tid], cat.get(tid)
            db.execute(
                "INSERT INTO task_info(run, task_id, category, language, n, metric, n_failed, coverage, n_planned, n_total) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (run, tid, planned.category, planned.language, 0, primary_metric(entry) if entry else None,
                 failed, 0.0, planned.n, planned.n_total),
            )
        values: dict[str, dict[tuple[str, str], float]] = {}
        for tid, t in sorted(results.tasks.items()):
            entry = cat.get(tid)
            planned = manifest.tasks.get(tid)
            db.execute(
                "INSERT INTO task_info(run, task_id, category, language, n, metric, parse_failure_rate, empty_rate, "
                "n_failed, coverage, n_planned, n_total, majority_baseline, degenerate) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run, tid, t.category or (entry.category if entry else None), t.language, t.n,
                 primary_metric(entry) if entry is not None else t.metric, t.parse_failure_rate, t.empty_rate,
                 t.n_failed, t.coverage, planned.n if planned else None, planned.n_total if planned else None,
                 t.majority_baseline, int(t.degenerate)),
            )
            if t.n <= 0:
                continue  # nothing answered: no score, never a 0
            answered.add(tid)
            for mode, metrics, cis in (("strict", t.metrics, t.ci), ("reference", t.reference, t.reference_ci)):
                for metric, value in sorted(metrics.items()):
                    if not _is_number(value):
                        continue
                    values.setdefault(tid, {})[(mode, metric)] = float(value)
                    lo, hi = cis.get(metric, (None, None))
                    db.execute(
                        "INSERT INTO task_scores(run, task_id, mode, metric, value, ci_lo, ci_hi) VALUES (?,?,?,?,?,?,?)",
                        (run, tid, mode, metric, float(value), lo, hi),
                    )
        for ckey, c in sorted(results.categories.items()):
            members = [tid for tid in c.tasks if tid in results.tasks]
            kept = [tid for tid in members if tid in answered]
            if not kept:
                continue
            if len(kept) == len(members):
                rows = [(mode, metric, float(v)) for mode, metrics in (("strict", c.metrics), ("reference", c.reference))
                        for metric, v in sorted(metrics.items()) if _is_number(v)]
                derived = 0
            else:
                # Some tasks of the category had no answer at all: the category is the mean of the answered ones.
                keys = sorted({k for tid in kept for k in values.get(tid, {})})
                rows = [(mode, metric, round(sum(values[t][(mode, metric)] for t in kept) / len(kept), 4))
                        for mode, metric in keys if all((mode, metric) in values.get(t, {}) for t in kept)]
                derived = 1
            for mode, metric, value in rows:
                db.execute(
                    "INSERT INTO category_scores(run, category, mode, metric, value, n_tasks, derived) VALUES (?,?,?,?,?,?,?)",
                    (run, ckey, mode, metric, value, len(kept) if derived else c.n_tasks, derived),
                )
        for group, p in sorted(results.pooled.items()):
            tid = f"pooled:{group}"
            db.execute(
                "INSERT INTO task_info(run, task_id, category, n, metric) VALUES (?,?,?,?,?)",
                (run, tid, POOLED_CATEGORY, p.n, primary_metric(cat.categories[POOLED_CATEGORY])),
            )
            if p.n <= 0:
                continue
            for mode, metrics in (("strict", p.metrics), ("reference", p.reference)):
                for metric, value in sorted(metrics.items()):
                    if _is_number(value):
                        db.execute(
                            "INSERT INTO task_scores(run, task_id, mode, metric, value) VALUES (?,?,?,?,?)",
                            (run, tid, mode, metric, float(value)),
                        )

    def _insert_predictions(self, db: sqlite3.Connection, run: str, rows: list[Any], verdicts: list[Any]) -> None:
        db.executemany(
            "INSERT INTO predictions(run, seq, task_id, item_id, input, output, reference, correct, strict_correct, error) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (run, seq, r.task_id, r.id, r.input or "", r.output or "",
                 r.reference if r.reference is not None else (r.references[0] if r.references else ""),
                 ref_ok, strict_ok, r.error)
                for seq, (r, (ref_ok, strict_ok)) in enumerate(zip(rows, verdicts))
            ],
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
            RunRow(r["name"], r["model"], r["kind"], r["status"], r["source"], json.loads(r["manifest"]), r["added"],
                   r["protocol"], bool(r["partial"]), tuple(json.loads(r["flags"] or "[]")))
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


def _protocol_of(manifest: Any, results: Any, where: Path) -> str:
    """The run's protocol: results.json and manifest.json must agree when both name one."""
    if results.protocol is not None and results.protocol != manifest.protocol:
        raise MedsbenchError(
            f"results.json says protocol {results.protocol!r}, manifest.json says {manifest.protocol!r}: "
            "re-score the run (medsbench score)", where=str(where))
    return results.protocol or manifest.protocol


def _check_complete(manifest: Any, results: Any, rows: list[Any], run_dir: Path, allow_partial: bool) -> bool:
    """Refuse unfinished runs and runs with failed items (unless ``allow_partial``); True when partial."""
    where = str(run_dir / "manifest.json")
    resume = f"medsbench eval --resume --out {run_dir}"
    if manifest.status in ("running", "scoring"):
        raise MedsbenchError(f"run is {manifest.status} (manifest status); finish it first: {resume}", where=where)
    failed_rows: dict[str, int] = {}
    for r in rows:
        if r.failed:
            failed_rows[r.task_id] = failed_rows.get(r.task_id, 0) + 1
    for tid, n in sorted(failed_rows.items()):
        t = results.tasks.get(tid)
        if t is not None and t.n_failed < n:
            raise MedsbenchError(
                f"results.json counts {n - t.n_failed} failed item(s) of {tid} as answers (a failed item is missing, "
                "not a 0); score the run again with this medsbench: medsbench score", where=str(run_dir / "results.json"))
    n_failed = max(sum(failed_rows.values()), sum(t.n_failed for t in results.tasks.values()),
                   int(manifest.counts.get("failed", 0) or 0))
    if not any(t.n > 0 for t in results.tasks.values()):
        raise MedsbenchError(
            f"no item of this run was answered ({n_failed} failed): nothing was measured, nothing to publish; "
            f"retry with: {resume}", where=where)
    problems = []
    if manifest.status != "finished":
        problems.append(f"run is {manifest.status} (manifest status)")
    if n_failed:
        problems.append(f"{n_failed} item(s) failed (missing, not scored)")
    if problems and not allow_partial:
        raise MedsbenchError(
            f"{'; '.join(problems)}: retry the failed items with: {resume}; "
            "or publish it with --allow-partial (the board then shows the coverage of each score)", where=where)
    return bool(problems)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
