"""Incremental marts equal marts computed whole, night after night.

A small demo warehouse (3,000 rows, real Parquet) goes through nights of inserts, edits, deletions
and late-arriving old months, each followed by the aggregate stage on real Spark in local mode: it
recomputes only the months the night changed and merges them into the previous marts. After each
night every mart and every hidden partial must equal what a full recompute of a copy of the same
warehouse publishes.
"""
from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memphis_incidents.aggregate import run_aggregate
from memphis_incidents.config import RunParameters
from memphis_incidents.ingest import run_ingest
from memphis_incidents.load import run_load
from memphis_incidents.profiles import backends_for
from memphis_incidents.schema import CANONICAL_SCHEMA
from memphis_incidents.sources.demo_world import publication_time
from memphis_incidents.warehouse.local import LocalWarehouse

pytestmark = pytest.mark.slow
LATE_MONTH = date(2019, 6, 1)  # before the demo's first month: a late-arriving old month


def published(warehouse: LocalWarehouse) -> dict[str, list[tuple]]:
    """Every table of the live marts version (marts and hidden partials), rows sorted."""
    current = warehouse.marts_dir.current
    assert current is not None
    return {folder.name: sorted(tuple(r.values()) for r in pq.read_table(folder).to_pylist())
            for folder in sorted(current.iterdir()) if folder.is_dir()}


def full_recompute(warehouse: LocalWarehouse, folder: Path) -> dict[str, list[tuple]]:
    """The marts and partials a full recompute publishes for a copy of the warehouse."""
    shutil.copytree(warehouse.root, folder, symlinks=True)
    copy = LocalWarehouse(folder)
    assert run_aggregate("local[2]", "", copy, full_refresh=True)["months_recomputed"] == "all"
    return published(copy)


def night(warehouse: LocalWarehouse, tmp_path: Path, label: str) -> list[str]:
    """Run the aggregate stage incrementally, check it against a full recompute; the months it did."""
    months: list[str] = run_aggregate("local[2]", "", warehouse)["months_recomputed"]
    assert published(warehouse) == full_recompute(warehouse, tmp_path / f"full-{label}"), label
    return months


def rows_of(warehouse: LocalWarehouse) -> list[dict]:
    return warehouse.read_incidents().to_pylist()


def moved(row: dict, day: date, **changes) -> dict:
    """An edited copy of a row whose offense happened on `day` (times kept consistent)."""
    shift = datetime.combine(day, datetime.min.time()) - datetime.combine(row["offense_date"], datetime.min.time())
    return {**row, "offense_ts_utc": row["offense_ts_utc"] + shift, "offense_ts_local": row["offense_ts_local"] + shift,
            "offense_date": day, "offense_month": day.replace(day=1), **edited(row), **changes}


def edited(row: dict) -> dict:
    """What makes the load take a row as a newer version of itself."""
    return {"row_hash": row["row_hash"] + 1, "source_updated_ts_utc": datetime(2030, 1, 1, tzinfo=timezone.utc)}


def upsert(warehouse: LocalWarehouse, rows: list[dict], withdraw: list[str] | None = None) -> None:
    warehouse.upsert(pa.Table.from_pylist(rows, CANONICAL_SCHEMA), withdraw_ids=withdraw)


def test_incremental_marts_equal_full_marts_after_every_night(tmp_path):
    params = RunParameters(source="demo", demo_rows=3000, run_id="night0", data_dir=str(tmp_path / "data"))
    backends = backends_for(params)
    warehouse = backends.warehouse
    assert isinstance(warehouse, LocalWarehouse)
    run_ingest(params, backends, now=publication_time(0))
    run_load(params, backends)
    assert run_aggregate("local[2]", "", warehouse)["months_recomputed"] == "all"  # no marts yet

    later = RunParameters(source="demo", demo_rows=3000, run_id="night1", demo_day=1, data_dir=params.data_dir)
    run_ingest(later, backends, now=publication_time(1))
    run_load(later, backends)
    demo_night = night(warehouse, tmp_path, "demo-day")
    assert 0 < len(demo_night) < 12  # the demo's edits touch recent months only

    rows = sorted(rows_of(warehouse), key=lambda r: (r["offense_month"], r["row_id"]))
    first, second, third = rows[0], rows[len(rows) // 3], rows[2 * len(rows) // 3]
    newest = rows[-1]
    upsert(warehouse, [
        moved(first, LATE_MONTH + timedelta(days=14), row_id="late-1", incident_id="late-incident"),
        moved(newest, newest["offense_date"], row_id="joins-old", incident_id=first["incident_id"],
              category=second["category"]),  # an incident now in two months, one of them untouched
        {**second, **edited(second), "category": third["category"]},  # an edit
        moved(third, newest["offense_date"]),  # an edit that moves a row to another month
    ])
    expected = {LATE_MONTH, newest["offense_month"], second["offense_month"], third["offense_month"]}
    assert night(warehouse, tmp_path, "edits") == sorted(m.isoformat() for m in expected)

    upsert(warehouse, [], withdraw=["late-1"])  # a month loses its only row: Spark reads nothing
    assert night(warehouse, tmp_path, "late month gone") == [LATE_MONTH.isoformat()]
    assert all(row[0] != LATE_MONTH for row in published(warehouse)["monthly_totals"])

    upsert(warehouse, [], withdraw=["joins-old", first["row_id"]])
    assert night(warehouse, tmp_path, "deletions") == sorted({newest["offense_month"].isoformat(),
                                                              first["offense_month"].isoformat()})

    assert run_aggregate("local[2]", "", warehouse)["months_recomputed"] == []  # nothing changed
