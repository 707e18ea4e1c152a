"""The BigQuery warehouse: the exact tables, load jobs and SQL it sends, and what they do.

Every test that uses `client` runs twice: against `DuckDBBigQuery`, a stand-in that records every
call and carries it out on DuckDB (load jobs read the Parquet from the GCS emulator, SQL is parsed
with sqlglot's BigQuery dialect and run as DuckDB SQL), and against the BigQuery emulator
(tests/bq_emulator.py) through the real google-cloud-bigquery client, which records the same calls.
The same batches then go through the embedded warehouse, and both profiles must end with the same
table and the same counts. The SQL-shape tests check what no emulator judges (statement shapes,
partition and cluster definitions, labels).
"""
from __future__ import annotations

import copy
import hashlib
import io
from dataclasses import replace
from datetime import date

import duckdb
import pandas_gbq
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from google.api_core.exceptions import Conflict, NotFound
from google.cloud import bigquery
from sqlglot import exp

from memphis_incidents.config import RunParameters
from memphis_incidents.errors import ConfigError, PipelineError
from memphis_incidents.gcp import GCPSettings, GCSStorage, gcp_backends
from memphis_incidents.ingest import run_ingest
from memphis_incidents.load import run_load
from memphis_incidents.profiles import backends_for
from memphis_incidents.quality import QUARANTINE_SCHEMA
from memphis_incidents.schema import CANONICAL_SCHEMA, canonical_incidents, to_arrow
from memphis_incidents.sources.demo_world import publication_time
from memphis_incidents.warehouse import bigquery as bq
from memphis_incidents.warehouse import bigquery_sql
from memphis_incidents.warehouse.local import LocalWarehouse
from tests.bq_emulator import bq_client, bq_emulator  # noqa: F401 - fixtures
from tests.conftest import epoch_ms
from tests.gcs_emulator import BUCKET, gcs_bucket, gcs_server  # noqa: F401 - fixtures

PROJECT = "memphis-test"
DATASET = "memphis_incidents"
DUCKDB_TYPES = {"STRING": "VARCHAR", "INTEGER": "BIGINT", "FLOAT": "DOUBLE", "BOOLEAN": "BOOLEAN",
                "DATE": "DATE", "TIMESTAMP": "TIMESTAMPTZ", "DATETIME": "TIMESTAMP"}
ARROW_TYPES = {"STRING": pa.string(), "INTEGER": pa.int64(), "FLOAT": pa.float64(), "BOOLEAN": pa.bool_(),
               "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us", tz="UTC"), "DATETIME": pa.timestamp("us")}


# ---- the fake client -----------------------------------------------------------------------------
class FakeJob:
    """What the warehouse reads from a job: its id, its completion and its result rows."""

    def __init__(self, job_id: str, rows: pa.Table | None = None):
        self.job_id = job_id
        self.rows = rows if rows is not None else pa.table({})

    def result(self) -> "FakeJob":
        return self

    def to_arrow(self, **_) -> pa.Table:
        return self.rows


def quoted(table_id: str) -> str:
    return ".".join(f'"{part}"' for part in str(table_id).split("."))


