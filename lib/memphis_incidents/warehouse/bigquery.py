"""The BigQuery warehouse: the embedded warehouse's tables and upsert semantics, on GCP.

`incidents` is partitioned by MONTH on offense_month and clustered by category. An upsert writes
the staged rows (and the row ids to withdraw or keep) as Parquet into the lake bucket, loads them
into staging tables with load jobs (explicit schema, WRITE_TRUNCATE), then plans and applies the
change with one MERGE inside a multi-statement transaction: a reader sees the table before or after
a batch, never half of one, and loading the same batch again changes nothing. Table definitions,
load configurations and SQL come from small pure functions (here and in bigquery_sql.py), so tests can inspect them
and run the same SQL on DuckDB and on a BigQuery emulator; the client is passed in.

Every statement the warehouse sends names its tables in full (project.dataset.table) and sets no
default dataset, so any engine that speaks BigQuery SQL runs it unchanged.
"""
from __future__ import annotations

import io
import re
from datetime import date, datetime, timezone
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

from ..errors import ConfigError, PipelineError
from ..layout import INCIDENTS, QUARANTINE, STAGING_FILE
from ..marts import MARTS
from ..quality import QUARANTINE_SCHEMA
from ..runlog import new_run_id
from ..schema import CANONICAL_SCHEMA, spark_schema
from ..storage import Storage
from . import RowIds, StagedRows, UpsertResult, id_array, in_memory
from .bigquery_sql import PARTITION, ROW_FINGERPRINTS, quarantine_sql, upsert_script, version_sql

STAGED_ROWS = "_staging_incidents"
STAGED_KEYS = "_staging_keys"
STAGED_REJECTED = "_staging_quarantine"
MART_PREFIX = "mart_"
MART_ORDER = "mart_row"  # BigQuery tables have no row order: keep the order Spark gave each mart
CLUSTERING = ["category"]
KEY_SCHEMA = pa.schema([("row_id", pa.string()), ("role", pa.string())])  # role: withdrawn | present
ARROW_CHECKS = (
    (pa.types.is_string, "STRING"), (pa.types.is_large_string, "STRING"), (pa.types.is_integer, "INTEGER"),
    (pa.types.is_floating, "FLOAT"), (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_date, "DATE"),
)


# ---- definitions -------------------------------------------------------------------------------
def bigquery_type(arrow_type: pa.DataType) -> str:
    """The BigQuery column type of an Arrow type; a naive timestamp is a wall-clock DATETIME."""
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP" if arrow_type.tz else "DATETIME"
    for check, name in ARROW_CHECKS:
        if check(arrow_type):
            return name
    raise TypeError(f"no BigQuery column type for Arrow type {arrow_type}")


def bigquery_schema(schema: pa.Schema) -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField(field.name, bigquery_type(field.type)) for field in schema]


def source_label(source: str) -> str:
    """A source name as a BigQuery label value (lower case, digits, - and _)."""
    return re.sub(r"[^a-z0-9_-]", "_", source.lower())[:63]


def incidents_table(table_id: str, source: str) -> bigquery.Table:
    """`incidents`: canonical schema, MONTH partitions on offense_month, clustered by category."""
    table = bigquery.Table(table_id, schema=bigquery_schema(CANONICAL_SCHEMA))
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.MONTH,
                                                        field=PARTITION)
    table.clustering_fields = CLUSTERING
    table.labels = {"source": source_label(source)}
    table.description = "MPD Public Safety Incidents, one row per offense (memphis-incidents)"
    return table


def quarantine_table(table_id: str) -> bigquery.Table:
    """Rejected rows with their reason, clustered by batch so a batch is replaced cheaply."""
    table = bigquery.Table(table_id, schema=bigquery_schema(QUARANTINE_SCHEMA))
    table.clustering_fields = ["batch_id"]
    return table


