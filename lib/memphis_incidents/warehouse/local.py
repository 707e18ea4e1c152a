"""The embedded warehouse: versioned Hive-partitioned Parquet, queried with DuckDB.

`incidents/vNNNNNN/offense_month=YYYY-MM-01/part-0.parquet` holds one complete version of the table,
partitioned by offense month (Memphis local time) and sorted by category then row id inside each
partition. `incidents/current` is a symlink to the live version. An upsert writes a new version
(untouched partitions are hard links, touched ones are rewritten) and then swaps the symlink with
one atomic rename, so a crash at any instant leaves the previous version whole and readable, and
Spark, DuckDB or pandas all read the same plain Parquet. Marts and quarantine work the same way.
"""
from __future__ import annotations

import io
import os
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import PipelineError
from ..duckdb_session import bounded_connection
from ..layout import INCIDENTS, MARTS, QUARANTINE, QUARANTINE_FILE, SCRATCH
from ..layout import PARTITION as PARTITION_FOLDER
from ..layout import PARTITION_COLUMN as PARTITION
from ..schema import CANONICAL_SCHEMA, spark_schema
from ..storage import write_atomically
from ..quality import QUARANTINE_SCHEMA
from . import RowIds, StagedRows, UpsertResult
from .local_marts import LocalMarts, month_tokens
from .versions import VersionedDir

DATA_COLUMNS = [n for n in CANONICAL_SCHEMA.names if n != PARTITION]
KEY_COLUMNS = ("row_id", "row_hash", "source_updated_ts_utc", PARTITION)  # what change detection reads
GROUP_ROWS = 256 * 1024  # rows of touched months an upsert merges with one query (a few months at most)
# Low-cardinality labels are dictionary-encoded; ids, addresses, times and coordinates are not (their
# dictionaries would hold nearly every value: bigger files, slower reads in Spark and DuckDB).
DICTIONARY_COLUMNS = ["category", "description", "ucr_code", "agency_crime_type", "nibrs_crime_against",
                      "nibrs_group", "precinct", "city", "zip", "geo_status", "batch_id"]


