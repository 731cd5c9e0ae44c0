"""SQLite (WAL) result cache: every finished item is durable the moment it is committed.

Keyed by sha256 of (backend identity, rendered prompt, generation config), so a
crashed or interrupted run resumes without sending a finished item to the model
again, and a second run of the same model on the same prompts is free. WAL with
``synchronous=NORMAL`` survives a killed process (not a power cut), and lets
several runs share one cache file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from medsbench.fileio import sha256_text
from medsbench.models.base import LoglikResponse, Response


def cache_key(identity: dict[str, Any], text: str, generation: dict[str, Any]) -> str:
    blob = json.dumps({"identity": identity, "prompt": text, "generation": generation}, sort_keys=True, ensure_ascii=False)
    return sha256_text(blob)


class ResultCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER,"
            " output_tokens INTEGER, seconds REAL, created REAL)"
        )
        # --scoring loglik: per-continuation log-likelihoods (JSON), keyed like the generations
        self.db.execute("CREATE TABLE IF NOT EXISTS loglik (key TEXT PRIMARY KEY, data TEXT NOT NULL, created REAL)")

    def get(self, key: str) -> Response | None:
        row = self.db.execute(
            "SELECT text, prompt_tokens, output_tokens, seconds FROM results WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return Response("", row[0], row[1], row[2], row[3] or 0.0, None)

    def get_many(self, keys: list[str]) -> dict[str, Response]:
        found: dict[str, Response] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, text, pt, ot, sec in self.db.execute(
                f"SELECT key, text, prompt_tokens, output_tokens, seconds FROM results WHERE key IN ({marks})", chunk
            ):
                found[key] = Response("", text, pt, ot, sec or 0.0, None)
        return found

    def put_many(self, rows: list[tuple[str, Response]]) -> None:
        """Store successful responses in one transaction (failed ones are retried next time, so never cached)."""
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)",
                [(k, r.text, r.prompt_tokens, r.output_tokens, r.seconds, now) for k, r in rows if r.error is None],
            )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def get_loglik_many(self, keys: list[str]) -> dict[str, LoglikResponse]:
        """Cached log-likelihood responses by key (see :func:`medsbench.runs.loglik.loglik_config`)."""
        found: dict[str, LoglikResponse] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, data in self.db.execute(f"SELECT key, data FROM loglik WHERE key IN ({marks})", chunk):
                try:
                    d = json.loads(data)
                    found[key] = LoglikResponse("", [float(x) for x in d["logprobs"]], [int(x) for x in d["tokens"]],
                                                d.get("greedy"), d.get("prompt_tokens"), float(d.get("seconds") or 0.0))
                except (ValueError, KeyError, TypeError):
                    continue  # an unreadable row is a miss: the item is scored again
        return found

    def put_loglik_many(self, rows: list[LoglikResponse]) -> None:
        """Store successful log-likelihood responses (by their ``id``, the cache key) in one transaction."""
        now = time.time()
        data = [(r.id, json.dumps({"logprobs": r.logprobs, "tokens": r.tokens, "greedy": r.greedy,
                                   "prompt_tokens": r.prompt_tokens, "seconds": r.seconds}), now)
                for r in rows if r.error is None]
        if not data:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT OR REPLACE INTO loglik VALUES (?, ?, ?)", data)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        self.db.close()