def farm_fingerprint(text: str) -> int:
    """A stand-in for BigQuery's FARM_FINGERPRINT: a stable signed 64-bit hash."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


class DuckDBBigQuery:
    """Records every call a google.cloud.bigquery.Client would get, and carries it out on DuckDB."""

    def __init__(self, bucket):
        self.bucket = bucket
        self.calls: list[tuple] = []
        self.tables: dict[str, bigquery.Table] = {}
        self.db = duckdb.connect()
        self.db.execute(f"SET TimeZone = 'UTC'; ATTACH ':memory:' AS \"{PROJECT}\"; "
                        f"CREATE SCHEMA \"{PROJECT}\".{DATASET}")
        self.db.create_function("farm_fingerprint", farm_fingerprint, ["VARCHAR"], "BIGINT")

    def _job(self, rows: pa.Table | None = None) -> FakeJob:
        return FakeJob(f"job-{len(self.calls)}", rows)

    def create_table(self, table: bigquery.Table, exists_ok: bool = False) -> bigquery.Table:
        self.calls.append(("create_table", copy.deepcopy(table)))
        key = str(table.reference)
        if key in self.tables:
            if not exists_ok:
                raise Conflict(f"Already Exists: Table {key}")
            return self.tables[key]
        columns = ", ".join(f'"{f.name}" {DUCKDB_TYPES[f.field_type]}' for f in table.schema)
        self.db.execute(f"CREATE TABLE {quoted(key)} ({columns})")
        self.tables[key] = copy.deepcopy(table)
        return self.tables[key]

    def get_table(self, table_id: str) -> bigquery.Table:
        if table_id not in self.tables:
            raise NotFound(f"Not found: Table {table_id}")
        return self.tables[table_id]

    def delete_table(self, table_id: str, not_found_ok: bool = False) -> None:
        self.calls.append(("delete_table", table_id))
        if self.tables.pop(table_id, None) is None:
            if not not_found_ok:
                raise NotFound(f"Not found: Table {table_id}")
            return
        self.db.execute(f"DROP TABLE {quoted(table_id)}")

    def load_table_from_uri(self, uri: str, destination: str, job_config: bigquery.LoadJobConfig) -> FakeJob:
        self.calls.append(("load_table_from_uri", uri, destination, job_config.to_api_repr()))
        name = uri.removeprefix(f"gs://{self.bucket.name}/")
        return self._load(self.bucket.blob(name).download_as_bytes(), destination, job_config)

    def load_table_from_file(self, file_obj, destination: str, job_config: bigquery.LoadJobConfig) -> FakeJob:
        self.calls.append(("load_table_from_file", destination, job_config.to_api_repr()))
        return self._load(file_obj.read(), destination, job_config)

    def _load(self, data: bytes, destination: str, config: bigquery.LoadJobConfig) -> FakeJob:
        """A Parquet load with an explicit schema: names must match, values must convert."""
        assert config.source_format == bigquery.SourceFormat.PARQUET and not config.autodetect
        assert config.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
        table = pq.read_table(io.BytesIO(data))
        assert table.column_names == [f.name for f in config.schema]
        table = table.cast(pa.schema([(f.name, ARROW_TYPES[f.field_type]) for f in config.schema]))
        self.db.register("loaded", table)
        self.db.execute(f"CREATE OR REPLACE TABLE {quoted(destination)} AS SELECT * FROM loaded")
        self.db.unregister("loaded")
        self.tables[destination] = bigquery.Table(destination, schema=config.schema)
        return self._job()

    def query(self, sql: str, job_config: bigquery.QueryJobConfig | None = None) -> FakeJob:
        """Parse as BigQuery SQL, run each statement as DuckDB SQL; the last SELECT is the result."""
        self.calls.append(("query", sql, job_config))
        params = {p.name: p.value for p in (job_config.query_parameters if job_config else [])}
        cursor = self.db.cursor()  # a fresh session: temp tables end with the script, as in BigQuery
        rows = None
        try:
            for statement in sqlglot.parse(sql, read="bigquery"):
                text = statement.sql("duckdb")
                used = {k: v for k, v in params.items() if f"${k}" in text}
                if isinstance(statement, (exp.Select, exp.Union)):
                    rows = cursor.sql(text, params=used).to_arrow_table()
                else:
                    cursor.execute(text, used)
        except duckdb.CatalogException as exc:
            raise NotFound(str(exc)) from None
        return self._job(rows)

    def queries(self) -> list[str]:
        return [call[1] for call in self.calls if call[0] == "query"]

    def list_tables(self, dataset: str) -> list[bigquery.TableReference]:
        return [bigquery.TableReference.from_string(key) for key in self.tables
                if key.startswith(f"{dataset}.")]


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def lake(gcs_bucket) -> GCSStorage:
    return GCSStorage(gcs_bucket, "lake/memphis-arcgis")


@pytest.fixture(params=["duckdb", "emulator"])
def client(request, gcs_bucket):
    """The DuckDB stand-in, or the BigQuery emulator on an empty dataset: same calls recorded."""
    return DuckDBBigQuery(gcs_bucket) if request.param == "duckdb" else request.getfixturevalue("bq_client")


@pytest.fixture
def warehouse(client, lake) -> bq.BigQueryWarehouse:
    return bq.BigQueryWarehouse(client, PROJECT, DATASET, lake, "memphis-arcgis")


@pytest.fixture
def local(tmp_path) -> LocalWarehouse:
    return LocalWarehouse(tmp_path / "warehouse")


def staged(rows, preset, batch="b1") -> pa.Table:
    return to_arrow(canonical_incidents(rows, preset, batch))


def table_id(name: str) -> str:
    return f"{PROJECT}.{DATASET}.{name}"


# ---- definitions ---------------------------------------------------------------------------------
def test_incidents_table_is_month_partitioned_on_offense_month_and_clustered_by_category():
    table = bq.incidents_table(table_id("incidents"), "memphis-arcgis")
    assert [(f.name, f.field_type) for f in table.schema] == [
        ("row_id", "STRING"), ("incident_id", "STRING"), ("offense_ts_utc", "TIMESTAMP"),
        ("offense_ts_local", "DATETIME"), ("offense_date", "DATE"), ("offense_month", "DATE"),
        ("reported_ts_utc", "TIMESTAMP"), ("category", "STRING"), ("description", "STRING"),
        ("ucr_code", "STRING"), ("agency_crime_type", "STRING"), ("nibrs_crime_against", "STRING"),
        ("nibrs_group", "STRING"), ("precinct", "STRING"), ("address", "STRING"), ("city", "STRING"),
        ("zip", "STRING"), ("latitude", "FLOAT"), ("longitude", "FLOAT"), ("geo_status", "STRING"),
        ("source_updated_ts_utc", "TIMESTAMP"), ("batch_id", "STRING"), ("row_hash", "INTEGER")]
    assert table.to_api_repr()["timePartitioning"] == {"type": "MONTH", "field": "offense_month"}
    assert table.clustering_fields == ["category"]
    assert table.labels == {"source": "memphis-arcgis"}


def test_a_type_without_a_bigquery_column_type_is_refused():
    with pytest.raises(TypeError, match="list"):
        bq.bigquery_type(pa.list_(pa.int64()))


def test_upsert_stages_through_the_lake_with_exact_load_jobs_and_drops_staging(
        warehouse, client, lake, arcgis_rows, arcgis_preset):
    warehouse.upsert(staged(arcgis_rows, arcgis_preset), withdraw_ids=["9"])
    loads = [call for call in client.calls if call[0] == "load_table_from_uri"]
    assert [(uri.rsplit("/", 1)[1], dest) for _, uri, dest, _ in loads] == [
        ("staging_incidents.parquet", table_id("_staging_incidents")),
        ("staging_keys.parquet", table_id("_staging_keys"))]
    assert all(uri.startswith(f"gs://{BUCKET}/lake/memphis-arcgis/staging/") for _, uri, _, _ in loads)
    assert loads[0][3] == {"load": {
        "sourceFormat": "PARQUET", "autodetect": False, "writeDisposition": "WRITE_TRUNCATE",
        "createDisposition": "CREATE_IF_NEEDED",
        "schema": {"fields": [f.to_api_repr() for f in bq.bigquery_schema(CANONICAL_SCHEMA)]}}}
    assert loads[1][3]["load"]["schema"] == {"fields": [
        {"name": "row_id", "type": "STRING", "mode": "NULLABLE"},
        {"name": "role", "type": "STRING", "mode": "NULLABLE"}]}
    assert client.queries() == [bigquery_sql.upsert_script(table_id("incidents"), table_id("_staging_incidents"),
                                                 table_id("_staging_keys"), full_refresh=False)]
    assert set(client.tables) == {table_id("incidents")}
    assert lake.list("staging") == []


def test_the_upsert_script_is_bigquery_sql_with_one_merge_in_a_transaction():
    script = bigquery_sql.upsert_script(table_id("incidents"), table_id("_staging_incidents"),
                              table_id("_staging_keys"), full_refresh=True)
    statements = sqlglot.parse(script, read="bigquery")
    assert [type(s).__name__ for s in statements] == ["Transaction", "Create", "Merge", "Commit", "Select"]
    merge = statements[2]
    assert merge.this.sql("bigquery") == f"`{table_id('incidents')}` AS t"
    assert merge.args["on"].sql("bigquery") == "t.row_id = u.plan_row_id"
    whens = [w.sql("bigquery") for w in merge.args["whens"].expressions]
    assert whens[0] == "WHEN MATCHED AND u.action IN ('withdrawn', 'deleted_at_source') THEN DELETE"
    updated = {eq.this.name for eq in merge.args["whens"].expressions[1].args["then"].expressions}
    assert updated == set(CANONICAL_SCHEMA.names) - {"row_id"}
    inserted = merge.args["whens"].expressions[2].args["then"].this.expressions
    assert [c.name for c in inserted] == CANONICAL_SCHEMA.names
    assert "NOT COALESCE(k.present, FALSE)" in statements[1].sql("bigquery")


def test_an_incremental_batch_never_deletes_rows_absent_from_it():
    script = bigquery_sql.upsert_script(table_id("incidents"), "s", "k", full_refresh=False)
    create = sqlglot.parse(script, read="bigquery")[1].sql("bigquery")
    assert "k.present" not in create and "OR FALSE" in create


def test_the_quarantine_merge_replaces_one_batch_by_parameter():
    statements = sqlglot.parse(bigquery_sql.quarantine_sql(table_id("quarantine"), "s"), read="bigquery")
    assert [type(s).__name__ for s in statements] == ["Merge"]
    whens = [w.sql("bigquery") for w in statements[0].args["whens"].expressions]
    assert whens[0] == "WHEN NOT MATCHED BY SOURCE AND t.batch_id = @batch_id THEN DELETE"
    assert whens[1].startswith("WHEN NOT MATCHED THEN INSERT")


# ---- same table as the embedded profile ------------------------------------------------------------
def apply_both(local, warehouse, table, **kwargs) -> dict:
    """Upsert into both warehouses; their results must agree (all but the version label)."""
    ours, theirs = warehouse.upsert(table, **kwargs), local.upsert(table, **kwargs)
    assert replace(ours, version=None) == replace(theirs, version=None)
    assert warehouse.read_incidents().equals(local.read_incidents())
    return ours.as_dict()


def test_both_profiles_give_the_same_table_for_the_same_batches(local, warehouse, arcgis_rows, arcgis_preset):
    first = apply_both(local, warehouse, staged(arcgis_rows, arcgis_preset, "b1"))
    assert (first["inserted"], first["partitions_rewritten"]) == (3, 1)
    again = apply_both(local, warehouse, staged(arcgis_rows, arcgis_preset, "b2"))
    assert (again["unchanged"], again["version"]) == (3, None)
    moved = arcgis_rows.iloc[[0]].assign(Offense_Datetime=epoch_ms("2024-03-10 15:00"),
                                         EditDate=epoch_ms("2024-03-11 12:00"))
    assert apply_both(local, warehouse, staged(moved, arcgis_preset, "b3"))["partitions_rewritten"] == 2
    stale = arcgis_rows.assign(UCR_Category="ROBBERY", EditDate=epoch_ms("2023-01-01"))
    assert apply_both(local, warehouse, staged(stale, arcgis_preset, "b4"))["updated"] == 0
    assert apply_both(local, warehouse, staged(arcgis_rows.iloc[:0], arcgis_preset, "b5"),
                      withdraw_ids=["3"])["withdrawn"] == 1
    refresh = apply_both(local, warehouse, staged(arcgis_rows.iloc[[1]], arcgis_preset, "b6"),
                         present_ids=pa.array(["2"]))
    assert (refresh["deleted_at_source"], refresh["unchanged"]) == (1, 1)
    assert warehouse.read_incidents().column("row_id").to_pylist() == ["2"]


def test_a_rerun_changes_nothing(warehouse, arcgis_rows, arcgis_preset):
    batch = staged(arcgis_rows, arcgis_preset)
    assert warehouse.upsert(batch).version is not None
    digest = warehouse.content_digest()
    assert digest.startswith("3:")
    result = warehouse.upsert(batch)
    assert (result.unchanged, result.inserted + result.updated, result.version) == (3, 0, None)
    assert warehouse.content_digest() == digest


def test_the_same_demo_runs_land_the_same_warehouse_in_both_profiles(tmp_path, gcs_bucket, client):
    """Ingest to the lake on GCS, load into BigQuery; and the same runs on the embedded profile."""
    settings = GCPSettings(project=PROJECT, location="us-central1", bucket=BUCKET, dataset=DATASET)
    runs = [dict(run_id="r0", demo_day=0), dict(run_id="r1", demo_day=1), dict(run_id="r2", demo_day=2),
            dict(run_id="r3", demo_day=3, full_refresh=True)]
    for run in runs:
        common = dict(source="demo", demo_rows=3000, data_dir=str(tmp_path), **run)
        on_gcp, embedded = RunParameters(profile="gcp", **common), RunParameters(**common)
        gcp = gcp_backends(on_gcp, settings, (gcs_bucket.client, client))
        local = backends_for(embedded)
        run_ingest(on_gcp, gcp, now=publication_time(run["demo_day"]))
        run_ingest(embedded, local, now=publication_time(run["demo_day"]))
        ours, theirs = run_load(on_gcp, gcp)["rows"], run_load(embedded, local)["rows"]
        assert ours == theirs and ours["received"] > 0
        assert gcp.warehouse.read_incidents().equals(local.warehouse.read_incidents())
        assert gcp.warehouse.quarantine_counts().equals(local.warehouse.quarantine_counts())
    assert gcp.data_root == f"gs://{BUCKET}/lake/demo"
    assert [m["batch_id"] for m in gcp.lake.batches()] == ["r0", "r1", "r2", "r3"]
    assert gcp.state.loaded_batches == ["r0", "r1", "r2", "r3"]


# ---- the other tables ----------------------------------------------------------------------------
def test_quarantine_is_replaced_per_batch_and_counted(warehouse):
    rejected = pa.table({"batch_id": ["b1", "b1"], "row_id": ["9", None],
                         "reason": ["offense_date_in_future", "missing_row_id"], "raw_json": ["{}", "{}"]},
                        schema=QUARANTINE_SCHEMA)
    assert warehouse.quarantine_counts().num_rows == 0
    warehouse.write_quarantine("b1", rejected)
    warehouse.write_quarantine("b1", rejected)
    warehouse.write_quarantine("b2", rejected.slice(0, 0))
    assert warehouse.quarantine_counts().to_pylist() == [
        {"reason": "missing_row_id", "rows": 1}, {"reason": "offense_date_in_future", "rows": 1}]


def test_marts_come_back_in_the_order_spark_wrote_them(warehouse, client):
    mart = pa.table({"offense_month": pa.array([3, 1, 2], pa.date32()), "offense_rows": [30, 10, 20]})
    warehouse.save_marts({"monthly_totals": mart})
    assert warehouse.read_mart("monthly_totals")["offense_rows"].tolist() == [30, 10, 20]
    (_, destination, config), = [c for c in client.calls if c[0] == "load_table_from_file"]
    assert destination == table_id("mart_monthly_totals")
    assert [f["name"] for f in config["load"]["schema"]["fields"]] == ["offense_month", "offense_rows", "mart_row"]
    with pytest.raises(PipelineError, match="run the Spark aggregation first"):
        warehouse.read_mart("summary")


def test_version_tokens_change_when_the_tables_do(warehouse, arcgis_rows, arcgis_preset):
    assert warehouse.version_token("incidents") == warehouse.version_token("marts") == ""
    warehouse.upsert(staged(arcgis_rows, arcgis_preset))
    loaded = warehouse.version_token("incidents")
    assert loaded.startswith("incidents:")
    warehouse.upsert(staged(arcgis_rows.assign(Precinct="TILLMAN", EditDate=epoch_ms("2024-06-01")), arcgis_preset))
    assert warehouse.version_token("incidents") not in ("", loaded)
    warehouse.save_marts({"summary": pa.table({"offense_rows": [3]})})
    assert warehouse.version_token("marts").startswith("mart_summary:")


def test_a_dataset_holding_another_source_is_refused(client, lake, arcgis_rows, arcgis_preset):
    bq.BigQueryWarehouse(client, PROJECT, DATASET, lake, "memphis-arcgis").upsert(staged(arcgis_rows, arcgis_preset))
    other = bq.BigQueryWarehouse(client, PROJECT, DATASET, lake, "demo")
    with pytest.raises(ConfigError, match="own dataset"):
        other.upsert(staged(arcgis_rows, arcgis_preset))


def test_spark_reads_the_table_with_the_connector_package(warehouse, client, arcgis_rows, arcgis_preset):
    assert warehouse.spark_conf == {}
    packaged = bq.BigQueryWarehouse(client, PROJECT, DATASET, warehouse.lake, "memphis-arcgis",
                                    "com.google.cloud.spark:spark-4.0-bigquery:0.44.2")
    assert packaged.spark_conf == {"spark.jars.packages": "com.google.cloud.spark:spark-4.0-bigquery:0.44.2"}
    assert bq.spark_read_options(table_id("incidents"), PROJECT) == {
        "table": table_id("incidents"), "parentProject": PROJECT}
    with pytest.raises(PipelineError, match="run the warehouse load first"):
        warehouse.spark_incidents(spark=None)


def test_version_tokens_stay_when_nothing_changes(warehouse, arcgis_rows, arcgis_preset):
    batch = staged(arcgis_rows, arcgis_preset)
    rejected = pa.table({"batch_id": ["b1"], "row_id": ["9"], "reason": ["offense_date_in_future"],
                         "raw_json": ["{}"]}, schema=QUARANTINE_SCHEMA)
    warehouse.upsert(batch)
    warehouse.write_quarantine("b1", rejected)
    warehouse.save_marts({"summary": pa.table({"offense_rows": [3]})})
    tokens = {part: warehouse.version_token(part) for part in ("incidents", "quarantine", "marts")}
    assert all(tokens.values())
    warehouse.upsert(batch)
    warehouse.write_quarantine("b1", rejected)
    warehouse.save_marts({"summary": pa.table({"offense_rows": [3]})})
    assert {part: warehouse.version_token(part) for part in tokens} == tokens
    warehouse.write_quarantine("b2", rejected.set_column(0, "batch_id", pa.array(["b2"])))
    assert warehouse.version_token("quarantine") != tokens["quarantine"]


# ---- the BigQuery emulator only: what it keeps and what pandas-gbq reads ------------------------
def test_the_emulator_keeps_month_partitions_clustering_and_the_source_label(bq_client, lake, arcgis_rows,
                                                                             arcgis_preset):
    bq.BigQueryWarehouse(bq_client, PROJECT, DATASET, lake, "memphis-arcgis").upsert(staged(arcgis_rows, arcgis_preset))
    table = bq_client.get_table(table_id("incidents"))
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("MONTH", "offense_month")
    assert table.clustering_fields == ["category"]
    assert table.labels == {"source": "memphis-arcgis"}
    assert [(f.name, f.field_type) for f in table.schema] == [
        (f.name, f.field_type) for f in bq.bigquery_schema(CANONICAL_SCHEMA)]
    partitions = bq_client.query(f"SELECT partition_id, total_rows FROM `{PROJECT}.{DATASET}.INFORMATION_SCHEMA.PARTITIONS` "
                                 "WHERE table_name = 'incidents'").result().to_arrow().to_pylist()
    assert partitions == [{"partition_id": "202401", "total_rows": 3}]


def test_pandas_gbq_reads_the_marts_back(bq_client, lake):
    warehouse = bq.BigQueryWarehouse(bq_client, PROJECT, DATASET, lake, "memphis-arcgis")
    months = [date(2024, 3, 1), date(2024, 1, 1), date(2024, 2, 1)]
    warehouse.save_marts({"monthly_totals": pa.table({"offense_month": pa.array(months, pa.date32()),
                                                      "offense_rows": [30, 10, 20]})})
    frame = pandas_gbq.read_gbq(f"SELECT * FROM `{table_id('mart_monthly_totals')}` ORDER BY mart_row",
                                project_id=PROJECT, bigquery_client=bq_client.client, progress_bar_type=None)
    assert list(frame.columns) == ["offense_month", "offense_rows", "mart_row"]
    assert [value.date() if hasattr(value, "date") else value for value in frame["offense_month"]] == months
    assert frame["offense_rows"].tolist() == [30, 10, 20]
