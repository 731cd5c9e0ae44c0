"""The leaderboard store: one SQLite file (stdlib ``sqlite3``).

Tables
------
- ``models``: one row per model (name, kind = measured | submission | reported, size, link, description, source).
- ``runs``: one row per ingested run: its manifest (credentials redacted, see :mod:`medsbench.redact`),
  input hashes, status pending | approved, protocol, whether failed items were let in (``partial``) and the
  suspicion flags of its outputs (:func:`medsbench.board.submit.suspicion_flags`).
  Seeded paper numbers are stored as one "run" per reported model, named ``reported:<model>``.
- ``task_scores`` / ``category_scores``: every metric key in both modes (``strict``, ``reference``) with
  its 95% CI when the scorer gave one. A task none of whose items was answered has no score at all.
- ``task_info``: n (items scored), items failed, coverage, items planned and in the test file (a run
  limited with ``--limit`` is a sample), primary metric, majority baseline, degenerate flag,
  parse-failure and empty rates per (run, task).
- ``predictions``: the items of a run (input, output, reference, per-item verdict) for the browser, and in
  ``extra`` what else the scorers read (category, language, references, which texts were null), so a stored
  run can be scored again exactly (paired comparisons).
- ``judged_runs`` / ``judged_tasks`` / ``judged_categories``: the judged (model-graded) scoring mode of a run,
  from its ``judged.json`` (:class:`medsbench.records.judged.JudgedResults`): jury mean, 95% CI, n scored,
  parse-failure rate, per-judge means, agreement and probe pass rates. Never mixed into the tables above.
- ``baselines`` / ``comparisons``: a run compared with another stored run (``add_run(..., baseline=NAME)``):
  the paired test of :func:`medsbench.metrics.compare.compare_rows` per task and category, both modes,
  computed when either run is added (so ``board build`` only reads it).
- ``meta``: schema version, seed version, and ``last_update`` (the only date the site shows).

Run folders are read only through the typed stage records (:class:`medsbench.records.manifest.RunManifest`,
:class:`medsbench.records.results.Results`, :func:`medsbench.records.read_predictions`); an old or foreign
file is refused in one line naming it. ``add_run`` is idempotent: re-adding a run whose results and
predictions hashes are unchanged is a no-op (the store, including ``last_update``, stays the same).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
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
from medsbench.redact import redact as redact_value
from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
KINDS = ("measured", "submission", "reported")
STATUSES = ("pending", "approved")
REPORTED_PREFIX = "reported:"
REPORTED_PROTOCOL = "as published"  # seeded rows: the paper's own protocol, not re-run here
POOLED_CATEGORY = "summarization"  # pooled groups (MIMIC-IV CT/MRI reports) are report summarization
_NAME_MAX = 100
# Control characters (except none) are never allowed in display names.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# Tables added by schema 3 (judged scores, paired comparisons); a schema-2 store gets them empty.
_V3_TABLES = (
    """CREATE TABLE IF NOT EXISTS judged_runs (
  run TEXT PRIMARY KEY REFERENCES runs(name) ON DELETE CASCADE, sha256 TEXT NOT NULL, created TEXT,
  template TEXT, rubrics TEXT NOT NULL, probes_version INTEGER, scale TEXT NOT NULL, judges TEXT NOT NULL,
  headline TEXT NOT NULL, probe_totals TEXT NOT NULL, notes TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS judged_tasks (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, category TEXT, language TEXT,
  rubric TEXT, n INTEGER NOT NULL, n_failed_predictions INTEGER NOT NULL DEFAULT 0, n_scored INTEGER NOT NULL,
  mean REAL, ci_lo REAL, ci_hi REAL, parse_failures INTEGER, parse_failure_rate REAL, errors INTEGER,
  agreement_items INTEGER, alpha REAL, kappa REAL, exact REAL, within_one REAL,
  judges TEXT NOT NULL, probes TEXT NOT NULL,
  PRIMARY KEY (run, task_id)
)""",
    """CREATE TABLE IF NOT EXISTS judged_categories (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, category TEXT NOT NULL, tasks TEXT NOT NULL,
  n INTEGER NOT NULL, n_scored INTEGER NOT NULL, mean REAL, ci_lo REAL, ci_hi REAL, parse_failure_rate REAL,
  judges TEXT NOT NULL,
  PRIMARY KEY (run, category)
)""",
    """CREATE TABLE IF NOT EXISTS baselines (
  run TEXT PRIMARY KEY REFERENCES runs(name) ON DELETE CASCADE,
  baseline TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
  method TEXT NOT NULL, resamples INTEGER NOT NULL, seed INTEGER NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS comparisons (
  run TEXT NOT NULL REFERENCES baselines(run) ON DELETE CASCADE, scope TEXT NOT NULL, key TEXT NOT NULL,
  category TEXT, mode TEXT NOT NULL, metric TEXT NOT NULL, base REAL, tuned REAL, delta REAL NOT NULL,
  ci_lo REAL NOT NULL, ci_hi REAL NOT NULL, p_value REAL NOT NULL, n INTEGER NOT NULL, n_tasks INTEGER,
  only_in_run INTEGER, only_in_baseline INTEGER,
  PRIMARY KEY (run, scope, key, mode, metric)
)""",
)
_V3_COLUMNS = {
    "runs": ("judged_sha256 TEXT", "store_version INTEGER"),
    "predictions": ("extra TEXT",),
}
COMPARE_RESAMPLES = 1000
COMPARE_METHOD = "permutation"
COMPARE_SEED = 0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, size TEXT, link TEXT, description TEXT, source TEXT
);
CREATE TABLE IF NOT EXISTS runs (
  name TEXT PRIMARY KEY, model TEXT NOT NULL REFERENCES models(name), kind TEXT NOT NULL,
  status TEXT NOT NULL, source TEXT, manifest TEXT NOT NULL, results_sha256 TEXT, predictions_sha256 TEXT,
  added TEXT NOT NULL, protocol TEXT, partial INTEGER NOT NULL DEFAULT 0, flags TEXT NOT NULL DEFAULT '[]',
  judged_sha256 TEXT, store_version INTEGER
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
  extra TEXT,
  PRIMARY KEY (run, seq)
);
""" + ";\n".join(_V3_TABLES) + ";\n"

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
                else:
                    # Each step is idempotent (columns and tables added only when missing): a migration
                    # interrupted half-way is finished on the next open.
                    stored = self.get_meta("schema_version") or ""
                    if stored == "1":
                        self._migrate_v1()
                        stored = "2"
                    if stored == "2":
                        self._migrate_v2()
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

    def _add_columns(self, columns: dict[str, tuple[str, ...]]) -> None:
        for table, cols in columns.items():
            have = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})")}
            for col in cols:
                if col.split()[0] not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {col}")

    def _migrate_v1(self) -> None:
        """Schema 1 -> 2: the new columns (unknown for old rows) and manifests redacted again."""
        self._add_columns(_V2_COLUMNS)
        for r in self.db.execute("SELECT name, manifest FROM runs").fetchall():
            self.db.execute("UPDATE runs SET manifest = ? WHERE name = ?",
                            (_dump(redact_value(json.loads(r["manifest"]))), r["name"]))
        self.db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")

    def _migrate_v2(self) -> None:
        """Schema 2 -> 3: judged-score and comparison tables (empty), ``runs.judged_sha256`` /
        ``runs.store_version`` and ``predictions.extra`` (NULL for old rows: such a run is stored again,
        not left unchanged, the next time it is added, and cannot be a comparison baseline before that)."""
        self._add_columns(_V3_COLUMNS)
        for ddl in _V3_TABLES:
            self.db.execute(ddl)
        self.db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")

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
        baseline: str | None = None,
    ) -> str:
        """Ingest ``runs/NAME`` (manifest.json, predictions.jsonl, results.json, read through the stage
        records). Returns ``"added"``, ``"updated"`` or ``"unchanged"``.

        A run with failed items (a backend that gave up), or one that did not finish, is refused unless
        ``allow_partial``: failed items are missing, never scores of 0. A run none of whose items was
        answered is always refused: nothing was measured.

        A ``judged.json`` in the folder (``medsbench judge``) is stored as the run's judged scores, after
        checking that it judged this run's predictions; it is never mixed into the official columns.
        ``baseline`` names another stored run this one is compared with (a tuned model vs its base): the
        paired test over the items both share is computed here, and again whenever either run is added anew.
        Without ``baseline`` an existing link of this run is kept.
        """
        from medsbench.records.folder import RunFolder

        folder = RunFolder(run_dir)
        run_dir = folder.path
        if not run_dir.is_dir():
            raise MedsbenchError("run folder not found", where=str(run_dir))
        results_path = folder.results_path
        preds_path = folder.predictions_path
        if not folder.has_results():
            raise MedsbenchError("results.json missing (score the run first: medsbench score)", where=str(run_dir))
        if not folder.has_predictions():
            raise MedsbenchError("predictions.jsonl missing", where=str(run_dir))
        if kind not in KINDS or kind == "reported":
            raise MedsbenchError(f"kind must be measured or submission, got {kind!r}")
        if status not in STATUSES:
            raise MedsbenchError(f"status must be one of {STATUSES}, got {status!r}")
        manifest = folder.manifest()
        results = folder.results()
        rows = folder.predictions()  # ids checked, rows checked against the manifest's plan
        name = check_display_name(run_name or folder.name, "run name")
        judged, judged_sha = _load_judged(folder, manifest, rows)
        model = check_display_name(model_name or (manifest.config.model.display_name if manifest.config else manifest.model))
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
        linked = self.baseline_of(name) if existing is not None else None
        if baseline is not None:
            baseline = self._check_baseline(name, baseline)
        else:
            baseline = linked
        if existing is not None:
            same = (
                existing["results_sha256"] == res_sha
                and existing["predictions_sha256"] == pred_sha
                and existing["model"] == model
                and existing["kind"] == kind
                and existing["judged_sha256"] == judged_sha
                and existing["store_version"] == SCHEMA_VERSION
                and linked == baseline
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
        from medsbench.metrics import item_verdicts

        flags = [f.as_dict() for f in suspicion_flags(rows)]
        verdicts = item_verdicts(rows)  # scored before the write transaction: readers are never held up
        # Paired comparisons: this run against its baseline, and every run that has this one as baseline.
        comparisons: dict[str, tuple[str, dict[str, Any]]] = {}
        if baseline is not None:
            comparisons[name] = (baseline, _compare(rows, self.scoring_rows(baseline), name, baseline))
        for dep in self.db.execute("SELECT run FROM baselines WHERE baseline = ? AND run != ?", (name, name)).fetchall():
            try:
                comparisons[dep["run"]] = (name, _compare(self.scoring_rows(dep["run"]), rows, dep["run"], name))
            except MedsbenchError as exc:  # the link is dropped with the old rows; say why
                log.warning("run %r is no longer compared with %r: %s", dep["run"], name, exc)
        stored_manifest = redact_value(manifest.model_dump(mode="json"))
        if not isinstance(stored_manifest, dict):  # pragma: no cover - model_dump gives a dict
            raise MedsbenchError("manifest is not an object", where=str(folder.manifest_path))
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
                "protocol, partial, flags, judged_sha256, store_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (name, model, kind, status, None, _dump(stored_manifest), res_sha, pred_sha, _now(),
                 protocol, int(partial), _dump(flags), judged_sha, SCHEMA_VERSION),
            )
            self._insert_results(db, name, results, manifest, cat, rows)
            self._insert_predictions(db, name, rows, verdicts)
            if judged is not None:
                assert judged_sha is not None
                _insert_judged(db, name, judged, judged_sha)
            for run, (base, result) in comparisons.items():
                _insert_comparison(db, run, base, result)
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
            "INSERT INTO predictions(run, seq, task_id, item_id, input, output, reference, correct, strict_correct, error, "
            "extra) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (run, seq, r.task_id, r.id, r.input or "", r.output or "",
                 r.reference if r.reference is not None else (r.references[0] if r.references else ""),
                 ref_ok, strict_ok, r.error, _dump(_row_extra(r)))
                for seq, (r, (ref_ok, strict_ok)) in enumerate(zip(rows, verdicts))
            ],
        )

    def scoring_rows(self, run: str) -> list[Any]:
        """A stored run's prediction rows with every field the scorers read, exactly as its file had them."""
        from medsbench.records import PredictionRow

        out = []
        for p in self.db.execute(
            "SELECT task_id, item_id, input, output, reference, error, extra FROM predictions WHERE run = ? ORDER BY seq",
            (run,),
        ):
            if p["extra"] is None:
                raise MedsbenchError(
                    f"run {run!r} was stored by an older medsbench (schema 2) without what scoring needs; "
                    "add its run folder again first: medsbench board add RUN_DIR")
            extra = json.loads(p["extra"])
            nulls = set(extra.get("null", ()))
            fields: dict[str, Any] = {
                "task_id": p["task_id"], "id": p["item_id"], "category": extra.get("category"),
                "language": extra.get("language"), "error": p["error"],
                **{k: (None if k in nulls else p[k]) for k in ("input", "output", "reference")},
            }
            if "references" in extra:
                fields["references"] = extra["references"]
            out.append(PredictionRow(**fields))
        return out

    def _check_baseline(self, name: str, baseline: str) -> str:
        if baseline == name:
            raise MedsbenchError(f"run {name!r} cannot be its own baseline")
        row = self.db.execute("SELECT kind FROM runs WHERE name = ?", (baseline,)).fetchone()
        if row is None:
            raise MedsbenchError(f"no stored run named {baseline!r} to compare with (add the base run first; "
                                 "see `medsbench board list`)")
        if row["kind"] == "reported":
            raise MedsbenchError(f"{baseline!r} is a reported (seeded) row without predictions; a baseline must be a "
                                 "run scored here")
        return baseline

    def baseline_of(self, run: str) -> str | None:
        row = self.db.execute("SELECT baseline FROM baselines WHERE run = ?", (run,)).fetchone()
        return None if row is None else row["baseline"]

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

    def judged(self, run: str) -> dict[str, Any] | None:
        """The judged scores of a run: ``{"run": row, "tasks": [rows], "categories": [rows]}`` (JSON columns
        decoded), or None when the run was added without a ``judged.json``."""
        head = self.db.execute("SELECT * FROM judged_runs WHERE run = ?", (run,)).fetchone()
        if head is None:
            return None
        decode = ("rubrics", "scale", "judges", "probe_totals", "notes", "tasks", "probes")

        def as_dict(r: sqlite3.Row) -> dict[str, Any]:
            return {k: (json.loads(r[k]) if k in decode else r[k]) for k in r.keys()}

        from medsbench.tasks.workspace import task_order

        tasks = sorted((as_dict(r) for r in self.db.execute("SELECT * FROM judged_tasks WHERE run = ?", (run,))),
                       key=lambda t: task_order(t["task_id"]))
        cats = [as_dict(r) for r in self.db.execute("SELECT * FROM judged_categories WHERE run = ? ORDER BY category", (run,))]
        return {"run": as_dict(head), "tasks": tasks, "categories": cats}

    def comparison(self, run: str) -> dict[str, Any] | None:
        """The paired comparison of ``run`` with its baseline: ``{"baseline", "method", "resamples", "seed",
        "rows": [comparison rows]}``, or None when the run has no baseline."""
        head = self.db.execute("SELECT * FROM baselines WHERE run = ?", (run,)).fetchone()
        if head is None:
            return None
        rows = self.db.execute("SELECT * FROM comparisons WHERE run = ? ORDER BY scope, key, mode, metric", (run,)).fetchall()
        return {"baseline": head["baseline"], "method": head["method"], "resamples": head["resamples"],
                "seed": head["seed"], "rows": rows}


