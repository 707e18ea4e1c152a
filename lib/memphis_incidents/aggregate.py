"""Stage 3, aggregate: Spark reads the `incidents` table and computes the marts (defined in marts.py).

Every mart comes from one Spark query (one job, one hand-over to the driver): on a laptop each
query costs about a second of planning, code generation and scheduling whatever its size, so nine
queries cost more than the data does. The rows are first counted per finest group (KEYS, a sixth
of the rows), then rolled up by grouping sets, one per counted mart; repeats of an incident are
looked for only among incidents with several offense rows (about a fifth of the rows), found by a
64-bit hash of the incident key, where a collision only adds another incident's rows to those
counted. The same code runs in local mode, on a cluster, or through Spark Connect (`spark_remote`).
"""
from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from .backends import Backends
from .config import RunParameters
from .marts import COUNTED, GRID_DEGREES, KEYS, MARTS, MAX_LAG_DAYS, SPANS, counted_marts, split_marts
from .schema import CANONICAL_SCHEMA, GEO_STATUS, spark_schema
from .spark_session import LAPTOP_CONF, java_options, local_session, spark_session
from .warehouse import Warehouse


def incident_key() -> Column:
    """The incident an offense row belongs to (its own row when the Crime ID is missing)."""
    return F.coalesce(F.col("incident_id"), F.concat(F.lit("row:"), F.col("row_id")))


def marts_query(incidents: DataFrame, names: Sequence[str] = MARTS) -> DataFrame:
    """The one query whose result `marts.split_marts` turns into the marts `names`."""
    rows = incidents.select(
        incident_key().alias("incident"), *KEYS[:-1], F.coalesce("precinct", F.lit("UNKNOWN")).alias("precinct"),
        "offense_ts_local", "geo_status", "latitude", "longitude", "source_updated_ts_utc", "offense_ts_utc",
        "reported_ts_utc")
    parts = counted_parts(rows, names)
    if "hour_weekday" in names:
        weekday = ((F.dayofweek("offense_ts_local") + 5) % 7 + 1).alias("weekday")
        parts["hour_weekday"] = rows.groupBy(weekday, F.hour("offense_ts_local").alias("hour")).agg(
            F.count(F.lit(1)).alias("offense_rows"))
    if "geo_grid" in names:
        parts["geo_grid"] = rows.where(F.col("geo_status") == "ok") \
            .groupBy(grid_cell("latitude"), grid_cell("longitude")).agg(F.count(F.lit(1)).alias("offense_rows"))
    if "reporting_lag" in names:
        parts["reporting_lag"] = rows.where(F.col("reported_ts_utc").isNotNull()) \
            .groupBy("offense_month", lag_days().alias("lag_days")).agg(F.count(F.lit(1)).alias("offense_rows"))
    tagged = [frame.withColumn("part", F.lit(name)) for name, frame in parts.items()]
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), tagged)


def lag_days() -> Column:
    """Whole days from the offense to its report, clipped to -1 … MAX_LAG_DAYS + 1."""
    seconds = F.unix_timestamp("reported_ts_utc") - F.unix_timestamp("offense_ts_utc")
    return F.least(F.greatest(F.floor(seconds / 86400), F.lit(-1)), F.lit(MAX_LAG_DAYS + 1)).cast("int")


def grid_cell(column: str) -> Column:
    """A coordinate snapped to the centre of its grid cell."""
    return ((F.floor(F.col(column) / GRID_DEGREES) + 0.5) * GRID_DEGREES).alias(column)


def counted_parts(rows: DataFrame, names: Sequence[str]) -> dict[str, DataFrame]:
    """The `counted` and `repeats` parts (and `offenses_per_incident`) of the counted marts `names` need."""
    sets = [list(COUNTED[name]) for name in counted_marts(names)]
    if not sets:
        return {}
    cells = rows.groupBy(*KEYS).agg(
        F.count(F.lit(1)).alias("offense_rows"),
        F.min("offense_date").alias("first_offense_date"), F.max("offense_date").alias("last_offense_date"),
        F.max("source_updated_ts_utc").alias("last_source_update_utc"),
        *[F.sum(F.when(F.col("geo_status") == s, 1).otherwise(0)).alias(f"geo_{s}") for s in GEO_STATUS])
    parts = {"counted": cells.groupingSets(sets, *KEYS).agg(
        F.grouping_id().alias("gid"), F.sum("offense_rows").alias("offense_rows"),
        *[getattr(F, how)(name).alias(name) for name, how in SPANS.items()])}
    hashed = rows.withColumn("incident_hash", F.xxhash64("incident"))
    several = hashed.groupBy("incident_hash").agg(F.count(F.lit(1)).alias("rows")).where(F.col("rows") > 1)
    repeated = hashed.join(F.broadcast(several.select("incident_hash")), "incident_hash", "left_semi")
    per_incident = repeated.groupBy(*KEYS, "incident").agg(F.count(F.lit(1)).alias("rows"))
    # incident is the last grouping column: its bit (always 0) is shifted out to match "counted"
    parts["repeats"] = per_incident.groupingSets([[*keys, "incident"] for keys in sets], *KEYS, "incident") \
        .agg(F.shiftright(F.grouping_id(), 1).alias("gid"), F.sum("rows").alias("rows")) \
        .groupBy("gid", *KEYS).agg(F.sum(F.col("rows") - 1).alias("repeats"))
    if "offenses_per_incident" in names:  # incidents with one row: the summary's total less these
        parts["offenses_per_incident"] = per_incident.groupBy("incident") \
            .agg(F.sum("rows").alias("offense_rows")) \
            .groupBy("offense_rows").agg(F.count(F.lit(1)).alias("incidents"))
    return parts


def compute_marts(incidents: DataFrame, names: Sequence[str] = MARTS) -> dict[str, pa.Table]:
    """The marts `names` (default: all) of the incidents table, as Arrow tables: one Spark job."""
    return split_marts(marts_query(incidents, names).toArrow(), names)


def run_aggregate(master: str, remote: str, warehouse: Warehouse) -> dict[str, Any]:
    """Start Spark, build every mart from the live incidents table and publish them together.

    Marts are small (thousands of rows), so they come back to the driver as Arrow and the
    warehouse writes them: no per-mart Hadoop commit, and the same hand-off works for Spark
    Connect and for BigQuery.
    """
    started = time.perf_counter()
    spark = spark_session(master, remote, warehouse.spark_conf)
    try:
        marts = compute_marts(warehouse.spark_incidents(spark))
    finally:
        spark.stop()
    version = warehouse.save_marts(marts)
    return {"marts": {name: table.num_rows for name, table in sorted(marts.items())},
            "version": version, "spark_seconds": round(time.perf_counter() - started, 2)}


def aggregate(params: RunParameters, backends: Backends) -> dict[str, Any]:
    """The aggregate step: the marts of the run's warehouse, on the Spark the parameters name."""
    return run_aggregate(params.spark_master, params.spark_remote, backends.warehouse)


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
