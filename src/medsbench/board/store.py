"""The leaderboard store: one SQLite file (stdlib ``sqlite3``). SQL only: runs arrive as typed
:class:`medsbench.board.ingest.BoardRun` records and leave as rows.

Tables
------
- ``models``: one row per model (name, kind = measured | submission | reported, size, link, description, source).
- ``runs``: one row per published run: its manifest (redacted, :mod:`medsbench.redact`), file hashes and the
  ``fingerprint`` that makes re-adding an unchanged run a no-op, status pending | approved, protocol, whether
  failed items were let in (``partial``), suspicion flags and the benchmark version (short id of its task files).
  Seeded paper numbers are one "run" per reported model, named ``reported-<slug>``.
- ``task_info``: per (run, task): n scored, items failed or never run, coverage, items planned and in the test
  file, primary metric, parse-failure and empty rates, the full-file majority baseline (or why it is unknown) and
  the test file's sha256 and short version id.
- ``task_files``: one row per version (sha256) of a test file: size, label distribution, majority baseline,
  degenerate flag, an example item, source and licence.
- ``task_scores`` / ``category_scores``: every metric in both modes (``strict``, ``reference``) with its 95% CI
  and how it was computed (``wilson`` for accuracy, ``bootstrap`` otherwise). A task none of whose items was
  answered has no score at all.
- ``predictions``: the items of a run (prompt, input, output, reference, error, per-item verdicts, the strict
  parse and why it failed) and in ``extra`` what else the scorers read, so a stored run can be scored again
  exactly (paired comparisons).
- ``judged_runs`` / ``judged_tasks`` / ``judged_categories`` / ``judgements``: the judged (model-graded)
  scoring mode of a run, from ``judged.json`` and ``judgements.jsonl``, with the judges found unusable.
- ``baselines`` / ``comparisons``: a run compared with another stored run (paired tests per task and category).
- ``meta``: schema version, seed version, and ``last_update`` (the only date the site shows).
- ``contam_runs`` / ``contam_tasks`` / ``contam_categories``: a run's ``contamination.json``: the corpora and
  rule, per task and mode the clean and contaminated scores and their difference with its CI, per category
  the clean macro average (the board shows it where a run has one, and says so).
- ``average_scores``: every category's macro and micro average with CIs, and those of its language and source
  slices (``slice_kind`` all | language | source).
- ``usage``: prompt and completion tokens, item seconds and cost per task and for the run (``task_id`` ''),
  NULL where unknown, never 0.

Writing: every write holds the store's own lock (an OS file lock on ``<store>.lock`` beside the file, released
even on ``kill -9``) and is one transaction, so two processes adding runs at once are serialized, never mixed.
The schema and its version are created in one transaction: a store left half-made by a kill (no tables, some
tables, tables without a version) is completed on the next open, and older schemas (1-4) are migrated in place.

Reading back: identifiers are checked again with :mod:`medsbench.ids` (a store file is input too): a run,
task or judge name outside the grammar stops the caller with one line naming the run.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsbench.board.names import check_model_name, pooled_task_id, reported_run_name
from medsbench.errors import MedsbenchError
from medsbench.ids import check_item_id, check_name
from medsbench.records.folder import CONTAMINATION, JUDGED, PREDICTIONS, RESULTS
from medsbench.redact import redact
from medsbench.metrics import primary_metric
from medsbench.tasks.catalog import catalog
from medsbench.records import PredictionRow
from medsbench.tasks.catalog import task_order

if TYPE_CHECKING:
    from medsbench.board.ingest import BoardRun
    from medsbench.records import PredictionRow
    from medsbench.records.judged import JudgedResults

SCHEMA_VERSION = 5
MODES = ("strict", "reference")
REPORTED_PROTOCOL = "as published"  # seeded rows: the paper's own protocol, not re-run here
POOLED_CATEGORY = "summarization"
LOCK_TIMEOUT = 600.0  # seconds a writer waits for another writer of the same store
OLD_BASELINE = "baseline unknown (stored by an older medsbench: add the run again)"

_TABLES: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS models (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, size TEXT, link TEXT, description TEXT, source TEXT)""",
    """CREATE TABLE IF NOT EXISTS runs (
  name TEXT PRIMARY KEY, model TEXT NOT NULL REFERENCES models(name), kind TEXT NOT NULL, status TEXT NOT NULL,
  source TEXT, manifest TEXT NOT NULL, results_sha256 TEXT, predictions_sha256 TEXT, added TEXT NOT NULL,
  protocol TEXT, partial INTEGER NOT NULL DEFAULT 0, flags TEXT NOT NULL DEFAULT '[]', judged_sha256 TEXT,
  store_version INTEGER, fingerprint TEXT, benchmark_version TEXT)""",
    """CREATE TABLE IF NOT EXISTS task_info (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, category TEXT, language TEXT,
  n INTEGER, metric TEXT, parse_failure_rate REAL, empty_rate REAL, n_failed INTEGER, coverage REAL,
  n_planned INTEGER, n_total INTEGER, majority_baseline REAL, degenerate INTEGER NOT NULL DEFAULT 0,
  n_reference INTEGER, majority_label TEXT, baseline_note TEXT, file_sha256 TEXT, version TEXT,
  PRIMARY KEY (run, task_id))""",
    """CREATE TABLE IF NOT EXISTS task_files (
  sha256 TEXT PRIMARY KEY, task_id TEXT NOT NULL, version TEXT NOT NULL, n_instances INTEGER NOT NULL, labels TEXT,
  n_labels INTEGER, majority_label TEXT, majority_baseline REAL, degenerate INTEGER NOT NULL DEFAULT 0,
  example TEXT NOT NULL DEFAULT '{}', source TEXT NOT NULL DEFAULT '{}')""",
    """CREATE TABLE IF NOT EXISTS task_scores (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, mode TEXT NOT NULL,
  metric TEXT NOT NULL, value REAL NOT NULL, ci_lo REAL, ci_hi REAL, ci_method TEXT,
  PRIMARY KEY (run, task_id, mode, metric))""",
    """CREATE TABLE IF NOT EXISTS category_scores (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, category TEXT NOT NULL, mode TEXT NOT NULL,
  metric TEXT NOT NULL, value REAL NOT NULL, n_tasks INTEGER, derived INTEGER NOT NULL DEFAULT 0,
  ci_lo REAL, ci_hi REAL, PRIMARY KEY (run, category, mode, metric))""",
    """CREATE TABLE IF NOT EXISTS predictions (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, seq INTEGER NOT NULL, task_id TEXT NOT NULL,
  item_id TEXT, input TEXT, output TEXT, reference TEXT, correct INTEGER, strict_correct INTEGER, error TEXT,
  extra TEXT, prompt TEXT, parsed INTEGER, parse_note TEXT, PRIMARY KEY (run, seq))""",
    """CREATE TABLE IF NOT EXISTS judged_runs (
  run TEXT PRIMARY KEY REFERENCES runs(name) ON DELETE CASCADE, sha256 TEXT NOT NULL, created TEXT,
  template TEXT, rubrics TEXT NOT NULL, probes_version INTEGER, scale TEXT NOT NULL, judges TEXT NOT NULL,
  headline TEXT NOT NULL, probe_totals TEXT NOT NULL, notes TEXT NOT NULL, unusable TEXT NOT NULL DEFAULT '{}')""",
    """CREATE TABLE IF NOT EXISTS judged_tasks (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, category TEXT, language TEXT,
  rubric TEXT, n INTEGER NOT NULL, n_failed_predictions INTEGER NOT NULL DEFAULT 0, n_scored INTEGER NOT NULL,
  mean REAL, ci_lo REAL, ci_hi REAL, parse_failures INTEGER, parse_failure_rate REAL, errors INTEGER,
  agreement_items INTEGER, alpha REAL, kappa REAL, exact REAL, within_one REAL,
  judges TEXT NOT NULL, probes TEXT NOT NULL, PRIMARY KEY (run, task_id))""",
    """CREATE TABLE IF NOT EXISTS judged_categories (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, category TEXT NOT NULL, tasks TEXT NOT NULL,
  n INTEGER NOT NULL, n_scored INTEGER NOT NULL, mean REAL, ci_lo REAL, ci_hi REAL, parse_failure_rate REAL,
  judges TEXT NOT NULL, PRIMARY KEY (run, category))""",
    """CREATE TABLE IF NOT EXISTS judgements (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, item_id TEXT NOT NULL,
  judge TEXT NOT NULL, score INTEGER, status TEXT NOT NULL, reply TEXT, error TEXT,
  PRIMARY KEY (run, task_id, item_id, judge))""",
    """CREATE TABLE IF NOT EXISTS baselines (
  run TEXT PRIMARY KEY REFERENCES runs(name) ON DELETE CASCADE,
  baseline TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
  method TEXT NOT NULL, resamples INTEGER NOT NULL, seed INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS comparisons (
  run TEXT NOT NULL REFERENCES baselines(run) ON DELETE CASCADE, scope TEXT NOT NULL, key TEXT NOT NULL,
  category TEXT, mode TEXT NOT NULL, metric TEXT NOT NULL, base REAL, tuned REAL, delta REAL NOT NULL,
  ci_lo REAL NOT NULL, ci_hi REAL NOT NULL, p_value REAL NOT NULL, n INTEGER NOT NULL, n_tasks INTEGER,
  only_in_run INTEGER, only_in_baseline INTEGER, PRIMARY KEY (run, scope, key, mode, metric))""",
    *(
        # contamination-aware scores, averages and slices, tokens and cost (schema 5)
        """CREATE TABLE IF NOT EXISTS contam_runs (
  run TEXT PRIMARY KEY REFERENCES runs(name) ON DELETE CASCADE, sha256 TEXT NOT NULL, created TEXT,
  rule TEXT NOT NULL, corpora TEXT NOT NULL, n_items INTEGER NOT NULL, n_contaminated INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS contam_tasks (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, category TEXT, mode TEXT NOT NULL,
  metric TEXT NOT NULL, primary_metric INTEGER NOT NULL DEFAULT 0, n_items INTEGER NOT NULL,
  n_contaminated INTEGER NOT NULL, n_clean INTEGER, n_dirty INTEGER, clean REAL, clean_ci_lo REAL, clean_ci_hi REAL,
  contaminated REAL, diff REAL, diff_ci_lo REAL, diff_ci_hi REAL, PRIMARY KEY (run, task_id, mode, metric))""",
        """CREATE TABLE IF NOT EXISTS contam_categories (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, category TEXT NOT NULL, mode TEXT NOT NULL,
  metric TEXT NOT NULL, value REAL NOT NULL, n_tasks INTEGER NOT NULL, without_clean TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (run, category, mode, metric))""",
        """CREATE TABLE IF NOT EXISTS average_scores (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, category TEXT NOT NULL, slice_kind TEXT NOT NULL,
  slice_key TEXT NOT NULL, average TEXT NOT NULL, mode TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL,
  ci_lo REAL, ci_hi REAL, n INTEGER NOT NULL, n_tasks INTEGER NOT NULL, tasks TEXT NOT NULL,
  PRIMARY KEY (run, category, slice_kind, slice_key, average, mode, metric))""",
        """CREATE TABLE IF NOT EXISTS usage (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, n_items INTEGER NOT NULL,
  prompt_tokens INTEGER, output_tokens INTEGER, n_tokens_unknown INTEGER NOT NULL, item_seconds REAL,
  cost_usd REAL, cost_per_1k_items_usd REAL, price TEXT, PRIMARY KEY (run, task_id))""",
    ),
)


