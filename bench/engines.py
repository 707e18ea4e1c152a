"""The headline aggregation (offense rows and distinct incidents per month and category) in PySpark
as the pipeline runs it, in DuckDB and in pandas, on the same live warehouse table.

Each engine runs in a fresh process (`python bench/engines.py ENGINE WAREHOUSE`), which prints its
own timings as JSON: start-up, the first query, the same query again, and a digest of the result
so the engines can be checked to agree.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from measure import run_checked

ENGINES = ("pyspark", "duckdb", "pandas")
COLUMNS = ["offense_month", "category", "incident_id", "row_id"]
DUCKDB_SQL = """
    SELECT offense_month, category, count(*) AS offense_rows,
           count(DISTINCT coalesce(incident_id, 'row:' || row_id)) AS incidents
    FROM read_parquet('{table}/*/*.parquet', hive_partitioning = true)
    GROUP BY offense_month, category"""


def digest(rows: list[tuple]) -> str:
    """A short digest of result rows (month as ISO text, category, two counts), order-free."""
    text = "\n".join(sorted(f"{str(m)[:10]}|{c}|{int(r)}|{int(i)}" for m, c, r, i in rows))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pyspark_engine(warehouse: Path) -> tuple[Callable[[], list[tuple]], Callable[[], None]]:
    """The pipeline's own code: its session, its read of the table, and its marts query asked for
    the monthly_category mart alone."""
    from memphis_incidents.aggregate import compute_marts
    from memphis_incidents.spark_session import spark_session
    from memphis_incidents.warehouse.local import LocalWarehouse

    spark = spark_session("local[*]")
    table = LocalWarehouse(warehouse)

    def query() -> list[tuple]:
        mart = compute_marts(table.spark_incidents(spark), ["monthly_category"])["monthly_category"]
        return [tuple(row.values()) for row in mart.to_pylist()]

    return query, spark.stop


def duckdb_engine(warehouse: Path) -> tuple[Callable[[], list[tuple]], Callable[[], None]]:
    import duckdb

    con = duckdb.connect()
    sql = DUCKDB_SQL.format(table=(warehouse / "incidents" / "current").resolve())
    return (lambda: con.execute(sql).fetchall()), con.close


def pandas_engine(warehouse: Path) -> tuple[Callable[[], list[tuple]], Callable[[], None]]:
    import pandas as pd

    table = (warehouse / "incidents" / "current").resolve()

    def query() -> list[tuple]:
        frame = pd.read_parquet(table, columns=COLUMNS)
        frame["incident"] = frame["incident_id"].fillna("row:" + frame["row_id"])
        counts = frame.groupby(["offense_month", "category"], observed=True)["incident"].agg(["size", "nunique"])
        return list(counts.reset_index().itertuples(index=False, name=None))

    return query, lambda: None


@dataclass
class EngineRun:
    """One engine in a fresh process: the whole process, and its own timings."""

    process_s: float
    peak_rss: int
    start_s: float
    first_s: float
    again_s: float
    rows: int
    digest: str


def run_engine(engine: str, warehouse: Path) -> EngineRun:
    """Run one engine's aggregation in a fresh, measured process."""
    measured = run_checked([sys.executable, __file__, engine, str(warehouse)], f"the {engine} aggregation")
    result = json.loads([line for line in measured.stdout.splitlines() if line.startswith("{")][-1])
    return EngineRun(process_s=measured.wall_s, peak_rss=measured.tree.peak_rss, **result)


def main(engine: str, warehouse: Path) -> None:
    started = time.perf_counter()
    query, stop = {"pyspark": pyspark_engine, "duckdb": duckdb_engine, "pandas": pandas_engine}[engine](warehouse)
    timings = {"start_s": time.perf_counter() - started}
    for label in ("first_s", "again_s"):
        begun = time.perf_counter()
        rows = query()
        timings[label] = time.perf_counter() - begun
    stop()
    print(json.dumps({**timings, "rows": len(rows), "digest": digest(rows)}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