# -- judged scores ----------------------------------------------------------------------------


def _load_judged(folder: Any, manifest: Any, rows: list[Any]) -> tuple[Any, str | None]:
    """The run folder's judged.json, checked against the run; (None, None) without one."""
    from medsbench.tasks.catalog import catalog

    run_dir, path = folder.path, folder.judged_path
    if not folder.has_judged():
        return None, None
    judged = folder.judged()

    def refuse(why: str) -> None:
        raise MedsbenchError(
            f"judged.json does not belong to this run ({why}); judge the run again (medsbench judge {run_dir}) "
            "or move judged.json away", where=str(path))

    if judged.model is not None and judged.model != manifest.model:
        refuse(f"it judged model {judged.model!r}, manifest.json says {manifest.model!r}")
    judged_folder = Path(judged.run).name
    if judged_folder not in ("", ".", "..") and judged_folder != run_dir.resolve().name:
        refuse(f"it judged the run folder {judged_folder!r}")
    if judged.predictions_sha256 is not None and judged.predictions_sha256 != folder.predictions_sha256():
        refuse("it judged another predictions.jsonl (sha256 differs)")
    names = [j.name for j in judged.judges]
    if not names or len(set(names)) != len(names):
        refuse("its judge list is empty or repeats a name")
    cat = catalog()
    present: dict[str, int] = {}
    answerable: dict[str, int] = {}
    failed: dict[str, int] = {}
    category: dict[str, str | None] = {}
    for r in rows:  # what the judge selects: failed rows counted apart, rows without a reference skipped
        present[r.task_id] = present.get(r.task_id, 0) + 1
        entry = cat.get(r.task_id)
        category.setdefault(r.task_id, entry.category if entry else r.category)
        if r.failed:
            failed[r.task_id] = failed.get(r.task_id, 0) + 1
        elif (r.reference or "").strip():
            answerable[r.task_id] = answerable.get(r.task_id, 0) + 1
    limited: set[int] = set()
    for tid, t in judged.tasks.items():
        if tid not in present:
            refuse(f"it judged task {tid}, which has no prediction in predictions.jsonl")
        if t.category is not None and t.category != category[tid]:
            refuse(f"{tid} is {category[tid]}, judged.json says {t.category}")
        if t.n_failed_predictions != failed.get(tid, 0):
            refuse(f"{tid}: it counts {t.n_failed_predictions} failed prediction(s), predictions.jsonl has {failed.get(tid, 0)}")
        have = answerable.get(tid, 0)
        if t.n > have:
            refuse(f"{tid}: it judged {t.n} item(s), predictions.jsonl has {have} answered with a reference")
        if set(t.judges) != set(names) or t.jury.n != t.n or any(s.n != t.n for s in t.judges.values()):
            refuse(f"{tid}: its per-judge tables do not match its judge list or item count")
        if t.n < have:
            limited.add(t.n)
    # Fewer items than predictions only as one --limit: every short task stops at the same count,
    # and no task judged in full has more items than that.
    if len(limited) > 1 or (limited and any(answerable.get(tid, 0) > min(limited)
                                            for tid, t in judged.tasks.items() if t.n == answerable.get(tid, 0))):
        refuse("its item counts match neither every prediction nor one --limit")
    return judged, sha256_file(path)