def load_config(schema: pa.Schema) -> bigquery.LoadJobConfig:
    """A Parquet load that replaces the destination, with the schema given, never detected."""
    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        schema=bigquery_schema(schema),
        autodetect=False,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
    )


def key_table(withdraw_ids: list[str] | None, present_ids: pa.Array | None) -> pa.Table:
    """Row ids to withdraw, and for a full refresh every row id the source still has."""
    withdrawn = pa.array(withdraw_ids or [], pa.string())
    present = pa.array([], pa.string()) if present_ids is None else present_ids.cast(pa.string())
    roles = ["withdrawn"] * len(withdrawn) + ["present"] * len(present)
    return pa.table({"row_id": pa.concat_arrays([withdrawn, present]), "role": pa.array(roles, pa.string())},
                    schema=KEY_SCHEMA)


def spark_read_options(table_id: str, project: str) -> dict[str, str]:
    """spark-bigquery connector options: read the table through the Storage Read API."""
    return {"table": table_id, "parentProject": project}


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


# ---- the warehouse -------------------------------------------------------------------------------
class BigQueryWarehouse:
    """`incidents`, `quarantine` and the `mart_*` tables of one BigQuery dataset (one source)."""

    def __init__(self, client: Any, project: str, dataset: str, lake: Storage, source: str,
                 spark_package: str = "", spark_through_client: bool = False):
        self.client = client
        self.project = project
        self.dataset = dataset
        self.lake = lake
        self.source = source
        self.spark_package = spark_package
        self.spark_through_client = spark_through_client  # see spark_incidents

    def table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    @property
    def spark_conf(self) -> dict[str, str]:
        """The connector package for a Spark that lacks it (Dataproc ships it: leave it empty)."""
        return {"spark.jars.packages": self.spark_package} if self.spark_package else {}

    # ---- reading ---------------------------------------------------------------------------------
    def _execute(self, sql: str, **params: str) -> Any:
        """Run a query or script to completion; `params` are STRING query parameters.

        No default dataset: the warehouse's own SQL names every table in full.
        """
        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter(k, "STRING", v) for k, v in params.items()])
        job = self.client.query(sql, job_config=config)
        job.result()
        return job

    def query(self, sql: str) -> pd.DataFrame:
        """A standard-SQL query as pandas; unqualified names are tables of the pipeline's dataset."""
        config = bigquery.QueryJobConfig(default_dataset=f"{self.project}.{self.dataset}")
        return self.client.query(sql, job_config=config).result().to_arrow().to_pandas()

    def read_incidents(self) -> pa.Table:
        """The whole table as Arrow, in partition then cluster order."""
        try:
            job = self._execute(f"SELECT * FROM `{self.table_id(INCIDENTS)}` "
                                f"ORDER BY {PARTITION}, category, row_id")
        except NotFound:
            return CANONICAL_SCHEMA.empty_table()
        return job.to_arrow().select(CANONICAL_SCHEMA.names).cast(CANONICAL_SCHEMA)

    def content_digest(self) -> str:
        """Row count and an order-free fingerprint of the rows: equal tables give equal digests."""
        try:
            job = self._execute(f"SELECT COUNT(*) AS n, {ROW_FINGERPRINTS} AS x FROM `{self.table_id(INCIDENTS)}` AS t")
        except NotFound:
            return ""
        row = job.to_arrow().to_pylist()[0]
        return f"{row['n']}:{(row['x'] or 0) & (2**64 - 1):016x}"

    def quarantine_counts(self) -> pa.Table:
        """Rejected rows per reason across all batches, each rejection once (the same row rejected
        again by a later batch, a full refresh or the re-run after a crash counts once)."""
        schema = pa.schema([("reason", pa.string()), ("rows", pa.int64())])
        try:
            job = self._execute(f"SELECT reason, COUNT(*) AS `rows` FROM (SELECT DISTINCT row_id, reason, raw_json "
                                f"FROM `{self.table_id(QUARANTINE)}`) GROUP BY reason ORDER BY `rows` DESC, reason")
        except NotFound:
            return schema.empty_table()
        return job.to_arrow().cast(schema)

    def read_mart(self, name: str) -> pd.DataFrame:
        """One mart as pandas, in the order Spark wrote it."""
        try:
            job = self._execute(f"SELECT * EXCEPT ({MART_ORDER}) FROM `{self.table_id(MART_PREFIX + name)}` "
                                f"ORDER BY {MART_ORDER}")
        except NotFound:
            raise PipelineError(f"mart {name} not found in {self.project}.{self.dataset}: "
                                "run the Spark aggregation first") from None
        return job.to_arrow().to_pandas()

    def version_token(self, part: str) -> str:
        """What identifies the current content of `incidents`, `marts` or `quarantine`: per table,
        its row count and an order-free fingerprint of its rows; empty while none exists.

        Read from the rows, not from table metadata, so it moves exactly when the content does
        (a no-op MERGE leaves it) on any engine. `incidents` is fingerprinted by its row_hash
        column (each row's content, row id included), so that query reads one column only.
        """
        wanted = [MART_PREFIX + name for name in MARTS] if part == "marts" else [part]
        present = {table.table_id for table in self.client.list_tables(f"{self.project}.{self.dataset}")}
        names = [name for name in wanted if name in present]
        if not names:
            return ""
        rows = self._execute(version_sql({name: self.table_id(name) for name in names})).to_arrow().to_pylist()
        tokens = {row["name"]: f"{row['n']}.{(row['x'] or 0) & (2**64 - 1):016x}" for row in rows}
        return ",".join(f"{name}:{tokens[name]}" for name in names)

    def spark_incidents(self, spark: Any, months: Sequence[date] | None = None) -> Any:
        """The table as a Spark DataFrame, read by the spark-bigquery connector (Storage Read API);
        always whole (`month_tokens` is None, so the marts are computed from every month).

        With `spark_through_client` (a BigQuery emulator, which the connector cannot reach) the
        table comes through this client as Arrow instead, which suits a small table only.
        """
        if months is not None:
            raise NotImplementedError("the BigQuery warehouse computes the marts from every month")
        table_id = self.table_id(INCIDENTS)
        try:
            self.client.get_table(table_id)
        except NotFound:
            raise PipelineError("the incidents table is empty: run the warehouse load first") from None
        if self.spark_through_client:
            return spark.createDataFrame(self.read_incidents(), schema=spark_schema(CANONICAL_SCHEMA))  # from Arrow
        try:
            return spark.read.format("bigquery").options(**spark_read_options(table_id, self.project)).load()
        except Exception as exc:  # classic Spark fails here, Spark Connect at the first action
            if "DATA_SOURCE_NOT_FOUND" not in str(exc):
                raise
            raise ConfigError(
                "this Spark has no BigQuery connector: set spark_bigquery_package in config/gcp.toml "
                "(local or self-managed Spark) or run the aggregation on Dataproc, which ships it "
                "(docs/gcp.md)") from None

    # ---- writing ---------------------------------------------------------------------------------
    def _stage(self, name: str, table: pa.Table, token: str) -> str:
        """Put an Arrow table into a staging table: Parquet in the lake bucket, then a load job.

        A table without rows needs no upload: an empty table of its schema is created instead.
        """
        table_id = self.table_id(name)
        if table.num_rows == 0:
            self.client.delete_table(table_id, not_found_ok=True)
            self.client.create_table(bigquery.Table(table_id, schema=bigquery_schema(table.schema)))
            return table_id
        key = STAGING_FILE.format(token=token, name=name.strip("_"))
        self.lake.write_bytes(key, parquet_bytes(table))
        self.client.load_table_from_uri(self.lake.uri(key), table_id, job_config=load_config(table.schema)).result()
        self.lake.delete(key)
        return table_id

    def _drop(self, *table_ids: str) -> None:
        for table_id in table_ids:
            self.client.delete_table(table_id, not_found_ok=True)

    def _ensure_incidents(self) -> None:
        """Create `incidents` if needed; refuse a table that holds another source's rows."""
        table = self.client.create_table(incidents_table(self.table_id(INCIDENTS), self.source), exists_ok=True)
        holder = (table.labels or {}).get("source")
        if holder != source_label(self.source):
            raise ConfigError(
                f"{self.table_id(INCIDENTS)} holds source {holder!r}, not {self.source!r}: give each "
                "source its own dataset (dataset in config/gcp.toml or MEMPHIS_GCP_DATASET)")

    def upsert(self, staged: StagedRows, withdraw_ids: list[str] | None = None,
               present_ids: RowIds | None = None) -> UpsertResult:
        """Insert new rows, replace changed ones, drop withdrawn ones; keyed by row id.

        Same contract as LocalWarehouse.upsert; `version` is the id of the MERGE job, or None when
        nothing changed. The staged rows are uploaded as one file, so they are read into memory whole.
        """
        staged = in_memory(staged, CANONICAL_SCHEMA)
        keys = key_table(withdraw_ids, None if present_ids is None else id_array(present_ids))
        if staged.num_rows == 0 and keys.num_rows == 0 and present_ids is None:
            return UpsertResult.nothing()
        self._ensure_incidents()
        token = new_run_id()
        rows = self._stage(STAGED_ROWS, staged, token)
        key_rows = self._stage(STAGED_KEYS, keys, token)
        job = self._execute(upsert_script(self.table_id(INCIDENTS), rows, key_rows, present_ids is not None))
        counts = job.to_arrow().to_pylist()[0]
        self._drop(rows, key_rows)
        changed = counts["inserted"] + counts["updated"] + counts["deleted_at_source"] + counts["withdrawn"]
        return UpsertResult(**counts, unchanged=staged.num_rows - counts["inserted"] - counts["updated"],
                            version=job.job_id if changed else None)

    def write_quarantine(self, batch_id: str, rejected: pa.Table) -> str:
        """Keep a batch's rejected rows (replaced whole if the batch is loaded again)."""
        self.client.create_table(quarantine_table(self.table_id(QUARANTINE)), exists_ok=True)
        staged = self._stage(STAGED_REJECTED, rejected.cast(QUARANTINE_SCHEMA), new_run_id())
        self._execute(quarantine_sql(self.table_id(QUARANTINE), staged), batch_id=batch_id)
        self._drop(staged)
        return self.table_id(QUARANTINE)

    # ---- marts: computed whole every time (no partials kept, so no month is merged) ---------------
    def month_tokens(self) -> None:
        """None: BigQuery's partitions are not tracked here, so every run computes every month."""
        return None

    def marts_basis(self) -> None:
        return None

    def read_partials(self, names: Sequence[str]) -> dict[str, pa.Table]:
        raise NotImplementedError("the BigQuery warehouse keeps no partials: its marts are computed whole")

    def save_marts(self, marts: dict[str, pa.Table], partials: dict[str, pa.Table] | None = None,
                   basis: dict[str, Any] | None = None) -> str:
        """Load every mart into its `mart_<name>` table, replacing it (each load is atomic); the
        partials and basis are not kept (see month_tokens).

        Marts are small, so they go up from memory (a load job from a file, no GCS copy).
        Returns the time they were published.
        """
        for name, table in marts.items():
            ordered = table.append_column(MART_ORDER, pa.array(range(table.num_rows), pa.int64()))
            self.client.load_table_from_file(io.BytesIO(parquet_bytes(ordered)), self.table_id(MART_PREFIX + name),
                                             job_config=load_config(ordered.schema)).result()
        return datetime.now(timezone.utc).isoformat(timespec="seconds")
