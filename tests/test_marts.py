"""The marts from the one Spark query equal plain SQL with COUNT(DISTINCT) on DuckDB, mart by mart.

The table is demo rows plus the cases the query's shortcuts must get right: offense rows without a
Crime ID (each its own incident), an incident with offense rows in two months and two categories,
an incident twice in one category, rows without a precinct, and an empty table.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memphis_incidents.config import RunParameters
from memphis_incidents.ingest import run_ingest
from memphis_incidents.load import run_load
from memphis_incidents.profiles import backends_for
from memphis_incidents.schema import CANONICAL_SCHEMA
from memphis_incidents.sources.demo_world import publication_time
from memphis_incidents.aggregate import compute_marts
from memphis_incidents.marts import GRID_DEGREES, MARTS, MAX_LAG_DAYS
from memphis_incidents.schema import spark_schema
from memphis_incidents.spark_session import spark_session

pytestmark = pytest.mark.slow
INCIDENT = "coalesce(incident_id, 'row:' || row_id)"
KEYS = {"monthly_category": "offense_month, category", "monthly_totals": "offense_month",
        "daily_category": "offense_date, category, nibrs_crime_against, nibrs_group",
        "category_totals": "category, nibrs_crime_against, nibrs_group",
        "precinct_monthly": "offense_month, coalesce(precinct, 'UNKNOWN') AS precinct"}
SNAP = "(floor({c} / {g}) + 0.5) * {g} AS {c}"
ORACLE = {
    **{name: f"SELECT {keys}, count(*) AS offense_rows, count(DISTINCT {INCIDENT}) AS incidents "
             f"FROM t GROUP BY ALL" for name, keys in KEYS.items()},
    "summary": f"""SELECT count(*) AS offense_rows, count(DISTINCT {INCIDENT}) AS incidents,
        min(offense_date) AS first_offense_date, max(offense_date) AS last_offense_date,
        max(source_updated_ts_utc) AS last_source_update_utc,
        {', '.join(f"count(*) FILTER (WHERE geo_status = '{s}') AS geo_{s}"
                   for s in ("ok", "missing", "invalid", "zero", "outside_city"))} FROM t""",
    "hour_weekday": "SELECT isodow(offense_ts_local) AS weekday, hour(offense_ts_local) AS hour, "
                    "count(*) AS offense_rows FROM t GROUP BY ALL",
    "geo_grid": f"SELECT {SNAP.format(c='latitude', g=GRID_DEGREES)}, {SNAP.format(c='longitude', g=GRID_DEGREES)}, "
                "count(*) AS offense_rows FROM t WHERE geo_status = 'ok' GROUP BY ALL",
    "offenses_per_incident": f"SELECT n AS offense_rows, count(*) AS incidents FROM "
                             f"(SELECT count(*) AS n FROM t GROUP BY {INCIDENT}) GROUP BY n",
    "reporting_lag": f"SELECT offense_month, least(greatest(floor(epoch(reported_ts_utc - offense_ts_utc) / 86400), -1), "
                     f"{MAX_LAG_DAYS + 1})::INTEGER AS lag_days, count(*) AS offense_rows FROM t "
                     "WHERE reported_ts_utc IS NOT NULL GROUP BY ALL",
}


def with_edge_cases(table: pa.Table) -> pa.Table:
    """Demo rows plus rows whose incidents the query's shortcuts could miscount."""
    rows = table.slice(0, 6).to_pylist()
    first, second = rows[0], rows[1]
    later = first["offense_date"] + timedelta(days=40)
    extra = [
        {**rows[2], "row_id": "edge-1", "incident_id": None},
        {**rows[3], "row_id": "edge-2", "incident_id": None},  # two rows without a Crime ID: two incidents
        {**first, "row_id": "edge-3", "offense_date": later, "offense_month": later.replace(day=1),
         "category": second["category"]},  # the first incident again, another month and category
        {**first, "row_id": "edge-4"},  # the first incident twice in its own category
        {**rows[4], "row_id": "edge-5", "precinct": None},
    ]
    return pa.concat_tables([table, pa.Table.from_pylist(extra, table.schema)])


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> pa.Table:
    params = RunParameters(source="demo", demo_rows=3000, run_id="r0",
                           data_dir=str(tmp_path_factory.mktemp("data")))
    backends = backends_for(params)
    run_ingest(params, backends, now=publication_time(0))
    run_load(params, backends)
    return with_edge_cases(backends.warehouse.read_incidents().select(CANONICAL_SCHEMA.names))


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]")
    yield session
    session.stop()


def marts_of(spark, table: pa.Table, folder: Path, names=MARTS) -> dict[str, pa.Table]:
    pq.write_table(table, folder / "part-0.parquet")
    return compute_marts(spark.read.schema(spark_schema(CANONICAL_SCHEMA)).parquet(str(folder)), names)


def rows(table: pa.Table) -> list[tuple]:
    return sorted(tuple(row.values()) for row in table.to_pylist())


def test_every_mart_equals_count_distinct_in_sql(spark, table, tmp_path):
    got = marts_of(spark, table, tmp_path)
    assert list(got) == list(MARTS)
    t = table  # noqa: F841 (DuckDB reads the local by name)
    for name, sql in ORACLE.items():
        want = duckdb.sql(sql).to_arrow_table()
        assert got[name].column_names == want.column_names, name
        assert rows(got[name]) == rows(want), name
    first = table.slice(0, 1).to_pylist()[0]
    monthly = got["monthly_category"].to_pylist()
    assert got["summary"]["incidents"][0].as_py() < got["summary"]["offense_rows"][0].as_py()
    assert sum(r["incidents"] for r in monthly) > got["summary"]["incidents"][0].as_py()  # one in each
    assert any(r["category"] == first["category"] and r["incidents"] < r["offense_rows"] for r in monthly)


def test_marts_come_sorted_for_reading(spark, table, tmp_path):
    got = marts_of(spark, table, tmp_path)
    months = got["monthly_category"].select(["offense_month", "category"]).to_pylist()
    assert months == sorted(months, key=lambda r: (r["offense_month"], r["category"]))
    totals = got["category_totals"]["offense_rows"].to_pylist()
    assert totals == sorted(totals, reverse=True)
    assert got["offenses_per_incident"]["offense_rows"].to_pylist()[0] == 1


def test_one_mart_alone_equals_it_among_all(spark, table, tmp_path):
    (tmp_path / "all").mkdir()
    (tmp_path / "one").mkdir()
    every = marts_of(spark, table, tmp_path / "all")
    alone = marts_of(spark, table, tmp_path / "one", ["monthly_category", "offenses_per_incident"])
    assert list(alone) == ["monthly_category", "offenses_per_incident"]
    assert all(alone[name].equals(every[name]) for name in alone)


def test_an_empty_table_gives_empty_marts_and_a_zero_summary(spark, tmp_path):
    got = marts_of(spark, CANONICAL_SCHEMA.empty_table(), tmp_path)
    assert got["summary"].to_pylist()[0]["offense_rows"] == 0 == got["summary"]["incidents"][0].as_py()
    assert all(got[name].num_rows == 0 for name in MARTS if name != "summary")