#: Schema 5 (likelihood scoring): one row per likelihood-scored task and variant of a run.
_CALIBRATION_TABLES = (
    """CREATE TABLE IF NOT EXISTS calibration (
  run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, task_id TEXT NOT NULL, variant TEXT NOT NULL,
  is_primary INTEGER NOT NULL, n INTEGER NOT NULL, n_excluded INTEGER NOT NULL DEFAULT 0, metrics TEXT NOT NULL,
  ci TEXT NOT NULL, reliability TEXT NOT NULL, PRIMARY KEY (run, task_id, variant))""",
)
_TABLES = _TABLES + _CALIBRATION_TABLES


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
    benchmark_version: str | None = None


@dataclass(frozen=True)
class RunState:
    """What :func:`medsbench.board.publish.add_run` compares before writing a run again."""

    kind: str
    fingerprint: str | None
    store_version: int | None
    baseline: str | None


class Store:
    """The leaderboard database. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike, *, seed: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fh: Any = None
        self._lock_depth = 0
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as exc:
            raise MedsbenchError(f"cannot open the board store: {exc}", where=str(self.path)) from None
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA secure_delete = ON")  # replaced rows (e.g. a manifest redacted again) leave no trace
            self.db.execute("PRAGMA journal_mode = WAL")  # a site build's snapshot never holds up a writer
            with self.lock():
                self._open_schema()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise MedsbenchError(f"not a board store ({exc})", where=str(self.path)) from None
        except BaseException:
            self.db.close()
            raise
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
    def lock(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the store's writer lock (re-entrant within this object); waits up to ``timeout`` seconds."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        fh = open(self.path.with_name(self.path.name + ".lock"), "a+")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    fh.close()
                    raise MedsbenchError(f"the board store is locked by another writer for over {timeout:.0f} s",
                                         where=str(self.path)) from None
                time.sleep(0.05)
        self._lock_fh, self._lock_depth = fh, 1
        try:
            yield
        finally:
            self._lock_depth = 0
            self._lock_fh = None
            fh.close()  # closing the descriptor releases the lock

    @contextmanager
    def _tx(self, *, stamp: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction under the store lock (``stamp``: also set ``last_update``)."""
        with self.lock():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                if stamp:
                    self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('last_update', ?)", (_now(),))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the same state of the store."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def _open_schema(self) -> None:
        """Create, complete or migrate the schema in one transaction (see the module doc)."""
        with self._tx(stamp=False) as db:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = None
            if "meta" in names:
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = None if row is None else row[0]
            if version is None and "runs" in names and db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]:
                raise MedsbenchError("the store holds runs but no schema version: not a store medsbench made",
                                     where=str(self.path))
            if version is not None and version not in {str(v) for v in range(1, SCHEMA_VERSION + 1)}:
                raise MedsbenchError(f"store schema {version} is not supported (expected {SCHEMA_VERSION} or older)",
                                     where=str(self.path))
            if version == str(SCHEMA_VERSION):
                return
            _ensure_tables(db)
            if version == "1":  # manifests stored before redaction existed: redact them again
                for r in db.execute("SELECT name, manifest FROM runs").fetchall():
                    db.execute("UPDATE runs SET manifest = ? WHERE name = ?", (_dump(redact(json.loads(r[1]))), r[0]))
            if version is not None and int(version) < 4:
                _migrate_to_4(db)
            if version is not None and int(version) < 5:
                _migrate_to_5(db)
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

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
        cat = catalog()
        with self._tx() as db:
            if self.get_meta("seed_version") == version:  # another process seeded while we waited
                return False
            db.execute("DELETE FROM runs WHERE kind = 'reported'")
            db.execute("DELETE FROM models WHERE kind = 'reported'")
            for m in seed["models"]:
                name = check_model_name(m["name"], "seeded model name")
                run = reported_run_name(name)
                db.execute("INSERT INTO models(name, kind, size, link, description, source) VALUES (?,?,?,?,?,?)",
                           (name, "reported", m.get("size"), m.get("link"), m.get("description"), m["source"]))
                manifest = {"reported": True, "source": m["source"], **seed["sources"][m["source"]]}
                db.execute("INSERT INTO runs(name, model, kind, status, source, manifest, added, protocol) "
                           "VALUES (?,?,?,?,?,?,?,?)",
                           (run, name, "reported", "approved", m["source"], _dump(manifest), "seed", REPORTED_PROTOCOL))
                groups: list[tuple[str, str, str | None, str, dict[str, float]]] = [
                    (tid, cat[tid].category, cat[tid].language, primary_metric(cat[tid]), metrics)
                          for tid, metrics in m.get("tasks", {}).items()]
                groups += [(pooled_task_id(g), POOLED_CATEGORY, None, primary_metric(g), metrics)
                           for g, metrics in m.get("pooled", {}).items()]
                for tid, category, language, metric, metrics in groups:
                    db.execute("INSERT INTO task_info(run, task_id, category, language, metric) VALUES (?,?,?,?,?)",
                               (run, tid, category, language, metric))
                    db.executemany("INSERT INTO task_scores(run, task_id, mode, metric, value) VALUES (?,?,?,?,?)",
                                   [(run, tid, "reference", k, float(v)) for k, v in metrics.items()])
                cats = m.get("categories", {})
                db.executemany(
                    "INSERT INTO category_scores(run, category, mode, metric, value, derived) VALUES (?,?,?,?,?,0)",
                    [(run, key, "reference", k, float(v)) for key, ms in cats.items() for k, v in ms.items()])
                _derive_categories(db, run, skip=set(cats))
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('seed_version', ?)", (version,))
        return True

    # -- writing runs -------------------------------------------------------------------------

    def run_state(self, name: str) -> RunState | None:
        r = self.db.execute("SELECT kind, fingerprint, store_version FROM runs WHERE name = ?", (name,)).fetchone()
        return None if r is None else RunState(r["kind"], r["fingerprint"], r["store_version"], self.baseline_of(name))

    def reported_model_like(self, model: str) -> str | None:
        """The reported (seeded) model whose name equals ``model`` up to case, if any."""
        row = self.db.execute("SELECT name FROM models WHERE kind = 'reported' AND lower(name) = lower(?)",
                              (model,)).fetchone()
        return None if row is None else row["name"]

    def run_kind(self, name: str) -> str | None:
        row = self.db.execute("SELECT kind FROM runs WHERE name = ?", (name,)).fetchone()
        return None if row is None else row["kind"]

    def dependents(self, name: str) -> list[str]:
        """Runs compared with ``name`` as their baseline."""
        return [r["run"] for r in self.db.execute(
            "SELECT run FROM baselines WHERE baseline = ? AND run != ? ORDER BY run", (name, name))]

    def put_run(self, run: BoardRun, comparisons: dict[str, tuple[str, dict[str, Any]]]) -> None:
        """Store ``run`` (replacing a run of that name) and the paired comparisons computed for it, in one
        transaction. ``comparisons``: {run name: (baseline name, medsbench.metrics.compare.compare_rows result)}."""
        with self._tx() as db:
            db.execute("DELETE FROM runs WHERE name = ?", (run.name,))
            db.execute(
                "INSERT INTO models(name, kind, size, link, description, source) VALUES (?,?,?,?,?,NULL) "
                "ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, size = COALESCE(excluded.size, models.size), "
                "link = COALESCE(excluded.link, models.link), "
                "description = COALESCE(excluded.description, models.description)",
                (run.model, run.kind, run.size, run.link, run.description))
            db.execute(
                "INSERT INTO runs(name, model, kind, status, source, manifest, results_sha256, predictions_sha256, "
                "added, protocol, partial, flags, judged_sha256, store_version, fingerprint, benchmark_version) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run.name, run.model, run.kind, run.status, None, _dump(run.manifest), run.sha256.get(RESULTS),
                 run.sha256.get(PREDICTIONS), _now(), run.protocol, int(run.partial), _dump(run.flags),
                 run.sha256.get(JUDGED), SCHEMA_VERSION, run.fingerprint, run.benchmark_version))
            _insert_scores(db, run)
            _insert_items(db, run)
            db.executemany(
                "INSERT INTO calibration(run, task_id, variant, is_primary, n, n_excluded, metrics, ci, reliability) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                [(run.name, c.task_id, c.variant, int(c.primary), c.n, c.n_excluded, _dump(c.metrics), _dump(c.ci),
                  _dump(c.reliability)) for c in run.calibration])
            _insert_measures(db, run)
            if run.judged is not None:
                _insert_judged(db, run.name, run.judged, run.sha256[JUDGED], run.unusable_judges)
                db.executemany(
                    "INSERT OR REPLACE INTO judgements(run, task_id, item_id, judge, score, status, reply, error) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    [(run.name, j.task_id, j.item_id, j.judge, j.score, j.status, j.reply, j.error)
                     for j in run.judgements])
            for name, (base, result) in comparisons.items():
                db.execute("DELETE FROM baselines WHERE run = ?", (name,))
                _insert_comparison(db, name, base, result)
            _drop_orphans(db)

    def scoring_rows(self, run: str) -> list[PredictionRow]:
        """A stored run's prediction rows with every field the scorers read, exactly as its file had them."""

        out = []
        for p in self.db.execute(
            "SELECT task_id, item_id, input, output, reference, error, extra FROM predictions WHERE run = ? ORDER BY seq",
            (run,),
        ):
            if p["extra"] is None:
                raise MedsbenchError(f"run {run!r} was stored by an older medsbench (schema 2) without what scoring "
                                     "needs; add its run folder again first: medsbench board add RUN_DIR")
            extra = json.loads(p["extra"])
            nulls = set(extra.get("null", ()))
            fields: dict[str, Any] = {
                "task_id": check_name(p["task_id"], "task id", f"{self.path} (run {run})"),
                "id": check_item_id(p["item_id"], f"{self.path} (run {run})"), "category": extra.get("category"),
                "language": extra.get("language"), "error": p["error"],
                **{k: (None if k in nulls else p[k]) for k in ("input", "output", "reference")},
            }
            if "references" in extra:
                fields["references"] = extra["references"]
            out.append(PredictionRow(**fields))
        return out

    def baseline_of(self, run: str) -> str | None:
        row = self.db.execute("SELECT baseline FROM baselines WHERE run = ?", (run,)).fetchone()
        return None if row is None else row["baseline"]

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
            _drop_orphans(db)

    # -- queries (used by the site); identifiers are checked as they are read back ------------------

    def _where(self, run: str | None = None) -> str:
        return f"{self.path} (run {run})" if run else str(self.path)

    def runs(self, *, include_pending: bool = False) -> list[RunRow]:
        sql = "SELECT * FROM runs" + ("" if include_pending else " WHERE status = 'approved'") + " ORDER BY name"
        out = []
        for r in self.db.execute(sql).fetchall():
            where = self._where()
            out.append(RunRow(check_name(r["name"], "run name", where), check_model_name(r["model"], where=where),
                              r["kind"], r["status"], r["source"], json.loads(r["manifest"]), r["added"], r["protocol"],
                              bool(r["partial"]), tuple(json.loads(r["flags"] or "[]")), r["benchmark_version"]))
        return out

    def models(self) -> list[sqlite3.Row]:
        rows = self.db.execute("SELECT * FROM models ORDER BY name").fetchall()
        for r in rows:
            check_model_name(r["name"], where=self._where())
        return rows

    def task_info(self, run: str) -> list[sqlite3.Row]:
        rows = self.db.execute("SELECT * FROM task_info WHERE run = ? ORDER BY task_id", (run,)).fetchall()
        for r in rows:
            check_name(r["task_id"], "task id", self._where(run))
            if r["category"] is not None:
                check_name(r["category"], "category", self._where(run))
        return rows

    def task_scores(self, run: str) -> list[sqlite3.Row]:
        rows = self.db.execute("SELECT * FROM task_scores WHERE run = ? ORDER BY task_id, mode, metric",
                               (run,)).fetchall()
        for r in rows:
            check_name(r["task_id"], "task id", self._where(run))
        return rows

    def category_scores(self, run: str) -> list[sqlite3.Row]:
        rows = self.db.execute("SELECT * FROM category_scores WHERE run = ? ORDER BY category, mode, metric",
                               (run,)).fetchall()
        for r in rows:
            check_name(r["category"], "category", self._where(run))
        return rows

    def calibration(self, run: str) -> list[dict[str, Any]]:
        """The calibration rows of a likelihood-scored run (empty for a generative one), ids checked."""
        out = []
        for r in self.db.execute("SELECT * FROM calibration WHERE run = ? ORDER BY task_id, is_primary DESC, variant",
                                 (run,)).fetchall():
            check_name(r["task_id"], "task id", self._where(run))
            out.append({"task_id": r["task_id"], "variant": check_name(r["variant"], "variant", self._where(run)),
                        "primary": bool(r["is_primary"]), "n": r["n"], "n_excluded": r["n_excluded"],
                        "metrics": json.loads(r["metrics"]), "ci": json.loads(r["ci"]),
                        "reliability": json.loads(r["reliability"])})
        return out

    def task_files(self) -> dict[str, dict[str, Any]]:
        """Every stored test-file version by sha256 (JSON columns decoded)."""
        out = {}
        for r in self.db.execute("SELECT * FROM task_files ORDER BY task_id, sha256"):
            check_name(r["task_id"], "task id", self._where())
            row = dict(r)
            for k in ("labels", "example", "source"):
                row[k] = json.loads(row[k]) if row[k] is not None else None
            out[row["sha256"]] = row
        return out

    def predictions(self, run: str) -> Iterator[sqlite3.Row]:
        for r in self.db.execute("SELECT * FROM predictions WHERE run = ? ORDER BY seq", (run,)):
            check_name(r["task_id"], "task id", self._where(run))
            check_item_id(r["item_id"], self._where(run))
            yield r

    def prediction_count(self, run: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM predictions WHERE run = ?", (run,)).fetchone()[0]

    def judgements(self, run: str) -> list[sqlite3.Row]:
        rows = self.db.execute("SELECT * FROM judgements WHERE run = ? ORDER BY task_id, item_id, judge",
                               (run,)).fetchall()
        for r in rows:
            check_name(r["judge"], "judge name", self._where(run))
            check_name(r["task_id"], "task id", self._where(run))
        return rows

    def judged(self, run: str) -> dict[str, Any] | None:
        """The judged scores of a run: ``{"run": row, "tasks": [rows], "categories": [rows]}`` (JSON columns
        decoded), or None when the run was added without a ``judged.json``."""

        head = self.db.execute("SELECT * FROM judged_runs WHERE run = ?", (run,)).fetchone()
        if head is None:
            return None
        decode = ("rubrics", "scale", "judges", "probe_totals", "notes", "tasks", "probes", "unusable")

        def as_dict(r: sqlite3.Row) -> dict[str, Any]:
            return {k: (json.loads(r[k]) if k in decode else r[k]) for k in r.keys()}

        out = as_dict(head)
        where = self._where(run)
        for name in [j["name"] for j in out["judges"]] + list(out["probe_totals"]) + list(out["unusable"]):
            check_name(name, "judge name", where)
        tasks = sorted((as_dict(r) for r in self.db.execute("SELECT * FROM judged_tasks WHERE run = ?", (run,))),
                       key=lambda t: task_order(t["task_id"]))
        cats = [as_dict(r) for r in self.db.execute("SELECT * FROM judged_categories WHERE run = ? ORDER BY category",
                                                    (run,))]
        for t in tasks:
            check_name(t["task_id"], "task id", where)
        for c in cats:
            check_name(c["category"], "category", where)
        return {"run": out, "tasks": tasks, "categories": cats}

    # -- contamination, averages and slices, usage -----------------------------------------------

    def contamination(self, run: str) -> dict[str, Any] | None:
        """A run's contamination report: ``{"run": row (rule, corpora decoded), "tasks": [rows], "categories":
        [rows]}``, or None when the run was added without a ``contamination.json``."""
        head = self.db.execute("SELECT * FROM contam_runs WHERE run = ?", (run,)).fetchone()
        if head is None:
            return None
        where = self._where(run)
        out = {k: (json.loads(head[k]) if k in ("rule", "corpora") else head[k]) for k in head.keys()}
        tasks = self.db.execute("SELECT * FROM contam_tasks WHERE run = ? ORDER BY task_id, mode, metric",
                                (run,)).fetchall()
        cats = [{**dict(r), "without_clean": json.loads(r["without_clean"])} for r in self.db.execute(
            "SELECT * FROM contam_categories WHERE run = ? ORDER BY category, mode, metric", (run,))]
        for r in tasks:
            check_name(r["task_id"], "task id", where)
        for c in cats:
            check_name(c["category"], "category", where)
        return {"run": out, "tasks": tasks, "categories": cats}

    def averages(self, run: str) -> list[sqlite3.Row]:
        """Every category's macro and micro averages and slices of a run."""
        rows = self.db.execute(
            "SELECT * FROM average_scores WHERE run = ? ORDER BY category, slice_kind, slice_key, average, mode, metric",
            (run,)).fetchall()
        for r in rows:
            check_name(r["category"], "category", self._where(run))
        return rows

    def usage(self, run: str) -> list[sqlite3.Row]:
        """Tokens, time and cost per task of a run and for the run (``task_id`` '')."""
        rows = self.db.execute("SELECT * FROM usage WHERE run = ? ORDER BY task_id", (run,)).fetchall()
        for r in rows:
            if r["task_id"]:
                check_name(r["task_id"], "task id", self._where(run))
        return rows

    def comparison(self, run: str) -> dict[str, Any] | None:
        """The paired comparison of ``run`` with its baseline: ``{"baseline", "method", "resamples", "seed",
        "rows": [comparison rows]}``, or None when the run has no baseline."""
        head = self.db.execute("SELECT * FROM baselines WHERE run = ?", (run,)).fetchone()
        if head is None:
            return None
        rows = self.db.execute("SELECT * FROM comparisons WHERE run = ? ORDER BY scope, key, mode, metric",
                               (run,)).fetchall()
        for r in rows:
            check_name(r["key"], "task id or category", self._where(run))
        return {"baseline": check_name(head["baseline"], "run name", self._where(run)), "method": head["method"],
                "resamples": head["resamples"], "seed": head["seed"], "rows": rows}


# -- schema -------------------------------------------------------------------------------------------


def _ensure_tables(db: sqlite3.Connection) -> None:
    """Every table and column of the current schema, added where missing (idempotent)."""
    ref = sqlite3.connect(":memory:")
    try:
        for ddl in _TABLES:
            db.execute(ddl)
            ref.execute(ddl)
        for (table,) in ref.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
            for _, col, typ, notnull, default, _pk in ref.execute(f"PRAGMA table_info({table})").fetchall():
                if col not in have:
                    extra = (" NOT NULL" if notnull else "") + (f" DEFAULT {default}" if default is not None else "")
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {typ}{extra}")
    finally:
        ref.close()


def _migrate_to_4(db: sqlite3.Connection) -> None:
    """Schema 1-3 -> 4: pooled groups and reported runs renamed to the identifier grammar (the seed is
    written again), and majority baselines that came from a run's sample (not the full test file) dropped."""
    for table in ("task_info", "task_scores"):
        db.execute(f"UPDATE {table} SET task_id = 'pooled-' || substr(task_id, 8) WHERE task_id LIKE 'pooled:%'")
    db.execute("DELETE FROM runs WHERE kind = 'reported'")
    db.execute("DELETE FROM models WHERE kind = 'reported'")
    db.execute("DELETE FROM meta WHERE key = 'seed_version'")
    db.execute("UPDATE task_info SET majority_baseline = NULL, degenerate = 0, baseline_note = ?", (OLD_BASELINE,))


def _migrate_to_5(db: sqlite3.Connection) -> None:
    """Schema 4 -> 5: the calibration table of likelihood-scored runs, and the contamination, averages
    and slices, and usage tables (also made by :func:`_ensure_tables`). Runs stored before have no rows
    in them until added again (their ``store_version`` is 4, so ``board add`` of the same folder updates
    them). Nothing to move."""
    for ddl in _CALIBRATION_TABLES:
        db.execute(ddl)


def _derive_categories(db: sqlite3.Connection, run: str, skip: set[str]) -> None:
    """Category means over the (non-pooled) tasks a per-task source reported."""
    rows = db.execute(
        "SELECT i.category, s.mode, s.metric, AVG(s.value) AS v, COUNT(*) AS n FROM task_scores s "
        "JOIN task_info i ON i.run = s.run AND i.task_id = s.task_id "
        "WHERE s.run = ? AND s.task_id NOT LIKE 'pooled-%' GROUP BY i.category, s.mode, s.metric", (run,)).fetchall()
    db.executemany(
        "INSERT INTO category_scores(run, category, mode, metric, value, n_tasks, derived) VALUES (?,?,?,?,?,?,1)",
        [(run, r["category"], r["mode"], r["metric"], round(r["v"], 4), r["n"]) for r in rows
         if r["category"] not in skip])


def _drop_orphans(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM models WHERE kind != 'reported' AND name NOT IN (SELECT model FROM runs)")
    db.execute("DELETE FROM task_files WHERE sha256 NOT IN "
               "(SELECT file_sha256 FROM task_info WHERE file_sha256 IS NOT NULL)")


# -- inserts -----------------------------------------------------------------------------------------


def _insert_scores(db: sqlite3.Connection, run: BoardRun) -> None:
    db.executemany(
        "INSERT INTO task_info(run, task_id, category, language, n, metric, parse_failure_rate, empty_rate, n_failed, "
        "coverage, n_planned, n_total, majority_baseline, degenerate, n_reference, majority_label, baseline_note, "
        "file_sha256, version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(run.name, t.task_id, t.category, t.language, t.n, t.metric, t.parse_failure_rate, t.empty_rate, t.n_failed,
          t.coverage, t.n_planned, t.n_total, t.majority_baseline, int(t.degenerate), t.n_reference, t.majority_label,
          t.baseline_note, t.file_sha256, t.version) for t in run.tasks])
    db.executemany(
        "INSERT INTO task_scores(run, task_id, mode, metric, value, ci_lo, ci_hi, ci_method) VALUES (?,?,?,?,?,?,?,?)",
        [(run.name, s.key, s.mode, s.metric, s.value, s.ci_lo, s.ci_hi, s.ci_method) for s in run.task_scores])
    db.executemany(
        "INSERT INTO category_scores(run, category, mode, metric, value, n_tasks, derived, ci_lo, ci_hi) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        [(run.name, s.key, s.mode, s.metric, s.value, s.n_tasks, int(s.derived), s.ci_lo, s.ci_hi)
         for s in run.category_scores])
    db.executemany(
        "INSERT OR REPLACE INTO task_files(sha256, task_id, version, n_instances, labels, n_labels, majority_label, "
        "majority_baseline, degenerate, example, source) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [(f.sha256, f.task_id, f.version, f.n_instances, None if f.labels is None else _dump(f.labels), f.n_labels,
          f.majority_label, f.majority_baseline, int(f.degenerate), _dump(f.example), _dump(f.source))
         for f in run.task_files])


