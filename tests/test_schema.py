"""The normaliser: raw rows of each preset to canonical columns."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from memphis_incidents.schema import (canonical_incidents, city_name, crime_against, geo_status,
                                      to_arrow, utc_times, zip5, CANONICAL_SCHEMA)


def test_epoch_times_become_utc_and_memphis_local(arcgis_rows, arcgis_preset):
    out = canonical_incidents(arcgis_rows, arcgis_preset, "b1")
    assert str(out.loc[2, "offense_ts_utc"]) == "2024-02-01 05:59:00+00:00"
    # 05:59 UTC on 1 February is 23:59 on 31 January in Memphis: the month is January.
    assert str(out.loc[2, "offense_ts_local"]) == "2024-01-31 23:59:00"
    assert str(out.loc[2, "offense_month"].date()) == "2024-01-01"


def test_floating_local_text_is_read_as_memphis_time():
    parsed = utc_times(pd.Series(["2018-03-26T21:50:00.000", "03/26/2018 09:50:00 PM", "nonsense", None]),
                       "floating_local")
    assert parsed.iloc[0] == pd.Timestamp("2018-03-27 02:50", tz="UTC")  # CDT is UTC-5
    assert parsed.iloc[1] == parsed.iloc[0]
    assert parsed.iloc[2:].isna().all()


def test_text_with_offset_is_absolute():
    parsed = utc_times(pd.Series(["2024-01-02T03:04:05.000Z"]), "floating_local")
    assert parsed.iloc[0] == pd.Timestamp("2024-01-02 03:04:05", tz="UTC")


def test_repeated_fall_back_hour_is_standard_time():
    parsed = utc_times(pd.Series(["2024-11-03T01:30:00"]), "floating_local")
    assert parsed.iloc[0] == pd.Timestamp("2024-11-03 07:30", tz="UTC")


def test_dirty_values_are_cleaned():
    assert city_name(pd.Series(["mphs", "M", "MEMPHIS ", "Germantown", None])).tolist()[:4] == \
        ["MEMPHIS", "MEMPHIS", "MEMPHIS", "GERMANTOWN"]
    zips = zip5(pd.Series(["38118-", "38118-1234", "3811", None]))
    assert zips.tolist()[:2] == ["38118", "38118"] and zips.iloc[2:].isna().all()
    labels = pd.Series(["CRIMES AGAINST PERSONS", "crimes against property ", "CRIMES AGAINST PERSON",
                        "PERSON, PROPERTY, OR SOCIETY", None])
    assert crime_against(labels).tolist()[:4] == ["PERSONS", "PROPERTY", "PERSONS", "OTHER"]
    assert pd.isna(crime_against(labels).iloc[4])


def test_geo_status_names_every_unusable_point():
    lat = pd.Series([35.1, 0.0, 45.0, None, None])
    lon = pd.Series([-90.0, 0.0, -90.0, None, -90.0])
    present = pd.Series([True, True, True, False, True])
    assert geo_status(lat, lon, present).tolist() == ["ok", "zero", "outside_city", "missing", "invalid"]


def test_categories_are_trimmed_and_upper_cased(arcgis_rows, arcgis_preset):
    rows = arcgis_rows.assign(UCR_Category=["Larceny/Theft  ", " assault", None])
    out = canonical_incidents(rows, arcgis_preset, "b1")
    assert out["category"].tolist() == ["LARCENY/THEFT", "ASSAULT", "UNKNOWN"]


def test_content_hash_changes_with_content_only(arcgis_rows, arcgis_preset):
    first = canonical_incidents(arcgis_rows, arcgis_preset, "b1")
    again = canonical_incidents(arcgis_rows, arcgis_preset, "b2")
    changed = canonical_incidents(arcgis_rows.assign(Precinct=["CRUMP", "CRUMP", "TILLMAN"]), arcgis_preset, "b1")
    assert first["row_hash"].tolist() == again["row_hash"].tolist()
    assert first["row_hash"].tolist()[:2] == changed["row_hash"].tolist()[:2]
    assert first["row_hash"].iloc[2] != changed["row_hash"].iloc[2]


def test_output_fits_the_canonical_arrow_schema(arcgis_rows, arcgis_preset):
    table = to_arrow(canonical_incidents(arcgis_rows, arcgis_preset, "b1"))
    assert table.schema.equals(CANONICAL_SCHEMA)
    assert table.num_rows == 3


# ---- the real samples ---------------------------------------------------------------------------
PUH4_API_NAMES = {  # CSV display names -> SODA field names of the memphis-2024 preset
    "Crime ID": "crime_id", "Offense Date": "offense_date", "Reported Date": "reported_date",
    "Agency Crime ID": "agency_crime_id", "UCR Incident Code": "ucr_incident_code",
    "UCR Description": "ucr_description", "UCR Category": "ucr_category",
    "Offense Group (NIBRS)": "offense_group_nibrs", "Group (NIBRS)": "group_nibrs", "100 Block": "_100_block",
}


def test_normaliser_reads_the_real_puh4_export(real_samples, socrata_preset):
    raw = pd.read_csv(real_samples / "puh4-eea4_head10_partial_columns.csv", dtype=str)
    raw = raw.rename(columns=PUH4_API_NAMES).assign(**{":id": [f"row-{i}" for i in range(len(raw))]})
    out = canonical_incidents(raw, socrata_preset, "b1")
    assert out["offense_ts_utc"].notna().all()
    assert out.loc[0, "offense_ts_utc"] == pd.Timestamp("2018-03-27 02:50", tz="UTC")
    assert str(out.loc[0, "offense_month"].date()) == "2018-03-01"
    assert set(out["category"]) <= {"ROBBERY", "ASSAULT", "LARCENY/THEFT", "FRAUD"}
    assert set(out["nibrs_crime_against"]) == {"PERSONS", "PROPERTY"}
    assert (out["reported_ts_utc"] >= out["offense_ts_utc"]).all()


def feed_as_arcgis(records: list[dict]) -> pd.DataFrame:
    """The normalised real feed sample turned back into ArcGIS attributes (local midnight times)."""
    titles = [r["title"].split(" — ", 1) for r in records]
    local = pd.to_datetime([r["date"] for r in records]).tz_localize("America/Chicago")
    return pd.DataFrame({
        "ObjectId": range(1, len(records) + 1),
        "Offense_Datetime": local.tz_convert("UTC").as_unit("ms").asi8,
        "UCR_Category": [t[0] for t in titles],
        "UCR_Description": [t[-1] for t in titles],
        "Street_Address": [r["place"] for r in records],
        "Precinct": [r["beat"] for r in records],
    })


def test_normaliser_reads_the_real_arcgis_feed_sample(real_samples, arcgis_preset):
    records = json.loads((real_samples / "mpd_incidents_feed_sample_2020_2026.json").read_text())
    out = canonical_incidents(feed_as_arcgis(records), arcgis_preset, "b1")
    assert len(out) == len(records) == 312
    assert out["offense_date"].dt.strftime("%Y-%m-%d").tolist() == [r["date"] for r in records]
    assert out["category"].str.strip().eq(out["category"]).all()
    assert {"LARCENY/THEFT", "MOTOR VEHICLE THEFT", "AGGRAVATED ASSAULT"} <= set(out["category"])
    assert (out["geo_status"] == "missing").all()
