"""Test rows in each publication's raw shape, built from the real samples in tests/fixtures/real.

Socrata rows (preset memphis-2024 field names, all values strings, system fields included) come from
the puh4-eea4 CSV head; ArcGIS attributes (preset memphis-arcgis field names, epoch ms dates) come
from the ArcGIS feed sample. Values the samples lack stay null, except ids and update times, which
are made up deterministically (they say nothing about real incidents). `count` repeats the samples
with new ids when a test needs more pages.
"""
from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from memphis_incidents.config import Preset, load_preset

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
SOCRATA_SAMPLE = REAL / "puh4-eea4_head10_partial_columns.csv"
ARCGIS_SAMPLE = REAL / "mpd_incidents_feed_sample_2020_2026.json"
MEMPHIS = ZoneInfo("America/Chicago")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
UPDATED_BASE = datetime(2024, 11, 10, 6, 0, tzinfo=timezone.utc)
ROWS_PER_UPDATE = 3  # rows share an :updated_at, as rows of one bulk upsert do

CSV_CANONICAL = {
    "Crime ID": "incident_id",
    "Offense Date": "offense_ts",
    "Reported Date": "reported_ts",
    "Agency Crime ID": "agency_crime_type",
    "UCR Incident Code": "ucr_code",
    "UCR Description": "description",
    "UCR Category": "category",
    "Offense Group (NIBRS)": "nibrs_crime_against",
    "Group (NIBRS)": "nibrs_group",
}
HUNDRED_BLOCK = "_100_block"  # "100 Block": a number such as 1300, not an address; mapped by no preset
UNSEEN_ARCGIS = ("Reported_Datetime", "Agency_Crime_Type", "EditDate")  # in no public code
CRIMES_AGAINST = {
    "persons": "CRIMES AGAINST PERSONS",
    "property": "CRIMES AGAINST PROPERTY",
    "society": "CRIMES AGAINST SOCIETY",
    "other": "PERSON, PROPERTY, OR SOCIETY",
}
ESRI_TYPE = {
    "row_id": "esriFieldTypeOID",
    "offense_ts": "esriFieldTypeDate",
    "reported_ts": "esriFieldTypeDate",
    "source_updated_ts": "esriFieldTypeDate",
    "latitude": "esriFieldTypeDouble",
    "longitude": "esriFieldTypeDouble",
}


def soda_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def socrata_columns(preset: Preset) -> list[str]:
    """The dataset's columns: every field the preset maps, system fields aside, and the 100 block."""
    return [name for name in dict.fromkeys(preset.fields.values()) if not name.startswith(":")] + [HUNDRED_BLOCK]


def socrata_types(preset: Preset) -> dict[str, str]:
    """dataTypeName of each column for the dataset's metadata (text unless a date or number)."""
    kinds = {"offense_ts": "calendar_date", "reported_ts": "calendar_date", "latitude": "number", "longitude": "number"}
    return {preset.fields[name]: kind for name, kind in kinds.items() if name in preset.fields}


def socrata_rows(
    preset: Preset, count: int | None = None, rows_per_update: int = ROWS_PER_UPDATE
) -> list[dict[str, Any]]:
    """The ten real puh4-eea4 rows (repeated with new ids up to `count`) as SODA returns them;
    each run of `rows_per_update` rows shares an :updated_at."""
    with SOCRATA_SAMPLE.open(newline="", encoding="utf-8") as handle:
        sample = list(csv.DictReader(handle))
    rows = []
    for i in range(count or len(sample)):
        record = sample[i % len(sample)]
        values = {CSV_CANONICAL[name]: soda_value(name, text) for name, text in record.items() if name in CSV_CANONICAL}
        updated = soda_time(UPDATED_BASE + timedelta(seconds=i // rows_per_update))
        row = {":id": f"row-{i:05d}.mpd", ":created_at": soda_time(UPDATED_BASE), ":updated_at": updated,
               ":version": f"rv-{i:05d}"}
        row.update({preset.fields[name]: value for name, value in values.items() if name in preset.fields})
        row[HUNDRED_BLOCK] = soda_value("100 Block", record["100 Block"])
        rows.append(row)
    return rows


def soda_value(column: str, text: str) -> str:
    """A CSV export value as the SODA API writes it (floating timestamps, numbers without '.0')."""
    if column in ("Offense Date", "Reported Date"):
        return datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p").strftime("%Y-%m-%dT%H:%M:%S.000")
    return text.removesuffix(".0") if column == "100 Block" else text


def arcgis_fields(preset: Preset) -> list[dict[str, Any]]:
    """Layer field definitions for every field the preset maps."""
    types = {source: ESRI_TYPE.get(canonical, "esriFieldTypeString")
             for canonical, source in preset.fields.items()}
    return [{"name": name, "type": kind, "alias": name} for name, kind in types.items()]


def arcgis_attributes(preset: Preset, count: int | None = None) -> list[dict[str, Any]]:
    """The real ArcGIS feed sample (repeated with new ids up to `count`) as feature attributes."""
    sample = json.loads(ARCGIS_SAMPLE.read_text(encoding="utf-8"))
    rows = []
    for i in range(count or len(sample)):
        record = sample[i % len(sample)]
        category, _, description = record["title"].partition(" — ")
        offense = datetime.fromisoformat(record["date"]).replace(tzinfo=MEMPHIS)
        values = {
            "row_id": i + 1,
            "incident_id": f"{offense:%y%m}{i + 1:06d}ME",
            "offense_ts": epoch_ms(offense),
            "category": category,
            "description": description or category,
            "nibrs_crime_against": CRIMES_AGAINST[record["cat"]],
            "address": record["place"],
            "precinct": record["beat"],
            "source_updated_ts": epoch_ms(UPDATED_BASE) + i * 1000,
        }
        rows.append({source: values.get(canonical) for canonical, source in preset.fields.items()})
    return rows


def epoch_ms(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() * 1000)


def faithful_arcgis_layer(count: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows and fields of a layer named as public code shows the real one: no EditDate, no
    Reported_Datetime, no Agency_Crime_Type (seen nowhere), and a Full_Address besides."""
    preset = load_preset("memphis-arcgis")
    extra = {"name": "Full_Address", "type": "esriFieldTypeString", "alias": "Full_Address"}
    fields = [f for f in arcgis_fields(preset) if f["name"] not in UNSEEN_ARCGIS] + [extra]
    rows = [{**{k: v for k, v in row.items() if k not in UNSEEN_ARCGIS},
             "Full_Address": f"{row['Street_Address']}, MEMPHIS, TN"} for row in arcgis_attributes(preset, count)]
    return rows, fields


def station_areas_layer() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A precinct-polygon layer like MPD_Station_Areas (name field `prct_code`), with the demo's
    synthetic outlines as its polygons."""
    from memphis_incidents.precincts import synthetic_outlines

    outlines = synthetic_outlines()
    fields = [{"name": "OBJECTID", "type": "esriFieldTypeOID"}, {"name": "prct_code", "type": "esriFieldTypeString"}]
    rows = [{"OBJECTID": n + 1, "prct_code": name.title(), "__geometry__": {"rings": rings}}
            for n, (name, rings) in enumerate(zip(outlines.names, outlines.rings))]
    return rows, fields
