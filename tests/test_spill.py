"""The load's spill: a batch checked chunk by chunk gives the split the whole batch gives in memory,
duplicates across chunks included, and the load's result does not depend on the chunk size."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memphis_incidents import load
from memphis_incidents.config import RunParameters
from memphis_incidents.ingest import run_ingest
from memphis_incidents.profiles import backends_for
from memphis_incidents.quality import split_batch
from memphis_incidents.spill import spilled_batch
from tests.conftest import epoch_ms

INGESTED = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


@pytest.fixture
def dirty(arcgis_rows) -> pd.DataFrame:
    """Rows whose duplicates and rejections only a look across chunks (of 2 rows) can settle."""
    rows = pd.concat([arcgis_rows] * 4, ignore_index=True).astype({"ObjectId": object, "Offense_Datetime": object})
    rows["ObjectId"] = [1, 2, 3, 4, 5, 1, 6, 2, None, 7, 8, 3]  # 1, 2 and 3 come again in later chunks
    rows["EditDate"] = [epoch_ms("2024-02-02")] * 6 + [epoch_ms("2024-03-01")] * 3 + [epoch_ms("2024-01-01")] * 3
    rows.loc[7, "Offense_Datetime"] = epoch_ms("2099-01-01")  # the newest version of 2 is rejected
    rows.loc[4, "Offense_Datetime"] = None  # 5: rejected, no other version
    rows.loc[1, "UCR_Category"] = "ROBBERY"  # an older version of 2, superseded
    return rows


def split_in_chunks(rows: pd.DataFrame, preset, size: int, folder):
    folder.mkdir(exist_ok=True)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    chunks = [table.slice(start, size) for start in range(0, table.num_rows, size)]
    return spilled_batch(chunks, preset, "b1", INGESTED, folder)


@pytest.mark.parametrize("size", [1, 2, 5, 100])
def test_a_batch_split_chunk_by_chunk_is_split_as_in_memory(dirty, arcgis_preset, tmp_path, size):
    whole = split_batch(dirty, arcgis_preset, "b1", INGESTED)
    spill = split_in_chunks(dirty, arcgis_preset, size, tmp_path)
    valid = spill.valid_rows().to_table().to_pandas()
    assert (spill.received, spill.loaded, spill.duplicates) == (len(dirty), len(whole.valid), whole.duplicates)
    assert sorted(zip(valid["row_id"], valid["row_hash"])) == sorted(zip(whole.valid["row_id"], whole.valid["row_hash"]))
    assert spill.rejected.drop_columns(["raw_json"]).equals(whole.rejected.drop_columns(["raw_json"]))
    as_values = [json.loads(text) for text in spill.rejected.column("raw_json").to_pylist()]
    assert as_values == [json.loads(text) for text in whole.rejected.column("raw_json").to_pylist()]
    assert spill.rejected.column("row_id").to_pylist() == ["5", "2", None] and spill.duplicates == 3
    assert sorted(spill.row_ids().to_table(columns=["row_id"]).column(0).to_pylist()) == sorted(
        r for r in dirty["ObjectId"].astype("Int64").astype("string").dropna().tolist())


def test_each_chunk_keeps_a_row_group_per_month(arcgis_rows, arcgis_preset, tmp_path):
    later = arcgis_rows.assign(ObjectId=[4, 5, 6], Offense_Datetime=[epoch_ms("2024-03-05")] * 3)
    spill = split_in_chunks(pd.concat([later, arcgis_rows], ignore_index=True), arcgis_preset, 100, tmp_path)
    file = pq.ParquetFile(spill.files[0])
    months = [file.read_row_group(n).column("offense_month").unique().to_pylist() for n in range(file.num_row_groups)]
    assert [[str(m) for m in group] for group in months] == [["2024-01-01"], ["2024-03-01"]]


def test_a_rejected_row_reads_the_same_whatever_its_chunk_holds(dirty, arcgis_preset, tmp_path):
    texts = [split_in_chunks(dirty, arcgis_preset, size, tmp_path / str(size)).rejected.column("raw_json")
             for size in (1, 100)]  # alone, a row's offense time has no null beside it to make it a float
    assert texts[0].equals(texts[1]) and '"Offense_Datetime": 4070908800000,' in texts[0][1].as_py()


def test_an_empty_batch_spills_to_nothing(arcgis_preset, tmp_path):
    spill = spilled_batch([], arcgis_preset, "b1", INGESTED, tmp_path)
    assert (spill.received, spill.loaded, spill.duplicates, spill.rejected.num_rows) == (0, 0, 0, 0)
    assert spill.valid_rows().count_rows() == 0


def test_the_load_does_not_depend_on_the_chunk_size(tmp_path, monkeypatch):
    digests, records = [], []
    for chunk in (100_000, 700):
        params = RunParameters(data_dir=str(tmp_path / str(chunk)), demo_rows=5_000, run_id="r1")
        backends = backends_for(params)
        run_ingest(params, backends)
        monkeypatch.setattr(load, "CHUNK_ROWS", chunk)
        records.append(load.run_load(params, backends)["rows"])
        digests.append(backends.warehouse.content_digest())
        day = dataclasses.replace(params, demo_day=1, run_id="r2")
        run_ingest(day, backends_for(day))
        records.append(load.run_load(day, backends_for(day))["rows"])
        digests.append(backends.warehouse.content_digest())
    assert digests[:2] == digests[2:] and records[:2] == records[2:]
    assert records[0]["duplicates"] > 0 and records[1]["updated"] > 0
    assert not (tmp_path / "700" / "demo" / ".scratch").exists()  # the spill is gone once the load is done
