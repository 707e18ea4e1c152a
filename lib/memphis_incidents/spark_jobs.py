"""Stage 3: Spark reads the `incidents` table and computes the marts the report needs.

Counts come in two units, always named: `offense_rows` (one per offense; an incident with three
offenses counts three times) and `incidents` (distinct Crime IDs). An incident with offenses in two
categories counts once in each, so category incident counts do not add up to the total.
The same code runs in local mode, on a cluster, or through Spark Connect (`spark_remote`).

Speed on a laptop (measured in bench/results.md and bench/NOTES.md): the driver JVM starts from a
class-data archive dumped once per install and compiles with C1 only (a short job never repays
C2); the table is read with its schema given; distinct incidents are counted as offense rows less
repeats, and repeats only on the rows of incidents with several offense rows, found once for all
marts; each small result is sorted in one partition.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pyspark
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

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
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "1024",  # list month folders here, not in a job
}
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xlog:cds=off", "-Xlog:cds+dynamic=off")
GRID_DEGREES = 0.005  # about 500 m: fine enough for a city hexbin, coarse enough to anonymise
COUNTED_COLUMNS = ("incident", "offense_month", "offense_date", "category", "nibrs_crime_against",
                   "nibrs_group", "precinct")  # what the marts count distinct incidents by
log = logging.getLogger(__name__)


def spark_session(master: str = "local[*]", remote: str = "", extra_conf: dict[str, str] | None = None,
                  app: str = "memphis-incidents") -> SparkSession:
    """A Spark session: Spark Connect when `remote` is set (sc://host:port), else `master`.

    `extra_conf` adds settings a back end needs (for example a connector package on GCP).
    """
    if remote:
        return SparkSession.builder.remote(remote).appName(app).getOrCreate()
    # pyspark marks a process (and so every process it starts) as Connect-only once it has made a
    # Connect session; a local session is what was asked for here.
    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf = {**LAPTOP_CONF, "spark.driver.extraJavaOptions": java_options(ensure_class_archive()),
            **(extra_conf or {})}
    return local_session(master, app, conf)


def local_session(master: str, app: str, conf: dict[str, str]) -> SparkSession:
    """A session on a driver JVM of our own, started with `conf`."""
    builder = SparkSession.builder.master(master).appName(app)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def java_options(archive: Path | None, dump_to: Path | None = None) -> str:
    """Driver JVM flags: quiet logs, fast start, and the class-data archive to map (or to write)."""
    log_config = resources.files(__package__).joinpath("log4j2.properties")
    flags = [f"-Dlog4j.configurationFile=file:{log_config}", *JVM_OPTIONS]
    if archive is not None:
        flags.append(f"-XX:SharedArchiveFile={archive}")
    if dump_to is not None:
        flags.append(f"-XX:ArchiveClassesAtExit={dump_to}")
    return " ".join(flags)


# ---- class-data archive ----------------------------------------------------------------------------
def class_archive_path() -> Path:
    """Where this install keeps the JVM class-data archive: per Spark version and Java binary,
    since an archive only maps into the JVM and class path it was dumped from."""
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else Path(shutil.which("java") or "java")
    java = java.resolve()
    stamp = f"{java}:{java.stat().st_mtime_ns if java.exists() else 0}:{pyspark.__version__}"
    key = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    return Path(sys.prefix) / "share" / "memphis-incidents" / f"spark-{pyspark.__version__}-{key}.jsa"


def ensure_class_archive() -> Path | None:
    """The class-data archive, dumped once per install by a small Spark job in a child process.

    Mapping it instead of reading some 10,000 classes out of 280 jars saves seconds at every start
    (the first start after an install pays the dump once). None if it cannot be made here.
    """
    archive = class_archive_path()
    if archive.exists():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    staged = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
    # The JVM writes the archive as it exits, after the child Python; it shares the child's output
    # pipes, so run() returns only once the JVM has exited and the archive is complete.
    done = subprocess.run([sys.executable, "-m", __name__, "--dump-class-archive", str(staged)],
                          capture_output=True, text=True, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    if done.returncode != 0 or not staged.exists():
        log.warning("no JVM class-data archive (Spark starts slower): %s", done.stderr[-2000:])
        staged.unlink(missing_ok=True)
        return None
    os.replace(staged, archive)
    return archive


def dump_class_archive(target: Path) -> None:
    """Run every mart once on a one-row table, in a JVM that writes the classes it loaded to
    `target` when it exits (with this Python process)."""
    conf = {**LAPTOP_CONF, "spark.driver.extraJavaOptions": java_options(None, dump_to=target)}
    with tempfile.TemporaryDirectory() as folder:
        from .schema import CANONICAL_SCHEMA

        one_row = pa.Table.from_pylist([{}], schema=CANONICAL_SCHEMA)
        pq.write_table(one_row, Path(folder) / "part-0.parquet")
        spark = local_session("local[2]", "memphis-incidents-class-archive", conf)
        frame = spark.read.schema(spark_schema(CANONICAL_SCHEMA)).parquet(folder)
        for mart in build_marts(frame).values():
            mart.toArrow()
        spark.stop()


def spark_schema(schema: pa.Schema) -> T.StructType:
    """The Spark schema of an Arrow schema, to read Parquet without an inference job.

    Timestamps without a zone (local wall clock) are TIMESTAMP_NTZ, as Spark reads them from Parquet.
    """
    types = {pa.string(): T.StringType(), pa.float64(): T.DoubleType(), pa.int64(): T.LongType(),
             pa.date32(): T.DateType(), pa.timestamp("us"): T.TimestampNTZType()}
    return T.StructType([
        T.StructField(f.name, T.TimestampType() if pa.types.is_timestamp(f.type) and f.type.tz else types[f.type])
        for f in schema])


# ---- marts -----------------------------------------------------------------------------------------
def incident_key() -> Column:
    """The incident an offense row belongs to (its own row when the Crime ID is missing)."""
    return F.coalesce(F.col("incident_id"), F.concat(F.lit("row:"), F.col("row_id")))


@dataclass(frozen=True)
class Offenses:
    """The offense rows with their incident key, and apart (cached) the rows of incidents with
    several offense rows: only those can count an incident twice in a group."""

    rows: DataFrame
    repeated: DataFrame

    def with_column(self, name: str, column: Column) -> Offenses:
        return Offenses(self.rows.withColumn(name, column), self.repeated.withColumn(name, column))


def offenses(incidents: DataFrame) -> Offenses:
    """Split the table for exact distinct counts; the one costly step (a count per incident,
    after a shuffle by incident) runs once for all marts."""
    rows = incidents.withColumn("incident", incident_key())
    # Shuffled before counting: a partial count per incident would not make the shuffle any smaller.
    per_incident = rows.repartition("incident").groupBy("incident").agg(F.count(F.lit(1)).alias("rows"))
    several = per_incident.where(F.col("rows") > 1).select("incident")
    repeated = rows.join(F.broadcast(several), "incident", "left_semi").select(*COUNTED_COLUMNS)
    return Offenses(rows, repeated.cache())


def counted(offenses: Offenses, *keys: str) -> DataFrame:
    """Offense rows and distinct incidents per group, exactly: the incidents are the offense rows
    less the rows that repeat an incident already counted in the group, and repeats are counted
    on the few rows of incidents with several offense rows (countDistinct would instead
    aggregate every (group, incident) pair twice around a shuffle, for each mart)."""
    rows = offenses.rows.groupBy(*keys).agg(F.count(F.lit(1)).alias("offense_rows"), F.lit(0).alias("repeats"))
    pairs = offenses.repeated.groupBy(*keys, "incident").agg((F.count(F.lit(1)) - 1).alias("repeats"))
    repeats = pairs.groupBy(*keys).agg(F.lit(0).alias("offense_rows"), F.sum("repeats").alias("repeats"))
    totals = rows.unionByName(repeats).groupBy(*keys).agg(
        F.sum("offense_rows").alias("offense_rows"), F.sum("repeats").alias("repeats"))
    return totals.select(*keys, "offense_rows", (F.col("offense_rows") - F.col("repeats")).alias("incidents"))


def ordered(frame: DataFrame, *columns: str | Column) -> DataFrame:
    """A small result sorted in one partition: no sampling job and no shuffle, as a global orderBy costs."""
    return frame.coalesce(1).sortWithinPartitions(*columns)


def monthly_category(offenses: Offenses) -> DataFrame:
    """The headline mart: offense rows and incidents per offense month and category."""
    return ordered(counted(offenses, "offense_month", "category"), "offense_month", "category")


def monthly_totals(offenses: Offenses) -> DataFrame:
    return ordered(counted(offenses, "offense_month"), "offense_month")


def daily_category(offenses: Offenses) -> DataFrame:
    """Daily counts per category, for year-to-date and 28-day comparisons."""
    return ordered(counted(offenses, "offense_date", "category", "nibrs_crime_against"), "offense_date", "category")


def category_totals(offenses: Offenses) -> DataFrame:
    return ordered(counted(offenses, "category", "nibrs_crime_against", "nibrs_group"), F.desc("offense_rows"))


def precinct_monthly(offenses: Offenses) -> DataFrame:
    known = offenses.with_column("precinct", F.coalesce("precinct", F.lit("UNKNOWN")))
    return ordered(counted(known, "offense_month", "precinct"), "offense_month", "precinct")


def hour_weekday(offenses: Offenses) -> DataFrame:
    """Offense rows by local hour of day and ISO weekday (1 = Monday)."""
    weekday = ((F.dayofweek("offense_ts_local") + 5) % 7 + 1).alias("weekday")
    counts = offenses.rows.groupBy(weekday, F.hour("offense_ts_local").alias("hour")).agg(
        F.count(F.lit(1)).alias("offense_rows"))
    return ordered(counts, "weekday", "hour")


def geo_grid(offenses: Offenses) -> DataFrame:
    """Located offense rows on a ~500 m grid (cell centres), for maps without exact points."""
    snap = lambda c: (F.floor(F.col(c) / GRID_DEGREES) + 0.5) * GRID_DEGREES  # noqa: E731
    located = offenses.rows.where(F.col("geo_status") == "ok")
    return located.groupBy(snap("latitude").alias("latitude"), snap("longitude").alias("longitude")) \
        .agg(F.count(F.lit(1)).alias("offense_rows"))


def summary(offenses: Offenses) -> DataFrame:
    """One row: totals, span and freshness, and rows per geo status."""
    spans = offenses.rows.agg(
        F.min("offense_date").alias("first_offense_date"),
        F.max("offense_date").alias("last_offense_date"),
        F.max("source_updated_ts_utc").alias("last_source_update_utc"),
        *[F.sum(F.when(F.col("geo_status") == s, 1).otherwise(0)).alias(f"geo_{s}")
          for s in ("ok", "missing", "invalid", "zero", "outside_city")],
    )
    return counted(offenses).crossJoin(spans)


def offenses_per_incident(offenses: Offenses) -> DataFrame:
    """How many incidents have 1, 2, 3... offense rows (one row each: all rows less the repeated)."""
    several = offenses.repeated.groupBy("incident").agg(F.count(F.lit(1)).alias("offense_rows")) \
        .groupBy("offense_rows").agg(F.count(F.lit(1)).alias("incidents"))
    every = offenses.rows.agg(F.count(F.lit(1)).alias("rows"))
    repeated = offenses.repeated.agg(F.count(F.lit(1)).alias("repeated"))
    single = every.crossJoin(repeated).select(
        F.lit(1).cast("long").alias("offense_rows"), (F.col("rows") - F.col("repeated")).alias("incidents"))
    return ordered(single.where(F.col("incidents") > 0).unionByName(several), "offense_rows")


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
    """Every mart of the incidents table (one query each; Spark reads only the columns it needs)."""
    split = offenses(incidents)
    return {name: build(split) for name, build in MARTS.items()}


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


if __name__ == "__main__" and sys.argv[1:2] == ["--dump-class-archive"]:
    dump_class_archive(Path(sys.argv[2]))
