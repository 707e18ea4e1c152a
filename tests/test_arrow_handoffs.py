"""Every hand-off between Spark and the rest of the pipeline goes through Arrow, never pandas.

PySpark 4.3 warns that pandas 3 is not fully supported on its Arrow hand-offs (`toPandas`,
`createDataFrame(pandas)`); the pipeline stays on pandas 3 because it uses neither: Spark reads the
Parquet that pyarrow wrote (types given as DDL) and hands the marts back with `toArrow()`. These
tests pin both hand-offs, value for value, and fail if a pandas hand-off to Spark appears in lib/.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memphis_incidents.aggregate import compute_marts
from memphis_incidents.marts import COLUMNS, MARTS
from memphis_incidents.schema import CANONICAL_SCHEMA, spark_schema
from memphis_incidents.spark_session import spark_session

LIB = Path(__file__).resolve().parents[1] / "lib" / "memphis_incidents"
# createDataFrame is allowed only from an Arrow table, said so on its line ("# from Arrow").
PANDAS_HANDOFFS = re.compile(r"\.toPandas\(|createDataFrame\((?![^\n]*# from Arrow)|pandas_udf|applyInPandas|mapInPandas")


def canonical_rows() -> pa.Table:
    """Two canonical rows: a summer (daylight-time) offense and a winter one without a Crime ID."""
    def row(row_id: str, utc: datetime, local: datetime, incident: str | None) -> dict:
        return {"row_id": row_id, "incident_id": incident, "offense_ts_utc": utc, "offense_ts_local": local,
                "offense_date": local.date(), "offense_month": local.date().replace(day=1),
                "category": "THEFT", "nibrs_crime_against": "PROPERTY", "nibrs_group": "A", "precinct": "CRUMP",
                "latitude": 35.1, "longitude": -90.0, "geo_status": "ok", "source_updated_ts_utc": utc,
                "batch_id": "b1", "row_hash": -7}
    return pa.Table.from_pylist([
        row("1", datetime(2024, 7, 1, 3, 30, tzinfo=timezone.utc), datetime(2024, 6, 30, 22, 30), "i1"),
        row("2", datetime(2024, 1, 15, 12, 0, tzinfo=timezone.utc), datetime(2024, 1, 15, 6, 0), None),
    ], schema=CANONICAL_SCHEMA)


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[1]")
    yield session
    session.stop()


def test_no_pandas_hand_off_to_or_from_spark_in_lib():
    found = [f"{path.relative_to(LIB)}: {match.group()}" for path in LIB.rglob("*.py")
             for match in PANDAS_HANDOFFS.finditer(path.read_text())]
    assert found == []


@pytest.mark.slow
def test_spark_reads_pyarrow_parquet_with_the_types_and_values_written(spark, tmp_path):
    table = canonical_rows()
    pq.write_table(table, tmp_path / "part-0.parquet")
    back = spark.read.schema(spark_schema(CANONICAL_SCHEMA)).parquet(str(tmp_path)).toArrow()
    assert back.schema.field("offense_ts_local").type == pa.timestamp("us")  # wall clock stays naive
    assert back.schema.field("offense_ts_utc").type.tz is not None
    assert back.select(CANONICAL_SCHEMA.names).cast(CANONICAL_SCHEMA).to_pylist() == table.to_pylist()


@pytest.mark.slow
def test_marts_come_back_as_arrow_and_read_as_pandas_3_frames(spark, tmp_path):
    pq.write_table(canonical_rows(), tmp_path / "part-0.parquet")
    marts = compute_marts(spark.read.schema(spark_schema(CANONICAL_SCHEMA)).parquet(str(tmp_path)))
    assert {name: table.column_names for name, table in marts.items()} == {name: COLUMNS[name] for name in MARTS}
    monthly = marts["monthly_totals"]
    assert monthly.schema.field("offense_month").type == pa.date32()
    assert monthly.to_pylist() == [{"offense_month": date(2024, 1, 1), "offense_rows": 1, "incidents": 1},
                                   {"offense_month": date(2024, 6, 1), "offense_rows": 1, "incidents": 1}]
    pq.write_table(marts["summary"], tmp_path / "summary.parquet")
    summary = pd.read_parquet(tmp_path / "summary.parquet")  # how LocalWarehouse.read_mart reads a mart
    assert summary["last_source_update_utc"].dt.tz is not None
    assert int(summary.loc[0, "offense_rows"]) == 2 and int(summary.loc[0, "geo_ok"]) == 2
