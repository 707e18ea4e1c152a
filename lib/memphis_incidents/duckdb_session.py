"""DuckDB connections with bounded memory: past MEMORY_LIMIT, joins, aggregations and sorts spill to
a folder on disk instead of growing with the table (DuckDB's default is 80 % of the machine)."""
from __future__ import annotations

from pathlib import Path

import duckdb

MEMORY_LIMIT = "1GB"


def bounded_connection(spill_to: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that uses at most MEMORY_LIMIT, spilling to `spill_to` (DuckDB creates
    it on first use, if its parent exists, and removes its files when the connection closes)."""
    if spill_to is not None:
        spill_to.parent.mkdir(parents=True, exist_ok=True)
    spill = {} if spill_to is None else {"temp_directory": str(spill_to)}
    return duckdb.connect(config={"memory_limit": MEMORY_LIMIT, **spill})