def headline_judge(judges: list[str]) -> str:
    """The key of the score shown first: the jury, or the one judge when there is only one."""
    return "jury" if len(judges) > 1 else judges[0]


def _insert_judged(db: sqlite3.Connection, run: str, judged: Any, sha: str) -> None:
    names = [j.name for j in judged.judges]
    head = headline_judge(names)
    judges = [{"name": j.name, "spec": redact_value(j.spec), "requests": j.requests, "cached": j.cached,
               "errors": j.errors, "prompt_tokens": j.prompt_tokens, "output_tokens": j.output_tokens,
               "cost_usd": j.cost_usd} for j in judged.judges]
    db.execute(
        "INSERT INTO judged_runs(run, sha256, created, template, rubrics, probes_version, scale, judges, headline, "
        "probe_totals, notes) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (run, sha, judged.created, judged.template, _dump(judged.rubrics), judged.probes_version, _dump(judged.scale),
         _dump(judges), head, _dump({k: {kind: p.model_dump(mode="json") for kind, p in v.items()}
                                     for k, v in judged.probe_totals.items()}), _dump(judged.notes)),
    )

    def per_judge(s: Any) -> dict[str, Any]:
        return {"mean": s.mean, "ci95": s.ci95, "n_scored": s.n_scored, "parse_failure_rate": s.parse_failure_rate,
                "errors": s.errors}

    for tid, t in judged.tasks.items():
        j, a = t.jury, t.agreement
        db.execute(
            "INSERT INTO judged_tasks(run, task_id, category, language, rubric, n, n_failed_predictions, n_scored, mean, "
            "ci_lo, ci_hi, parse_failures, parse_failure_rate, errors, agreement_items, alpha, kappa, exact, within_one, "
            "judges, probes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run, tid, t.category, t.language, t.rubric, t.n, t.n_failed_predictions, j.n_scored, j.mean,
             j.ci95[0] if j.ci95 else None, j.ci95[1] if j.ci95 else None, j.parse_failures, j.parse_failure_rate,
             j.errors, a.n_items if a else None, a.krippendorff_alpha if a else None, a.cohen_kappa if a else None,
             a.exact if a else None, a.within_one if a else None,
             _dump({name: per_judge(t.judges[name]) for name in names}),
             _dump({k: {kind: p.model_dump(mode="json") for kind, p in v.items()} for k, v in t.probes.items()})),
        )
    for ckey, c in judged.categories.items():
        members = [judged.tasks[tid] for tid in c.tasks if tid in judged.tasks]
        ci = members[0].jury.ci95 if len(members) == 1 else None  # a one-task category: the task's CI
        asked = sum(m.n * len(names) - m.jury.errors for m in members)  # judgements that came back
        pfr = round(sum(m.jury.parse_failures for m in members) / asked, 4) if asked else None
        db.execute(
            "INSERT INTO judged_categories(run, category, tasks, n, n_scored, mean, ci_lo, ci_hi, parse_failure_rate, judges) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (run, ckey, _dump(c.tasks), c.n, sum(m.jury.n_scored for m in members), c.means.get(head),
             ci[0] if ci else None, ci[1] if ci else None, pfr, _dump(c.means)),
        )