def _insert_measures(db: sqlite3.Connection, run: BoardRun) -> None:
    """A run's contamination report, category averages and slices, and usage."""
    db.executemany(
        "INSERT INTO average_scores(run, category, slice_kind, slice_key, average, mode, metric, value, ci_lo, ci_hi, n, "
        "n_tasks, tasks) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(run.name, a.category, a.slice_kind, a.slice_key, a.average, a.mode, a.metric, a.value, a.ci_lo, a.ci_hi, a.n,
          a.n_tasks, _dump(list(a.tasks))) for a in run.averages])
    db.executemany(
        "INSERT INTO usage(run, task_id, n_items, prompt_tokens, output_tokens, n_tokens_unknown, item_seconds, cost_usd, "
        "cost_per_1k_items_usd, price) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [(run.name, u.task_id, u.n_items, u.prompt_tokens, u.output_tokens, u.n_tokens_unknown, u.item_seconds,
          u.cost_usd, u.cost_per_1k_items_usd, None if u.price is None else _dump(u.price)) for u in run.usage])
    report = run.contamination
    if report is None:
        return
    db.execute("INSERT INTO contam_runs(run, sha256, created, rule, corpora, n_items, n_contaminated) "
               "VALUES (?,?,?,?,?,?,?)",
               (run.name, run.sha256[CONTAMINATION], report.created, _dump(report.rule.model_dump(mode="json")),
                _dump([c.model_dump(mode="json") for c in report.corpora]), report.n_items, report.n_contaminated))
    rows = []
    for tid, t in report.tasks.items():
        for mode in MODES:
            pick = (lambda s: s.metrics) if mode == "strict" else (lambda s: s.reference)
            pick_ci = (lambda s: s.ci) if mode == "strict" else (lambda s: s.reference_ci)
            clean, dirty, diff = t.clean, t.contaminated, t.difference
            metrics = sorted(set(pick(clean) if clean else {}) | set(pick(dirty) if dirty else {}))
            for metric in metrics:
                c_ci = pick_ci(clean).get(metric, (None, None)) if clean else (None, None)
                d_ci = pick_ci(diff).get(metric, (None, None)) if diff else (None, None)
                n_clean = None if clean is None else (clean.n if mode == "strict" else clean.n_reference)
                n_dirty = None if dirty is None else (dirty.n if mode == "strict" else dirty.n_reference)
                rows.append((run.name, tid, t.category, mode, metric, int(metric == t.metric), t.n_items, t.n_contaminated,
                             n_clean, n_dirty, pick(clean).get(metric) if clean else None, c_ci[0], c_ci[1],
                             pick(dirty).get(metric) if dirty else None, pick(diff).get(metric) if diff else None,
                             d_ci[0], d_ci[1]))
    db.executemany(
        "INSERT INTO contam_tasks(run, task_id, category, mode, metric, primary_metric, n_items, n_contaminated, n_clean, "
        "n_dirty, clean, clean_ci_lo, clean_ci_hi, contaminated, diff, diff_ci_lo, diff_ci_hi) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany(
        "INSERT INTO contam_categories(run, category, mode, metric, value, n_tasks, without_clean) VALUES (?,?,?,?,?,?,?)",
        [(run.name, ckey, mode, metric, value, len(c.tasks), _dump(c.without_clean))
         for ckey, c in report.categories.items()
         for mode, metrics in (("strict", c.metrics), ("reference", c.reference)) for metric, value in metrics.items()])


