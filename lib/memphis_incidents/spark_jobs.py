"""Stage 3: Spark reads the `incidents` table and computes the marts the report needs.

Counts come in two units, always named: `offense_rows` (one per offense; an incident with three
offenses counts three times) and `incidents` (distinct Crime IDs). An incident with offenses in two
categories counts once in each, so category incident counts do not add up to the total.
The same code runs in local mode, on a cluster, or through Spark Connect (`spark_remote`).
"""
from __future__ import annotations

import os
import sys
import time
from importlib import resources
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

LAPTOP_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "2g",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.compression.codec": "zstd",
}
GRID_DEGREES = 0.005  # about 500 m: fine enough for a city hexbin, coarse enough to anonymise


def spark_session(master: str = "local[*]", remote: str = "", extra_conf: dict[str, str] | None = None,
                  app: str = "memphis-incidents") -> SparkSession:
    """A Spark session: Spark Connect when `remote` is set (sc://host:port), else `master`.

    `extra_conf` adds settings a back end needs (for example a connector package on GCP).
    """
    if remote:
        return SparkSession.builder.remote(remote).appName(app).getOrCreate()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log_config = resources.files(__package__).joinpath("log4j2.properties")
    conf = {**LAPTOP_CONF, "spark.driver.extraJavaOptions": f"-Dlog4j.configurationFile=file:{log_config}",
            **(extra_conf or {})}
    builder = SparkSession.builder.master(master).appName(app)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def incident_key() -> Column:
    """The incident an offense row belongs to (its own row when the Crime ID is missing)."""
    return F.coalesce(F.col("incident_id"), F.concat(F.lit("row:"), F.col("row_id")))


def counted(frame: DataFrame, *keys: str | Column) -> DataFrame:
    """Offense rows and distinct incidents per group."""
    return frame.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("offense_rows"),
        F.countDistinct(incident_key()).alias("incidents"),
    )


def monthly_category(incidents: DataFrame) -> DataFrame:
    """The headline mart: offense rows and incidents per offense month and category."""
    return counted(incidents, "offense_month", "category").orderBy("offense_month", "category")


def monthly_totals(incidents: DataFrame) -> DataFrame:
    return counted(incidents, "offense_month").orderBy("offense_month")


def daily_category(incidents: DataFrame) -> DataFrame:
    """Daily counts per category, for year-to-date and 28-day comparisons."""
    return counted(incidents, "offense_date", "category", "nibrs_crime_against").orderBy(
        "offense_date", "category")


def category_totals(incidents: DataFrame) -> DataFrame:
    return counted(incidents, "category", "nibrs_crime_against", "nibrs_group").orderBy(
        F.desc("offense_rows"))


def precinct_monthly(incidents: DataFrame) -> DataFrame:
    return counted(incidents, "offense_month", F.coalesce("precinct", F.lit("UNKNOWN")).alias(
        "precinct")).orderBy("offense_month", "precinct")


def hour_weekday(incidents: DataFrame) -> DataFrame:
    """Offense rows by local hour of day and ISO weekday (1 = Monday)."""
    weekday = ((F.dayofweek("offense_ts_local") + 5) % 7 + 1).alias("weekday")
    return incidents.groupBy(weekday, F.hour("offense_ts_local").alias("hour")).agg(
        F.count(F.lit(1)).alias("offense_rows")).orderBy("weekday", "hour")


def geo_grid(incidents: DataFrame) -> DataFrame:
    """Located offense rows on a ~500 m grid (cell centres), for maps without exact points."""
    snap = lambda c: (F.floor(F.col(c) / GRID_DEGREES) + 0.5) * GRID_DEGREES  # noqa: E731
    located = incidents.where(F.col("geo_status") == "ok")
    return located.groupBy(snap("latitude").alias("latitude"), snap("longitude").alias("longitude")) \
        .agg(F.count(F.lit(1)).alias("offense_rows"))


def summary(incidents: DataFrame) -> DataFrame:
    """One row: totals, span and freshness, and rows per geo status."""
    geo = {s: F.sum(F.when(F.col("geo_status") == s, 1).otherwise(0)).alias(f"geo_{s}")
           for s in ("ok", "missing", "invalid", "zero", "outside_city")}
    return incidents.agg(
        F.count(F.lit(1)).alias("offense_rows"),
        F.countDistinct(incident_key()).alias("incidents"),
        F.min("offense_date").alias("first_offense_date"),
        F.max("offense_date").alias("last_offense_date"),
        F.max("source_updated_ts_utc").alias("last_source_update_utc"),
        *geo.values(),
    )


def offenses_per_incident(incidents: DataFrame) -> DataFrame:
    """How many incidents have 1, 2, 3... offense rows."""
    per = incidents.groupBy(incident_key().alias("incident")).agg(F.count(F.lit(1)).alias("offense_rows"))
    return per.groupBy("offense_rows").agg(F.count(F.lit(1)).alias("incidents")).orderBy("offense_rows")


MARTS = {
    "monthly_category": monthly_category,
    "monthly_totals": monthly_totals,
    "daily_category": daily_category,
    "category_totals": category_totals,
    "precinct_monthly": precinct_monthly,
    "hour_weekday": hour_weekday,
    "geo_grid": geo_grid,
    "summary": summary,
    "offenses_per_incident": offenses_per_incident,
}


def build_marts(incidents: DataFrame) -> dict[str, DataFrame]:
    """Every mart, computed from one (cached) read of the incidents table."""
    cached = incidents.cache()
    return {name: build(cached) for name, build in MARTS.items()}


def run_aggregate(master: str, remote: str, warehouse: Any) -> dict[str, Any]:
    """Start Spark, build every mart from the live incidents table and publish them together.

    Marts are small (thousands of rows), so they come back to the driver as Arrow and the
    warehouse writes them: no per-mart Hadoop commit, and the same hand-off works for Spark
    Connect and for BigQuery.
    """
    started = time.perf_counter()
    spark = spark_session(master, remote, getattr(warehouse, "spark_conf", None))
    try:
        marts = {name: frame.toArrow() for name, frame in build_marts(warehouse.spark_incidents(spark)).items()}
    finally:
        spark.stop()
    version = warehouse.save_marts(marts)
    return {"marts": {name: table.num_rows for name, table in sorted(marts.items())},
            "version": str(version), "spark_seconds": round(time.perf_counter() - started, 2)}
