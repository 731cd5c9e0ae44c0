"""Reading a built mixture back: shard row counts against stats.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError, require


def check_shards(mixture: str | Path, stats: dict[str, Any]) -> int:
    """Row count of every shard from its Parquet footer; a mismatch with stats.json is an error."""
    pq = require("pyarrow.parquet", "ins", "mixture stats")
    total = 0
    for s in stats["shard_files"]:
        path = Path(mixture) / s["path"]
        if not path.exists():
            raise MedsbenchError("shard listed in stats.json is missing", where=str(path))
        rows = pq.read_metadata(path).num_rows
        if rows != s["rows"]:
            raise MedsbenchError(f"shard has {rows} rows, stats.json says {s['rows']}", where=str(path))
        total += rows
    if total != stats["totals"]["examples"]:
        raise MedsbenchError(f"shards hold {total} rows, stats.json says {stats['totals']['examples']}", where=str(mixture))
    return total