def _insert_items(db: sqlite3.Connection, run: BoardRun) -> None:
    db.executemany(
        "INSERT INTO predictions(run, seq, task_id, item_id, input, output, reference, correct, strict_correct, error, "
        "extra, prompt, parsed, parse_note) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(run.name, it.seq, it.task_id, it.item_id, it.input or "", it.output or "", it.reference or "", it.correct,
          it.strict_correct, it.error, _dump(it.extra), it.prompt, None if it.parsed is None else int(it.parsed),
          it.parse_note) for it in run.items])


def _insert_judged(db: sqlite3.Connection, run: str, judged: JudgedResults, sha: str, unusable: dict[str, str]) -> None:
    names = [j.name for j in judged.judges]
    head = "jury" if len(names) > 1 else names[0]
    judges = [{"name": j.name, "spec": redact(j.spec), "requests": j.requests, "cached": j.cached,
               "errors": j.errors, "prompt_tokens": j.prompt_tokens, "output_tokens": j.output_tokens,
               "cost_usd": j.cost_usd} for j in judged.judges]

    def probes(table: dict[str, Any]) -> dict[str, Any]:
        return {k: {kind: p.model_dump(mode="json") for kind, p in v.items()} for k, v in table.items()}

    db.execute(
        "INSERT INTO judged_runs(run, sha256, created, template, rubrics, probes_version, scale, judges, headline, "
        "probe_totals, notes, unusable) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (run, sha, judged.created, judged.template, _dump(judged.rubrics), judged.probes_version, _dump(judged.scale),
         _dump(judges), head, _dump(probes(judged.probe_totals)), _dump(judged.notes), _dump(unusable)))

    def per_judge(s: Any) -> dict[str, Any]:
        return {"mean": s.mean, "ci95": s.ci95, "n_scored": s.n_scored, "parse_failure_rate": s.parse_failure_rate,
                "parse_failures": s.parse_failures, "errors": s.errors}

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
             _dump({name: per_judge(t.judges[name]) for name in names}), _dump(probes(t.probes))))
    for ckey, c in judged.categories.items():
        members = [judged.tasks[tid] for tid in c.tasks if tid in judged.tasks]
        ci = members[0].jury.ci95 if len(members) == 1 else None  # a one-task category: the task's CI
        asked = sum(m.n * len(names) - m.jury.errors for m in members)  # judgements that came back
        pfr = round(sum(m.jury.parse_failures for m in members) / asked, 4) if asked else None
        db.execute(
            "INSERT INTO judged_categories(run, category, tasks, n, n_scored, mean, ci_lo, ci_hi, parse_failure_rate, "
            "judges) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (run, ckey, _dump(c.tasks), c.n, sum(m.jury.n_scored for m in members), c.means.get(head),
             ci[0] if ci else None, ci[1] if ci else None, pfr, _dump(c.means)))


