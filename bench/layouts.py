"""The original project's partitioning experiment, on the embedded warehouse: the same rows laid out
four ways (partitioned by month and clustered by category, each alone, and neither) and queried
with DuckDB, the warehouse's SQL engine, for one month, one category and the full aggregation.

Every layout is written with the warehouse's own Parquet settings. Unpartitioned tables are one
file in row groups of UNPARTITIONED_ROW_GROUP rows, so that their min/max statistics can prune;
"clustered" means sorted by category (then row id), "not clustered" sorted by row id alone.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from memphis_incidents.warehouse.local import (DICTIONARY_COLUMNS, PARTITION, LocalWarehouse, month_slices,
                                               write_partition)

UNPARTITIONED_ROW_GROUP = 128 * 1024
INCIDENT = "coalesce(incident_id, 'row:' || row_id)"


@dataclass(frozen=True)
class Layout:
    name: str
    partitioned: bool
    order: tuple[str, ...]

    def source(self, folder: Path) -> str:
        """The DuckDB table expression that reads this layout."""
        if self.partitioned:
            return f"read_parquet('{folder}/*/*.parquet', hive_partitioning = true)"
        return f"read_parquet('{folder}/table.parquet')"


LAYOUTS = (
    Layout("partitioned by month + clustered by category", True, ("category", "row_id")),
    Layout("partitioned by month only", True, ("row_id",)),
    Layout("clustered by category only", False, ("category", "row_id")),
    Layout("neither", False, ("row_id",)),
)


def write_layout(layout: Layout, warehouse: LocalWarehouse, folder: Path) -> None:
    """The live table's rows written in `layout` under `folder`."""
    order = ", ".join(((PARTITION,) if layout.partitioned else ()) + layout.order)
    with warehouse.connect() as con:
        rows = con.sql(f"SELECT * FROM incidents ORDER BY {order}").to_arrow_table()
    folder.mkdir(parents=True)
    if layout.partitioned:
        for month in month_slices(rows):
            write_partition(folder, month)
    else:
        pq.write_table(rows, folder / "table.parquet", compression="zstd", use_dictionary=DICTIONARY_COLUMNS,
                       row_group_size=UNPARTITIONED_ROW_GROUP)


def queries(warehouse: LocalWarehouse) -> dict[str, str]:
    """The three queries, as SQL over `{source}`: a typical month, a typical category, everything
    (typical: the median by offense rows)."""
    with warehouse.connect() as con:
        month = median_key(con, PARTITION)
        category = median_key(con, "category")
    return {
        f"one month ({month})": f"SELECT category, count(*), count(DISTINCT {INCIDENT}) FROM {{source}} "
                                f"WHERE {PARTITION} = DATE '{month}' GROUP BY category",
        f"one category ({category})": f"SELECT {PARTITION}, count(*), count(DISTINCT {INCIDENT}) FROM {{source}} "
                                      f"WHERE category = '{category}' GROUP BY {PARTITION}",
        "full aggregation (month x category)": f"SELECT {PARTITION}, category, count(*), count(DISTINCT {INCIDENT}) "
                                               f"FROM {{source}} GROUP BY {PARTITION}, category",
    }


def median_key(con: duckdb.DuckDBPyConnection, column: str) -> str:
    """The value of `column` whose row count is the median one."""
    values = con.execute(f"SELECT {column} FROM incidents GROUP BY {column} ORDER BY count(*), {column}").fetchall()
    return str(values[len(values) // 2][0])


def seconds(sql: str, times: int) -> list[float]:
    """Wall seconds of `times` runs of a query, each on a fresh connection (nothing cached)."""
    samples = []
    for _ in range(times):
        with duckdb.connect() as con:
            started = time.perf_counter()
            con.execute(sql).fetchall()
            samples.append(time.perf_counter() - started)
    return samples


def rows_and_bytes_read(sql: str) -> tuple[int, int]:
    """Rows the table scans produced and bytes read from storage, as DuckDB's profiler counts them:
    what BigQuery would bill, and what a table too large for the page cache would wait for."""
    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as con:
        profile = Path(folder) / "profile.json"
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute(f"PRAGMA profiling_output = '{profile}'")
        con.execute(sql).fetchall()
        found = json.loads(profile.read_text())
    return sum(scanned_rows(found)), found["io"]["total_bytes_read"]


def scanned_rows(node: dict) -> list[int]:
    """rows_scanned of every table scan in a profile tree."""
    own = [node["rows_scanned"]] if node.get("type") == "TABLE_SCAN" else []
    return own + [n for child in node.get("operator", []) + node.get("children", []) for n in scanned_rows(child)]


@dataclass
class Experiment:
    """Per (query, layout): seconds of each run, and the rows and bytes one run reads."""

    seconds: dict[tuple[str, str], list[float]]
    read: dict[tuple[str, str], tuple[int, int]]


def partitioning_experiment(warehouse: LocalWarehouse, work: Path, times: int) -> Experiment:
    """Each query on each layout, `times` runs; each layout written once from the live table."""
    folders = {layout: work / f"layout-{n}" for n, layout in enumerate(LAYOUTS)}
    for layout, folder in folders.items():
        write_layout(layout, warehouse, folder)
    runs = {(query, layout.name): sql.format(source=layout.source(folder))
            for query, sql in queries(warehouse).items() for layout, folder in folders.items()}
    return Experiment({key: seconds(sql, times) for key, sql in runs.items()},
                      {key: rows_and_bytes_read(sql) for key, sql in runs.items()})
