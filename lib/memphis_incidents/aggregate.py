"""Stage 3, aggregate: Spark reads the `incidents` table and computes the marts (defined in marts.py).

A night recomputes only the months whose partition of `incidents` changed since the live marts were
computed, reading only those partitions; their per-month partials replace the previous ones and
every mart is derived again from the partials (partials.py), then all are published together. The
first run, `--full-refresh`, a change of the package code, or a warehouse that cannot tell which
months changed (BigQuery) computes every month.

The partials come from two Spark queries run side by side (each query costs about a second of
planning, code generation and scheduling on a laptop, whatever its size): `_incidents`, one narrow
row per incident and month, and the union of all the others. The rows are first counted per finest
group (KEYS), then rolled up by grouping sets, one per counted partial;
repeats of an incident are looked for only among incidents with several offense rows, found by a
64-bit hash of the incident key, where a collision only adds another incident's rows to those
counted. The same code runs in local mode, on a cluster, or through Spark Connect (`spark_remote`).

A local session is started by the step's kernel while the ingest and load steps run (`prepare`):
the step finds the driver JVM up.
"""
from __future__ import annotations

import functools
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from .backends import Backends
from .config import RunParameters
from .fingerprint import package_digest
from .marts import CELL_KEYS, GRID_DEGREES, INDEX, KEYS, MARTS, MAX_LAG_DAYS, MONTH, PARTIALS, SETS, SPANS, \
    partials_for, split_partials
from .partials import derive_marts, merge_partials, recompute_plan
from .schema import CANONICAL_SCHEMA, GEO_STATUS, spark_schema
from .spark_session import LAPTOP_CONF, handed_over, java_options, local_session, spark_session, start_ahead, \
    stop_session
from .warehouse import Warehouse

NULL_MARK = "\u0000"  # stands for a missing label in a cell's hash


def incident_key() -> Column:
    """The incident an offense row belongs to (its own row when the Crime ID is missing)."""
    return F.coalesce(F.col("incident_id"), F.concat(F.lit("row:"), F.col("row_id")))


def cell_hash() -> Column:
    """A 64-bit hash of the CELL_KEYS of a row or group: the all-time counted marts' finest cell."""
    return F.xxhash64(F.lit("cell"), *[F.coalesce(F.col(key).cast("string"), F.lit(NULL_MARK)) for key in CELL_KEYS])


def partial_rows(incidents: DataFrame) -> DataFrame:
    """The columns the partials read, with each row's incident (a 64-bit hash) and cell."""
    return incidents.select(
        incident_key().alias("incident"), *KEYS[:-1], F.coalesce("precinct", F.lit("UNKNOWN")).alias("precinct"),
        "offense_ts_local", "geo_status", "latitude", "longitude", "source_updated_ts_utc", "offense_ts_utc",
        "reported_ts_utc").withColumn("incident_hash", F.xxhash64("incident")).withColumn("cell", cell_hash())


def incident_index(rows: DataFrame) -> DataFrame:
    """The `_incidents` partial: each incident's offense rows per month and cell."""
    return by_month(rows, F.col("incident_hash").alias("incident"), "cell")


def partials_query(rows: DataFrame, names: Sequence[str]) -> DataFrame:
    """The query whose result `marts.split_partials` turns into the partials `names` (not
    `_incidents`, which has a query of its own: see compute_partials)."""
    parts = {**counted_parts(rows, incident_index(rows), names), **plain_parts(rows, names)}
    tagged = [frame.withColumn("part", F.lit(name)) for name, frame in parts.items()]
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), tagged)


def plain_parts(rows: DataFrame, names: Sequence[str]) -> dict[str, DataFrame]:
    """The plain partials `names` ask for: offense rows per month and their own keys."""
    parts = {}
    if "_hour_weekday" in names:
        weekday = ((F.dayofweek("offense_ts_local") + 5) % 7 + 1).alias("weekday")
        parts["_hour_weekday"] = by_month(rows, weekday, F.hour("offense_ts_local").alias("hour"))
    if "_geo_grid" in names:
        parts["_geo_grid"] = by_month(rows.where(F.col("geo_status") == "ok"),
                                      grid_cell("latitude"), grid_cell("longitude"))
    if "reporting_lag" in names:
        parts["reporting_lag"] = by_month(rows.where(F.col("reported_ts_utc").isNotNull()),
                                          lag_days().alias("lag_days"))
    return parts


