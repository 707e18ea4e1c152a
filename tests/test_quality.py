"""Validation: every row is valid, rejected with a reason, or a counted duplicate."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd

from memphis_incidents.quality import split_batch
from tests.conftest import epoch_ms

INGESTED = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def test_clean_rows_are_all_valid(arcgis_rows, arcgis_preset):
    split = split_batch(arcgis_rows, arcgis_preset, "b1", INGESTED)
    assert (len(split.valid), split.rejected.num_rows, split.duplicates) == (3, 0, 0)


def test_bad_rows_are_quarantined_with_their_reason(arcgis_rows, arcgis_preset):
    rows = arcgis_rows.copy()
    rows["ObjectId"] = rows["ObjectId"].astype(object)
    rows.loc[0, "ObjectId"] = None
    rows.loc[1, "Offense_Datetime"] = epoch_ms("2099-01-01")
    rows.loc[2, "Offense_Datetime"] = epoch_ms("1900-01-01")
    split = split_batch(rows, arcgis_preset, "b1", INGESTED)
    reasons = split.rejected.column("reason").to_pylist()
    assert reasons == ["missing_row_id", "offense_date_in_future", "offense_date_before_1970"]
    assert split.valid.empty
    kept = json.loads(split.rejected.column("raw_json")[1].as_py())
    assert kept["Crime_ID"] == "2401000001ME"  # the raw row is kept with its reason


def test_missing_and_unparseable_dates_are_told_apart(arcgis_rows, arcgis_preset):
    rows = arcgis_rows.astype({"Offense_Datetime": object})
    rows.loc[0, "Offense_Datetime"] = None
    rows.loc[1, "Offense_Datetime"] = "not a date"
    split = split_batch(rows, arcgis_preset, "b1", INGESTED)
    assert split.rejected.column("reason").to_pylist() == ["missing_offense_date", "unparseable_offense_date"]


def test_duplicates_keep_the_latest_version(arcgis_rows, arcgis_preset):
    newer = arcgis_rows.iloc[[2]].assign(UCR_Category="ROBBERY", EditDate=epoch_ms("2024-03-01"))
    rows = pd.concat([arcgis_rows.iloc[[0, 2]], newer, arcgis_rows.iloc[[0]]], ignore_index=True)
    split = split_batch(rows, arcgis_preset, "b1", INGESTED)
    assert split.duplicates == 2
    assert sorted(split.valid["category"]) == ["LARCENY/THEFT", "ROBBERY"]
    assert split.received == len(rows)


def test_received_always_adds_up(arcgis_rows, arcgis_preset):
    rows = arcgis_rows.astype({"Offense_Datetime": object})
    rows = pd.concat([rows, rows], ignore_index=True)
    rows.loc[4, "Offense_Datetime"] = None
    split = split_batch(rows, arcgis_preset, "b1", INGESTED)
    assert split.received == len(rows) == len(split.valid) + split.rejected.num_rows + split.duplicates
