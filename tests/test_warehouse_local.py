"""The embedded warehouse: upserts, partitions, atomic versions."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memphis_incidents.schema import canonical_incidents, to_arrow
from memphis_incidents.warehouse.local import LocalWarehouse
from tests.conftest import epoch_ms


@pytest.fixture
def warehouse(tmp_path):
    return LocalWarehouse(tmp_path / "warehouse")


def staged(rows, preset, batch="b1"):
    return to_arrow(canonical_incidents(rows, preset, batch))


def test_first_load_writes_month_partitions_sorted_by_category(warehouse, arcgis_rows, arcgis_preset):
    result = warehouse.upsert(staged(arcgis_rows, arcgis_preset))
    assert (result.inserted, result.updated, result.version) == (3, 0, "v000001")
    parts = sorted(p.name for p in warehouse.incidents_path().iterdir())
    assert parts == ["offense_month=2024-01-01"]  # 05:59 UTC on 1 Feb is still January in Memphis
    table = pq.read_table(warehouse.incidents_path() / parts[0] / "part-0.parquet")
    assert table.column("category").to_pylist() == ["ASSAULT", "BURGLARY", "LARCENY/THEFT"]


def test_same_rows_again_change_nothing(warehouse, arcgis_rows, arcgis_preset):
    warehouse.upsert(staged(arcgis_rows, arcgis_preset, "b1"))
    digest = warehouse.content_digest()
    result = warehouse.upsert(staged(arcgis_rows, arcgis_preset, "b2"))
    assert (result.unchanged, result.version) == (3, None)
    assert warehouse.content_digest() == digest
    assert len(warehouse.incidents_dir.versions()) == 1


def test_changed_row_replaces_the_old_one_even_across_months(warehouse, arcgis_rows, arcgis_preset):
    warehouse.upsert(staged(arcgis_rows, arcgis_preset))
    moved = arcgis_rows.iloc[[0]].assign(Offense_Datetime=epoch_ms("2024-03-10 15:00"),
                                         EditDate=epoch_ms("2024-03-11 12:00"))
    result = warehouse.upsert(staged(moved, arcgis_preset, "b2"))
    assert (result.inserted, result.updated, result.partitions_rewritten) == (0, 1, 2)
    with warehouse.connect() as con:
        months = con.sql("SELECT row_id, offense_month::VARCHAR FROM incidents ORDER BY row_id").fetchall()
    assert months == [("1", "2024-03-01"), ("2", "2024-01-01"), ("3", "2024-01-01")]


def test_stale_version_does_not_overwrite_a_newer_one(warehouse, arcgis_rows, arcgis_preset):
    newer = arcgis_rows.assign(UCR_Category="ROBBERY", EditDate=epoch_ms("2024-05-01"))
    warehouse.upsert(staged(newer, arcgis_preset))
    result = warehouse.upsert(staged(arcgis_rows, arcgis_preset, "old"))
    assert result.updated == 0
    assert set(warehouse.read_incidents().column("category").to_pylist()) == {"ROBBERY"}


def test_full_refresh_deletes_rows_gone_at_the_source(warehouse, arcgis_rows, arcgis_preset):
    warehouse.upsert(staged(arcgis_rows, arcgis_preset))
    result = warehouse.upsert(staged(arcgis_rows.iloc[:2], arcgis_preset),
                              present_ids=pa.array(["1", "2"]))
    assert result.deleted_at_source == 1
    assert sorted(warehouse.read_incidents().column("row_id").to_pylist()) == ["1", "2"]


def test_rows_whose_newest_version_was_rejected_are_withdrawn(warehouse, arcgis_rows, arcgis_preset):
    warehouse.upsert(staged(arcgis_rows, arcgis_preset))
    result = warehouse.upsert(staged(arcgis_rows.iloc[:0], arcgis_preset), withdraw_ids=["3"])
    assert result.withdrawn == 1
    assert warehouse.read_incidents().num_rows == 2


def test_a_crashed_write_leaves_the_previous_version_readable(warehouse, arcgis_rows, arcgis_preset):
    warehouse.upsert(staged(arcgis_rows, arcgis_preset))
    before = warehouse.content_digest()
    leftover = warehouse.incidents_dir.staging()  # what a crash mid-write leaves behind
    (leftover / "offense_month=2024-01-01").mkdir()
    (leftover / "offense_month=2024-01-01" / "part-0.parquet").write_bytes(b"half a file")
    assert warehouse.content_digest() == before
    changed = arcgis_rows.assign(EditDate=epoch_ms("2024-06-01"), Precinct="TILLMAN")
    assert warehouse.upsert(staged(changed, arcgis_preset, "b2")).updated == 3
    assert set(warehouse.read_incidents().column("precinct").to_pylist()) == {"TILLMAN"}


def test_old_versions_are_pruned_and_untouched_partitions_linked(warehouse, arcgis_rows, arcgis_preset):
    for n in range(5):
        rows = arcgis_rows.assign(EditDate=epoch_ms(f"2024-06-0{n + 1}"), Precinct=f"P{n}")
        warehouse.upsert(staged(rows, arcgis_preset, f"b{n}"))
    assert [v.name for v in warehouse.incidents_dir.versions()] == ["v000003", "v000004", "v000005"]
    assert warehouse.incidents_path().name == "v000005"


def test_quarantine_is_kept_per_batch_and_counted(warehouse, arcgis_rows, arcgis_preset):
    from memphis_incidents.quality import QUARANTINE_SCHEMA

    rejected = pa.table({"batch_id": ["b1", "b1"], "row_id": ["9", None],
                         "reason": ["offense_date_in_future", "missing_row_id"], "raw_json": ["{}", "{}"]},
                        schema=QUARANTINE_SCHEMA)
    warehouse.write_quarantine("b1", rejected)
    warehouse.write_quarantine("b1", rejected)  # loading a batch again replaces, never doubles
    counts = warehouse.quarantine_counts().to_pylist()
    assert counts == [{"reason": "missing_row_id", "rows": 1}, {"reason": "offense_date_in_future", "rows": 1}]


def test_files_written_atomically_get_the_permissions_open_would_give_them(tmp_path):
    from memphis_incidents.storage import UMASK, write_atomically

    path = write_atomically(tmp_path / "report.html", b"<p>shared</p>")
    assert path.stat().st_mode & 0o777 == 0o666 & ~UMASK