class LocalWarehouse(LocalMarts):
    """The `incidents` table, the quarantine and the marts under one local folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.incidents_dir = VersionedDir(self.root / INCIDENTS)
        self.marts_dir = VersionedDir(self.root / MARTS)

    # ---- reading -----------------------------------------------------------------------------
    def incidents_path(self) -> Path | None:
        """The live version's folder (resolved, so a reader is not moved mid-read)."""
        return self.incidents_dir.current

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with views `incidents`, `quarantine` and one per mart; its
        memory is bounded (a query over a large table spills to the warehouse's scratch folder)."""
        con = bounded_connection(self.root / SCRATCH)
        current = self.incidents_path()
        if current is not None:
            con.execute(f"CREATE VIEW incidents AS SELECT {', '.join(CANONICAL_SCHEMA.names)} "
                        f"FROM read_parquet('{current}/*/*.parquet', hive_partitioning = true)")
        if self._quarantine_files():
            con.execute(f"CREATE VIEW quarantine AS SELECT * FROM "
                        f"read_parquet('{self.root / QUARANTINE}/*/*.parquet', hive_partitioning = false) "
                        "QUALIFY row_number() OVER (PARTITION BY row_id, reason, raw_json ORDER BY batch_id) = 1")
        marts = self.marts_dir.current
        for mart in sorted(marts.iterdir()) if marts else []:
            if mart.name.startswith("_"):  # the partials and basis the next night merges into
                continue
            con.execute(f"CREATE VIEW {mart.name} AS SELECT * FROM read_parquet('{mart}/*.parquet')")
        return con

    def query(self, sql: str) -> pd.DataFrame:
        """A SQL query over the views of `connect()`, as pandas (same call as on BigQuery)."""
        with self.connect() as con:
            return con.sql(sql).df()

    def read_incidents(self) -> pa.Table:
        """The whole live table as Arrow, in partition then cluster order."""
        current = self.incidents_path()
        if current is None:
            return CANONICAL_SCHEMA.empty_table()
        with self.connect() as con:
            return con.sql("SELECT * FROM incidents ORDER BY offense_month, category, row_id") \
                .to_arrow_table().cast(CANONICAL_SCHEMA)

    # ---- writing -----------------------------------------------------------------------------
    def upsert(self, staged: StagedRows, withdraw_ids: list[str] | None = None,
               present_ids: RowIds | None = None) -> UpsertResult:
        """Insert new rows, replace changed ones, drop withdrawn ones; keyed by row id.

        `staged` holds canonical rows with unique row ids. `withdraw_ids` are rows whose newest
        version was rejected; `present_ids`, given for a full refresh, is every row id the source
        still has: rows missing from it were deleted at the source and leave the table too.
        Unchanged rows (same content hash) and stale ones (older source update time than the
        stored row) are kept as they are, so loading the same batch again changes nothing and
        writes nothing. DuckDB plans the change with bounded memory (spilling to disk), and each
        touched month is then read, merged and written on its own: memory holds a few months.
        """
        with bounded_connection(self.root / SCRATCH) as con:
            current = self.incidents_path()
            self._plan(con, staged, current, withdraw_ids or [], present_ids)
            result = self._counts(con)
            if result.inserted + result.updated + result.deleted_at_source + result.withdrawn == 0:
                return result
            touched = [r[0] for r in con.execute(f"""
                SELECT {PARTITION} FROM changed UNION SELECT old_{PARTITION} FROM changed
                UNION SELECT {PARTITION} FROM gone ORDER BY 1""").fetchall() if r[0] is not None]
            version = self._write_version(con, current, touched, every_staged_row=result.unchanged == 0)
        result.partitions_rewritten = len(touched)
        result.version = version.name
        return result

    @staticmethod
    def _plan(con: duckdb.DuckDBPyConnection, staged: StagedRows, current: Path | None,
              withdraw_ids: list[str], present_ids: RowIds | None) -> None:
        """Tables `changed` (staged rows new or newer, with the month they were in) and `gone` (stored
        rows withdrawn or deleted at the source) on `con`, and the views they are made from."""
        con.register("staged_input", staged)
        con.execute(f"CREATE TEMP VIEW staged AS SELECT {', '.join(CANONICAL_SCHEMA.names)} FROM staged_input")
        con.register("withdrawn_ids", pa.table({"row_id": pa.array(withdraw_ids, pa.string())}))
        source = (f"read_parquet('{current}/*/*.parquet', hive_partitioning = true)"
                  if current else "staged WHERE false")
        con.execute(f"CREATE TEMP VIEW existing AS SELECT {', '.join(KEY_COLUMNS)} FROM {source}")
        con.execute(f"""CREATE TEMP TABLE changed AS
            SELECT s.row_id, s.{PARTITION}, e.{PARTITION} AS old_{PARTITION}, e.row_id IS NOT NULL AS was_present
            FROM staged s LEFT JOIN existing e USING (row_id)
            WHERE e.row_id IS NULL
               OR (e.row_hash <> s.row_hash
                   AND coalesce(s.source_updated_ts_utc >= e.source_updated_ts_utc, true))
            ORDER BY s.{PARTITION}""")
        gone = "SELECT row_id FROM withdrawn_ids"
        if present_ids is not None:
            con.register("present_input", pa.table({"row_id": present_ids.cast(pa.string())})
                         if isinstance(present_ids, pa.Array)
                         else present_ids)
            gone += " UNION SELECT row_id FROM existing ANTI JOIN present_input USING (row_id)"
        con.execute(f"CREATE TEMP TABLE gone AS SELECT DISTINCT e.row_id, e.{PARTITION}, "
                    f"w.row_id IS NOT NULL AS withdrawn "
                    f"FROM existing e JOIN ({gone}) g USING (row_id) "
                    f"LEFT JOIN withdrawn_ids w USING (row_id) "
                    f"ANTI JOIN changed c USING (row_id)")

    @staticmethod
    def _counts(con: duckdb.DuckDBPyConnection) -> UpsertResult:
        staged_rows, inserted, updated = one_row(
            con, "SELECT (SELECT count(*) FROM staged), count(*) FILTER (NOT was_present), "
                 "count(*) FILTER (was_present) FROM changed")
        deleted, withdrawn = one_row(
            con, "SELECT count(*) FILTER (NOT withdrawn), count(*) FILTER (withdrawn) FROM gone")
        return UpsertResult(inserted=inserted, updated=updated, unchanged=staged_rows - inserted - updated,
                            deleted_at_source=deleted, withdrawn=withdrawn)

    def _write_version(self, con: duckdb.DuckDBPyConnection, current: Path | None, touched: list,
                       every_staged_row: bool) -> Path:
        """Stage a new version: link untouched partitions, write touched ones, then publish.

        Touched months are merged a group at a time (about GROUP_ROWS rows: their stored rows that
        stay, and their staged rows that changed), and each month is written while DuckDB reads the
        next group (one writer per core; pyarrow releases the GIL): memory holds a group or two,
        never the whole table.
        """
        staged = self.incidents_dir.staging()
        touched_names = {partition_name(month) for month in touched}
        for part in sorted(current.iterdir()) if current else []:
            if part.name not in touched_names:
                _link_tree(part, staged / part.name)
        files = {month: partition_files(current, month) for month in touched}
        writers = os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=writers) as pool:
            pending: deque[Future] = deque()
            for group in month_groups(con, files):
                merged = merged_rows(con, group, [f for m in group for f in files[m]], every_staged_row)
                for month in month_slices(merged):
                    pending.append(pool.submit(write_partition, staged, month))
                while len(pending) > writers:  # months wait in memory only while a writer is busy
                    pending.popleft().result()
            for done in pending:
                done.result()
        return self.incidents_dir.publish(staged)

    @property
    def spark_conf(self) -> dict[str, str]:
        """Spark reads plain Parquet: no extra settings."""
        return {}

    def spark_incidents(self, spark: Any, months: Sequence[date] | None = None) -> Any:
        """The live table, or its `months` partitions only, as a Spark DataFrame: plain Parquet read
        with the canonical schema given (no schema-inference job), the partition column taken from
        the folder names."""
        current = self.incidents_path()
        if current is None:
            raise PipelineError("the incidents table is empty: run the warehouse load first")
        reader = spark.read.schema(spark_schema(CANONICAL_SCHEMA))
        if months is None:
            return reader.parquet(str(current))
        folders = [str(current / name) for name in map(partition_name, months) if (current / name).is_dir()]
        if not folders:  # every month asked for lost all its rows
            return reader.parquet(str(current)).where("false")
        return reader.option("basePath", str(current)).parquet(*folders)

    def month_tokens(self) -> dict[str, str]:
        """What identifies each month partition of the live table now (see local_marts.month_tokens)."""
        return month_tokens(self.incidents_path())

    def write_quarantine(self, batch_id: str, rejected: pa.Table) -> str:
        """Keep a batch's rejected rows (replaced whole if the batch is loaded again; none, no file)."""
        target = self.root / QUARANTINE_FILE.format(batch_id=batch_id)
        if rejected.num_rows == 0:
            target.unlink(missing_ok=True)
            return str(target)
        buffer = io.BytesIO()
        pq.write_table(rejected.cast(QUARANTINE_SCHEMA), buffer, compression="zstd")
        return str(write_atomically(target, buffer.getvalue()))

    def quarantine_counts(self) -> pa.Table:
        """Rejected rows per reason across all batches, each rejection once (the same row rejected
        again by a later batch, a full refresh or the re-run after a crash counts once)."""
        if not self._quarantine_files():
            return pa.table({"reason": pa.array([], pa.string()), "rows": pa.array([], pa.int64())})
        with self.connect() as con:
            return con.sql("SELECT reason, count(*) AS rows FROM quarantine "
                           "GROUP BY reason ORDER BY rows DESC, reason").to_arrow_table()

    def _quarantine_files(self) -> list[Path]:
        return sorted((self.root / QUARANTINE).glob("*/*.parquet"))

    def content_digest(self) -> str:
        """A digest of the table's content (not its files): equal tables give equal digests."""
        if self.incidents_path() is None:
            return ""
        with self.connect() as con:
            digest: str = one_row(con, "SELECT md5(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY row_id)) "
                                       "FROM incidents t")[0]
            return digest

    def version_token(self, part: str) -> str:
        """What identifies the current state of `incidents`, `marts` or `quarantine` (changes when it does)."""
        if part == "quarantine":
            files = self._quarantine_files()
            return ",".join(f"{f.parent.name}:{f.stat().st_mtime_ns}" for f in files)
        current = (self.incidents_dir if part == "incidents" else self.marts_dir).current
        return current.name if current else ""