def by_month(rows: DataFrame, *keys: Column | str) -> DataFrame:
    """Offense rows per month and `keys`."""
    return rows.groupBy(MONTH, *keys).agg(F.count(F.lit(1)).alias("offense_rows"))


def lag_days() -> Column:
    """Whole days from the offense to its report, clipped to -1 … MAX_LAG_DAYS + 1."""
    seconds = F.unix_timestamp("reported_ts_utc") - F.unix_timestamp("offense_ts_utc")
    return F.least(F.greatest(F.floor(seconds / 86400), F.lit(-1)), F.lit(MAX_LAG_DAYS + 1)).cast("int")


def grid_cell(column: str) -> Column:
    """A coordinate snapped to the centre of its grid cell."""
    return ((F.floor(F.col(column) / GRID_DEGREES) + 0.5) * GRID_DEGREES).alias(column)


def counted_parts(rows: DataFrame, index: DataFrame, names: Sequence[str]) -> dict[str, DataFrame]:
    """The `counted` and `repeats` parts of the counted partials `names` ask for."""
    sets = list(dict.fromkeys(SETS[name] for name in names if name in SETS))
    if not sets:
        return {}
    cells = rows.groupBy(*KEYS).agg(
        F.count(F.lit(1)).alias("offense_rows"),
        F.min("offense_date").alias("first_offense_date"), F.max("offense_date").alias("last_offense_date"),
        F.max("source_updated_ts_utc").alias("last_source_update_utc"),
        *[F.sum(F.when(F.col("geo_status") == s, 1).otherwise(0)).alias(f"geo_{s}") for s in GEO_STATUS])
    parts = {"counted": cells.groupingSets([list(keys) for keys in sets], *KEYS).agg(
        F.grouping_id().alias("gid"), F.sum("offense_rows").alias("offense_rows"),
        *[getattr(F, how)(name).alias(name) for name, how in SPANS.items()])
        .withColumns({"cell": cell_hash(), "repeats": F.lit(None).cast("long")})}
    counted = list(dict.fromkeys(SETS[name] for name in names if name in SETS and name in MARTS))
    if counted:  # distinct incidents: the monthly counted marts only (the all-time ones use _incidents)
        several = index.groupBy(F.col("incident").alias("incident_hash")) \
            .agg(F.sum("offense_rows").alias("rows")).where(F.col("rows") > 1)
        repeated = rows.join(F.broadcast(several.select("incident_hash")), "incident_hash", "left_semi")
        per_incident = repeated.groupBy(*KEYS, "incident").agg(F.count(F.lit(1)).alias("rows"))
        # incident is the last grouping column: its bit (always 0) is shifted out to match "counted"
        parts["repeats"] = per_incident.groupingSets([[*keys, "incident"] for keys in counted], *KEYS, "incident") \
            .agg(F.shiftright(F.grouping_id(), 1).alias("gid"), F.sum("rows").alias("rows")) \
            .groupBy("gid", *KEYS).agg(F.sum(F.col("rows") - 1).alias("repeats"))
    return parts


def compute_partials(incidents: DataFrame, names: Sequence[str] = tuple(PARTIALS)) -> dict[str, pa.Table]:
    """The partials `names` (default: all) of the incidents read, as Arrow tables: two Spark jobs,
    run side by side. `_incidents`, one row per incident and month, comes in its own four columns;
    in the union of the other parts, whose columns are those of every part, each of its rows would
    carry some twenty null columns to the driver (the 17M-row run ran out of heap that way)."""
    rows, others = partial_rows(incidents), [name for name in names if name != INDEX]
    jobs = {**({"others": partials_query(rows, others)} if others else {}),
            **({INDEX: incident_index(rows).select(*PARTIALS[INDEX])} if INDEX in names else {})}
    with ThreadPoolExecutor(max_workers=2) as pool:
        running = {name: pool.submit(query.toArrow) for name, query in jobs.items()}
        results = {name: job.result() for name, job in running.items()}
    partials = split_partials(results["others"], others) if others else {}
    return {name: results[INDEX] if name == INDEX else partials[name] for name in names}