# -- paired comparisons -----------------------------------------------------------------------


def _row_extra(r: Any) -> dict[str, Any]:
    """What the ``predictions`` columns lose of a row and the scorers read (see :meth:`Store.scoring_rows`)."""
    extra: dict[str, Any] = {"category": r.category, "language": r.language}
    nulls = [k for k in ("input", "output", "reference") if getattr(r, k) is None]
    if nulls:
        extra["null"] = nulls
    if r.references != ([r.reference] if r.reference is not None else []):
        extra["references"] = r.references
    return extra


def _compare(rows: list[Any], base_rows: list[Any], run: str, baseline: str) -> dict[str, Any]:
    """:func:`medsbench.metrics.compare.compare_rows` of a run (A) against its baseline (B)."""
    from medsbench.metrics.compare import compare_rows

    try:
        return compare_rows(rows, base_rows, resamples=COMPARE_RESAMPLES, seed=COMPARE_SEED, method=COMPARE_METHOD)
    except MedsbenchError as exc:
        raise MedsbenchError(f"cannot compare run {run!r} with baseline {baseline!r}: {exc}") from None


def _insert_comparison(db: sqlite3.Connection, run: str, baseline: str, result: dict[str, Any]) -> None:
    db.execute("INSERT INTO baselines(run, baseline, method, resamples, seed) VALUES (?,?,?,?,?)",
               (run, baseline, result["method"], result["resamples"], result["seed"]))
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for tid, t in result["tasks"].items():
        by_cat.setdefault(t["category"], []).append(t)
        for mode in ("strict", "reference"):
            for metric, v in t[mode].items():
                db.execute(
                    "INSERT INTO comparisons(run, scope, key, category, mode, metric, base, tuned, delta, ci_lo, ci_hi, "
                    "p_value, n, only_in_run, only_in_baseline) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run, "task", tid, t["category"], mode, metric, v["b"], v["a"], v["delta"], v["ci"][0], v["ci"][1],
                     v["p_value"], t["n"], t["only_in_a"], t["only_in_b"]),
                )
    for ckey, c in result["categories"].items():
        members = by_cat.get(ckey, [])
        for mode in ("strict", "reference"):
            for metric, v in c[mode].items():
                # The category's values are the macro means of its tasks' (as the delta is the mean of theirs).
                vals = [t[mode][metric] for t in members if metric in t[mode]]
                base = round(sum(x["b"] for x in vals) / len(vals), 4) if len(vals) == len(members) and vals else None
                tuned = round(sum(x["a"] for x in vals) / len(vals), 4) if len(vals) == len(members) and vals else None
                db.execute(
                    "INSERT INTO comparisons(run, scope, key, category, mode, metric, base, tuned, delta, ci_lo, ci_hi, "
                    "p_value, n, n_tasks) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run, "category", ckey, ckey, mode, metric, base, tuned, v["delta"], v["ci"][0], v["ci"][1],
                     v["p_value"], sum(t["n"] for t in members), c["n_tasks"]),
                )


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