def one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The one row an aggregate query returns."""
    row = con.execute(sql).fetchone()
    if row is None:
        raise PipelineError(f"DuckDB returned no row for an aggregate query: {sql}")
    return row


def partition_name(month: date) -> str:
    return PARTITION_FOLDER.format(month=month.isoformat())


def month_slices(rows: pa.Table) -> list[pa.Table]:
    """The rows of each month, as zero-copy slices of a table sorted by month."""
    months = rows.column(PARTITION).to_numpy()
    starts = np.flatnonzero(np.r_[True, months[1:] != months[:-1]]) if len(months) else np.array([], int)
    ends = np.r_[starts[1:], len(months)]
    return [rows.slice(start, end - start) for start, end in zip(starts, ends)]


def partition_files(current: Path | None, month: date) -> list[str]:
    """The live files of one month partition (the rows an upsert may keep)."""
    return sorted(str(f) for f in (current / partition_name(month)).glob("*.parquet")) if current else []


def month_groups(con: duckdb.DuckDBPyConnection, files: dict[date, list[str]]) -> list[list[date]]:
    """Touched months in order, grouped so that each group holds about GROUP_ROWS rows at most
    (stored rows as the Parquet footers count them, plus the rows changing into the month)."""
    changing = dict(con.execute(f"SELECT {PARTITION}, count(*) FROM changed GROUP BY 1").fetchall())
    groups: list[list[date]] = [[]]
    size = 0
    for month in sorted(files):
        rows = changing.get(month, 0) + sum(pq.ParquetFile(f).metadata.num_rows for f in files[month])
        if groups[-1] and size + rows > GROUP_ROWS:
            groups.append([])
            size = 0
        groups[-1].append(month)
        size += rows
    return [group for group in groups if group]


def merged_rows(con: duckdb.DuckDBPyConnection, months: list[date], files: list[str],
                every_staged_row: bool) -> pa.Table:
    """Touched months after the upsert, in partition then cluster order: their stored rows that
    neither changed nor went, and the staged rows that changed into them (`every_staged_row`: all
    did, as in a first load, so none is looked up). Each month filter is also a range, so DuckDB
    skips the row groups of `changed` (sorted by month) and of the staged files outside it."""
    within = {column: f"{column} BETWEEN $first AND $last AND {column} IN $months"
              for column in (PARTITION, f"old_{PARTITION}", f"s.{PARTITION}")}
    kept = (f"""SELECT {', '.join(CANONICAL_SCHEMA.names)} FROM read_parquet($files, hive_partitioning = true)
                ANTI JOIN (SELECT row_id FROM changed WHERE {within[f"old_{PARTITION}"]}) USING (row_id)
                ANTI JOIN (SELECT row_id FROM gone WHERE {within[PARTITION]}) USING (row_id)
            UNION ALL """ if files else "")
    changed = "" if every_staged_row else \
        f"SEMI JOIN (SELECT row_id FROM changed WHERE {within[PARTITION]}) USING (row_id)"
    sql = f"""SELECT * FROM ({kept}SELECT s.* FROM staged s {changed}
                WHERE {within[f"s.{PARTITION}"]})
              ORDER BY {PARTITION}, category, row_id"""
    params: dict[str, Any] = {"months": months, "first": months[0], "last": months[-1],
                              **({"files": files} if files else {})}
    return con.sql(sql, params=params).to_arrow_table().cast(CANONICAL_SCHEMA)


def write_partition(version: Path, rows: pa.Table) -> None:
    """One month's rows as `offense_month=YYYY-MM-01/part-0.parquet` (the month lives in the path)."""
    target = version / partition_name(rows.column(PARTITION)[0].as_py())
    target.mkdir()
    pq.write_table(rows.select(DATA_COLUMNS), target / "part-0.parquet", compression="zstd",
                   use_dictionary=DICTIONARY_COLUMNS)


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link a partition folder into a new version (copy where links are not supported)."""
    target.mkdir()
    for file in source.iterdir():
        try:
            os.link(file, target / file.name)
        except OSError:
            shutil.copy2(file, target / file.name)