def compute_marts(incidents: DataFrame, names: Sequence[str] = MARTS) -> dict[str, pa.Table]:
    """The marts `names` (default: all) of the incidents table, as Arrow tables: one Spark job."""
    return derive_marts(compute_partials(incidents, partials_for(names)), names)


def run_aggregate(master: str, remote: str, warehouse: Warehouse, full_refresh: bool = False) -> dict[str, Any]:
    """Recompute the partials of the months that changed (every month when it must), derive every
    mart from the partials and publish marts and partials together.

    Marts are small (thousands of rows), so they come back to the driver as Arrow and the
    warehouse writes them: no per-mart Hadoop commit, and the same hand-off works for Spark
    Connect and for BigQuery.
    """
    started = time.perf_counter()
    code, now = package_digest(), warehouse.month_tokens()
    months, reason = recompute_plan(now, warehouse.marts_basis(), code, full_refresh)
    record: dict[str, Any] = {"months_recomputed": "all" if months is None else [m.isoformat() for m in months],
                              "reason": reason, "marts": {}, "version": None}
    if months != []:
        basis = {"code": code, "months": now} if now is not None else None
        record.update(publish_recomputed(master, remote, warehouse, months, basis))
    return {**record, "spark_seconds": round(time.perf_counter() - started, 2)}


def publish_recomputed(master: str, remote: str, warehouse: Warehouse, months: list[date] | None,
                       basis: dict[str, Any] | None) -> dict[str, Any]:
    """Recompute the months given (None: all) in Spark, merge, derive and publish the marts.

    The driver JVM starts while the previous partials are read, and ends (giving back its heap) while
    the marts are derived and written: neither waits for the other.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        session = pool.submit(spark_session, master, remote, warehouse.spark_conf)
        previous = {} if months is None else warehouse.read_partials(list(PARTIALS))
        spark = session.result()
        try:
            fresh = compute_partials(warehouse.spark_incidents(spark, months))
        finally:
            pool.submit(stop_session, spark)
        partials = merge_partials(previous, fresh, months)
        marts = derive_marts(partials)
        return {"marts": {name: table.num_rows for name, table in sorted(marts.items())},
                "version": warehouse.save_marts(marts, partials, basis), "spark_session": dict(handed_over)}


def aggregate(params: RunParameters, backends: Backends) -> dict[str, Any]:
    """The aggregate step: the marts of the run's warehouse, on the Spark the parameters name."""
    return run_aggregate(params.spark_master, params.spark_remote, backends.warehouse, params.full_refresh)


def prepare(params: RunParameters, backends: Backends) -> None:
    """Run by the step's kernel as it boots, while the steps before it run (steps.py `prepare`): a
    local Spark session starts in the background, for spark_session() to hand over. Measured on a
    nightly run: 3 s less wall time; warming it with a small query as well cost more than it saved,
    competing with the ingest and load for the two cores (bench/NOTES.md)."""
    if not params.spark_remote and params.spark_master.startswith("local"):
        start_ahead(params.spark_master, backends.warehouse.spark_conf)


def dump_class_archive(target: Path) -> None:
    """Run every mart once on a one-row table, in a JVM that writes the classes it loaded to
    `target` when it exits (with this Python process)."""
    conf = {**LAPTOP_CONF, "spark.driver.extraJavaOptions": java_options(None, dump_to=target)}
    with tempfile.TemporaryDirectory() as folder:
        one_row = pa.Table.from_pylist([{}], schema=CANONICAL_SCHEMA)
        pq.write_table(one_row, Path(folder) / "part-0.parquet")
        spark = local_session("local[2]", "memphis-incidents-class-archive", conf)
        compute_marts(spark.read.schema(spark_schema(CANONICAL_SCHEMA)).parquet(folder))
        spark.stop()


if __name__ == "__main__" and sys.argv[1:2] == ["--dump-class-archive"]:
    dump_class_archive(Path(sys.argv[2]))
