"""Stage 3: Spark reads the `incidents` table and computes the marts the report needs.

Counts come in two units, always named: `offense_rows` (one per offense; an incident with three
offenses counts three times) and `incidents` (distinct Crime IDs). An incident with offenses in two
categories counts once in each, so category incident counts do not add up to the total.
The same code runs in local mode, on a cluster, or through Spark Connect (`spark_remote`).

Speed on a laptop (measured in bench/results.md and bench/NOTES.md): the driver JVM starts from a
class-data archive dumped once per install and compiles with C1 only (a short job never repays
C2); the table is read with its schema given; every mart comes from one query (see "marts").
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc
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
        compute_marts(spark.read.schema(spark_schema(CANONICAL_SCHEMA)).parquet(folder))
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
# Every mart comes from one Spark query (one job, one hand-over to the driver): on a laptop each
# query costs about a second of planning, code generation and scheduling whatever its size, so nine
# queries cost more than the data does. The query is a union of a few parts, tagged in `part`:
#   counted   offense rows per group of every counted mart: the rows are first counted per finest
#             group (KEYS, a sixth of the rows), then rolled up by grouping sets, one per mart;
#   repeats   per group, the rows that repeat an incident already counted there, so that
#             incidents = offense rows - repeats exactly. Only incidents with several offense rows
#             can repeat (about a fifth of the rows); they are found by a 64-bit hash of the
#             incident key, where a collision only adds another incident's rows to those counted;
#   hour_weekday, geo_grid, offenses_per_incident   plain counts.
# The driver adds counts and repeats per group (pyarrow) and splits the marts out.
KEYS = ("offense_month", "offense_date", "category", "nibrs_crime_against", "nibrs_group", "precinct")
COUNTED = {  # mart: the keys it counts offense rows and distinct incidents by
    "monthly_category": ("offense_month", "category"),
    "monthly_totals": ("offense_month",),
    "daily_category": ("offense_date", "category", "nibrs_crime_against"),  # for year-to-date and 28-day
    "category_totals": ("category", "nibrs_crime_against", "nibrs_group"),
    "precinct_monthly": ("offense_month", "precinct"),  # precinct UNKNOWN where missing
    "summary": (),  # one row: totals, span and freshness, rows per geo status
}
GEO_STATUSES = ("ok", "missing", "invalid", "zero", "outside_city")
SPANS = {"first_offense_date": "min", "last_offense_date": "max", "last_source_update_utc": "max",
         **{f"geo_{status}": "sum" for status in GEO_STATUSES}}  # summary's columns besides the counts
COLUMNS = {
    **{name: [*keys, "offense_rows", "incidents"] for name, keys in COUNTED.items()},
    "summary": ["offense_rows", "incidents", *SPANS],
    "hour_weekday": ["weekday", "hour", "offense_rows"],  # local hour of day, ISO weekday (1 = Monday)
    "geo_grid": ["latitude", "longitude", "offense_rows"],  # located rows on a ~500 m grid (cell centres)
    "offenses_per_incident": ["offense_rows", "incidents"],  # how many incidents have 1, 2, 3... rows
}
MARTS = tuple(COLUMNS)
ORDER = {
    "monthly_category": ["offense_month", "category"],
    "monthly_totals": ["offense_month"],
    "daily_category": ["offense_date", "category"],
    "category_totals": [("offense_rows", "descending")],
    "precinct_monthly": ["offense_month", "precinct"],
    "hour_weekday": ["weekday", "hour"],
    "geo_grid": ["latitude", "longitude"],
    "offenses_per_incident": ["offense_rows"],
}


def incident_key() -> Column:
    """The incident an offense row belongs to (its own row when the Crime ID is missing)."""
    return F.coalesce(F.col("incident_id"), F.concat(F.lit("row:"), F.col("row_id")))


def grouping_id(keys: Sequence[str]) -> int:
    """Spark's grouping_id() of the grouping set `keys` over KEYS: a 1 bit per key rolled up."""
    return sum(1 << (len(KEYS) - 1 - i) for i, key in enumerate(KEYS) if key not in keys)


def marts_query(incidents: DataFrame, names: Sequence[str] = MARTS) -> DataFrame:
    """The one query whose result `split_marts` turns into the marts `names`."""
    rows = incidents.select(
        incident_key().alias("incident"), *KEYS[:-1], F.coalesce("precinct", F.lit("UNKNOWN")).alias("precinct"),
        "offense_ts_local", "geo_status", "latitude", "longitude", "source_updated_ts_utc")
    sets = [list(COUNTED[name]) for name in counted_marts(names)]
    parts: dict[str, DataFrame] = {}
    if sets:
        cells = rows.groupBy(*KEYS).agg(
            F.count(F.lit(1)).alias("offense_rows"),
            F.min("offense_date").alias("first_offense_date"), F.max("offense_date").alias("last_offense_date"),
            F.max("source_updated_ts_utc").alias("last_source_update_utc"),
            *[F.sum(F.when(F.col("geo_status") == s, 1).otherwise(0)).alias(f"geo_{s}") for s in GEO_STATUSES])
        parts["counted"] = cells.groupingSets(sets, *KEYS).agg(
            F.grouping_id().alias("gid"), F.sum("offense_rows").alias("offense_rows"),
            *[getattr(F, how)(name).alias(name) for name, how in SPANS.items()])
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
    if "hour_weekday" in names:
        weekday = ((F.dayofweek("offense_ts_local") + 5) % 7 + 1).alias("weekday")
        parts["hour_weekday"] = rows.groupBy(weekday, F.hour("offense_ts_local").alias("hour")).agg(
            F.count(F.lit(1)).alias("offense_rows"))
    if "geo_grid" in names:
        snap = lambda c: ((F.floor(F.col(c) / GRID_DEGREES) + 0.5) * GRID_DEGREES).alias(c)  # noqa: E731
        parts["geo_grid"] = rows.where(F.col("geo_status") == "ok") \
            .groupBy(snap("latitude"), snap("longitude")).agg(F.count(F.lit(1)).alias("offense_rows"))
    tagged = [frame.withColumn("part", F.lit(name)) for name, frame in parts.items()]
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), tagged)