def _insert_comparison(db: sqlite3.Connection, run: str, baseline: str, result: dict[str, Any]) -> None:
    db.execute("INSERT INTO baselines(run, baseline, method, resamples, seed) VALUES (?,?,?,?,?)",
               (run, baseline, result["method"], result["resamples"], result["seed"]))
    by_cat: dict[str, list[dict[str, Any]]] = {}
    sql = ("INSERT INTO comparisons(run, scope, key, category, mode, metric, base, tuned, delta, ci_lo, ci_hi, p_value, "
           "n, n_tasks, only_in_run, only_in_baseline) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    for tid, t in result["tasks"].items():
        by_cat.setdefault(t["category"], []).append(t)
        for mode in MODES:
            for metric, v in t[mode].items():
                db.execute(sql, (run, "task", tid, t["category"], mode, metric, v["b"], v["a"], v["delta"], v["ci"][0],
                                 v["ci"][1], v["p_value"], t["n"], None, t["only_in_a"], t["only_in_b"]))
    for ckey, c in result["categories"].items():
        members = by_cat.get(ckey, [])
        for mode in MODES:
            for metric, v in c[mode].items():
                # The category's values are the macro means of its tasks' (as the delta is the mean of theirs).
                vals = [t[mode][metric] for t in members if metric in t[mode]]
                full = len(vals) == len(members) and vals
                base = round(sum(x["b"] for x in vals) / len(vals), 4) if full else None
                tuned = round(sum(x["a"] for x in vals) / len(vals), 4) if full else None
                db.execute(sql, (run, "category", ckey, ckey, mode, metric, base, tuned, v["delta"], v["ci"][0],
                                 v["ci"][1], v["p_value"], sum(t["n"] for t in members), c["n_tasks"], None, None))