def counted_marts(names: Sequence[str]) -> list[str]:
    """The counted marts `names` need (offenses_per_incident needs the summary's total)."""
    needed = set(names) | ({"summary"} if "offenses_per_incident" in names else set())
    return [name for name in COUNTED if name in needed]


def split_marts(result: pa.Table, names: Sequence[str] = MARTS) -> dict[str, pa.Table]:
    """The marts out of the query's result: counts and repeats added up per group, each mart sorted."""
    def part(name: str) -> pa.Table:
        return result.filter(pc.equal(result["part"], name))

    marts = counted_tables(part("counted"), part("repeats"), counted_marts(names))
    for name in ("hour_weekday", "geo_grid"):
        if name in names:
            marts[name] = part(name).select(COLUMNS[name])
    if "offenses_per_incident" in names:
        several = part("offenses_per_incident").select(COLUMNS["offenses_per_incident"])
        in_several = pc.sum(pc.multiply(several["offense_rows"], several["incidents"])).as_py() or 0
        single = marts["summary"]["offense_rows"][0].as_py() - in_several
        ones = pa.Table.from_pylist([{"offense_rows": 1, "incidents": single}] if single else [], several.schema)
        marts["offenses_per_incident"] = pa.concat_tables([ones, several])
    return {name: sort(marts[name], ORDER.get(name, [])) for name in names}


def counted_tables(counted: pa.Table, repeats: pa.Table, names: list[str]) -> dict[str, pa.Table]:
    """The counted marts: offense rows and repeats added up per group, incidents their difference."""
    if not names:
        return {}
    groups = ["gid", *KEYS]
    both = pa.concat_tables([counted.select([*groups, "offense_rows", "repeats", *SPANS]),
                             repeats.select([*groups, "offense_rows", "repeats", *SPANS])])
    totals = both.group_by(groups, use_threads=False).aggregate(
        [("offense_rows", "sum"), ("repeats", "sum"), *SPANS.items()])
    totals = totals.rename_columns([name if name in groups else name.rsplit("_", 1)[0]
                                    for name in totals.column_names])
    totals = totals.append_column("incidents", pc.subtract(totals["offense_rows"],
                                                           pc.coalesce(totals["repeats"], 0)))
    marts = {name: totals.filter(pc.equal(totals["gid"], grouping_id(COUNTED[name]))).select(COLUMNS[name])
             for name in names}
    if "summary" in marts and marts["summary"].num_rows == 0:  # an empty table still has a summary
        marts["summary"] = pa.Table.from_pylist([{"offense_rows": 0, "incidents": 0}], marts["summary"].schema)
    return marts


def sort(table: pa.Table, keys: list[str | tuple[str, str]]) -> pa.Table:
    """A mart in its reading order (names ascending, or (name, order) pairs)."""
    if not keys:
        return table
    return table.sort_by([key if isinstance(key, tuple) else (key, "ascending") for key in keys])


def compute_marts(incidents: DataFrame, names: Sequence[str] = MARTS) -> dict[str, pa.Table]:
    """The marts `names` (default: all) of the incidents table, as Arrow tables: one Spark job."""
    return split_marts(marts_query(incidents, names).toArrow(), names)


def run_aggregate(master: str, remote: str, warehouse: Any) -> dict[str, Any]:
    """Start Spark, build every mart from the live incidents table and publish them together.

    Marts are small (thousands of rows), so they come back to the driver as Arrow and the
    warehouse writes them: no per-mart Hadoop commit, and the same hand-off works for Spark
    Connect and for BigQuery.
    """
    started = time.perf_counter()
    spark = spark_session(master, remote, getattr(warehouse, "spark_conf", None))
    try:
        marts = compute_marts(warehouse.spark_incidents(spark))
    finally:
        spark.stop()
    version = warehouse.save_marts(marts)
    return {"marts": {name: table.num_rows for name, table in sorted(marts.items())},
            "version": str(version), "spark_seconds": round(time.perf_counter() - started, 2)}


if __name__ == "__main__" and sys.argv[1:2] == ["--dump-class-archive"]:
    dump_class_archive(Path(sys.argv[2]))
