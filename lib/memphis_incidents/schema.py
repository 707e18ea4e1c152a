"""The canonical incident schema and the normaliser from any preset's raw rows to it.

Raw rows keep the source's own field names and value types; `canonical_incidents` maps them through
the preset's field mapping, parses times (UTC plus America/Chicago wall clock) and cleans the dirty
values the publications are known for. Validation and quarantine live in quality.py.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from .config import Preset

LOCAL_TZ = "America/Chicago"
CITY_BOX = {"lat": (34.95, 35.35), "lon": (-90.30, -89.55)}  # generous box around Memphis
MEMPHIS_ALIASES = {"MEMPHIS", "MEMPHIS TN", "MEM", "MPHS", "M", "MEMHPIS", "MEMPHS", "MEMPIS"}
NIBRS_AGAINST = re.compile(r"AGAINST (PERSON|PROPERTY|SOCIETY)S?$")
US_DATETIME = "%m/%d/%Y %I:%M:%S %p"

CANONICAL_SCHEMA = pa.schema([
    ("row_id", pa.string()),
    ("incident_id", pa.string()),
    ("offense_ts_utc", pa.timestamp("us", tz="UTC")),
    ("offense_ts_local", pa.timestamp("us")),
    ("offense_date", pa.date32()),
    ("offense_month", pa.date32()),
    ("reported_ts_utc", pa.timestamp("us", tz="UTC")),
    ("category", pa.string()),
    ("description", pa.string()),
    ("ucr_code", pa.string()),
    ("agency_crime_type", pa.string()),
    ("nibrs_crime_against", pa.string()),
    ("nibrs_group", pa.string()),
    ("precinct", pa.string()),
    ("address", pa.string()),
    ("city", pa.string()),
    ("zip", pa.string()),
    ("latitude", pa.float64()),
    ("longitude", pa.float64()),
    ("geo_status", pa.string()),
    ("source_updated_ts_utc", pa.timestamp("us", tz="UTC")),
    ("batch_id", pa.string()),
    ("row_hash", pa.int64()),
])
CONTENT_COLUMNS = [n for n in CANONICAL_SCHEMA.names if n not in ("batch_id", "row_hash")]
TEXT_FIELDS = ("incident_id", "description", "ucr_code", "agency_crime_type", "address")


def source_column(raw: pd.DataFrame, preset: Preset, name: str) -> pd.Series:
    """The raw column the preset maps to canonical `name`, or all-null if unmapped or absent."""
    field = preset.fields.get(name)
    if field is None or field not in raw.columns:
        return pd.Series(None, index=raw.index, dtype="object")
    return raw[field]


def clean_text(values: pd.Series) -> pd.Series:
    """Strip, collapse inner whitespace; empty becomes null."""
    text = values.astype("string").str.strip().str.replace(r"\s+", " ", regex=True)
    return text.mask(text == "")


def clean_upper(values: pd.Series) -> pd.Series:
    """`clean_text`, upper-cased: for categories, precincts and other coded labels."""
    return clean_text(values).str.upper()


def utc_times(values: pd.Series, timestamps: str) -> pd.Series:
    """Parse source times to tz-aware UTC; unparseable values become NaT."""
    if timestamps == "epoch_ms_utc" or pd.api.types.is_numeric_dtype(values):
        millis = pd.to_numeric(values, errors="coerce")
        in_range = millis.abs() < 9.2e15  # beyond ~year 2262 pandas cannot hold it: NaT
        return pd.to_datetime(millis.where(in_range), unit="ms", utc=True, errors="coerce")
    text = clean_text(values)
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    naive = ~text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
    local = pd.to_datetime(text.where(naive), format="ISO8601", errors="coerce")
    us_style = pd.to_datetime(text.where(naive & local.isna()), format=US_DATETIME, errors="coerce")
    local = local.fillna(us_style)
    as_utc = local_to_utc(local)
    return as_utc.where(naive, parsed)


def local_to_utc(local: pd.Series) -> pd.Series:
    """Memphis wall-clock times to UTC; the repeated fall-back hour is read as standard time."""
    ambiguous = np.zeros(len(local), dtype=bool)
    aware = local.dt.tz_localize(LOCAL_TZ, ambiguous=ambiguous, nonexistent="shift_forward")
    return aware.dt.tz_convert("UTC")


def city_name(values: pd.Series) -> pd.Series:
    """Known spellings of Memphis become MEMPHIS; other cities are kept upper-cased."""
    city = clean_upper(values).str.replace(r"[.,]", "", regex=True)
    return city.mask(city.isin(MEMPHIS_ALIASES), "MEMPHIS")


def zip5(values: pd.Series) -> pd.Series:
    """The five-digit ZIP code ("38118-" and "38118-1234" give "38118"), else null."""
    return clean_text(values).str.extract(r"^(\d{5})", expand=False)


def crime_against(values: pd.Series) -> pd.Series:
    """NIBRS crime-against group from labels like CRIMES AGAINST PERSONS: PERSONS, PROPERTY,
    SOCIETY, or OTHER for any other label (MPD files "All Other Offenses" under "PERSON,
    PROPERTY, OR SOCIETY")."""
    labels = clean_upper(values)
    group = labels.str.extract(NIBRS_AGAINST, expand=False).replace({"PERSON": "PERSONS"})
    return group.mask(group.isna() & labels.notna(), "OTHER")


def geo_status(lat: pd.Series, lon: pd.Series, raw_present: pd.Series) -> pd.Series:
    """Why a point is or is not usable: ok, missing, invalid, zero or outside_city."""
    zero = (lat.abs() < 1e-6) & (lon.abs() < 1e-6)
    inside = lat.between(*CITY_BOX["lat"]) & lon.between(*CITY_BOX["lon"])
    status = np.select(
        [~raw_present, lat.isna() | lon.isna(), zero, ~inside],
        ["missing", "invalid", "zero", "outside_city"],
        default="ok",
    )
    return pd.Series(status, index=lat.index, dtype="string")


def canonical_incidents(raw: pd.DataFrame, preset: Preset, batch_id: str) -> pd.DataFrame:
    """Map raw rows to the canonical columns (one row out per row in, same index)."""
    col = lambda name: source_column(raw, preset, name)  # noqa: E731 - local shorthand
    offense_utc = utc_times(col("offense_ts"), preset.timestamps)
    offense_local = offense_utc.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    lat = pd.to_numeric(col("latitude"), errors="coerce")
    lon = pd.to_numeric(col("longitude"), errors="coerce")
    present = col("latitude").notna() & col("longitude").notna()
    status = geo_status(lat, lon, present)
    out = pd.DataFrame({
        "row_id": clean_text(col("row_id").astype("string")),
        **{name: clean_text(col(name)) for name in TEXT_FIELDS},
        "offense_ts_utc": offense_utc,
        "offense_ts_local": offense_local,
        "offense_date": offense_local.dt.normalize(),
        "offense_month": offense_local.dt.to_period("M").dt.start_time,
        "reported_ts_utc": utc_times(col("reported_ts"), preset.timestamps),
        "category": clean_upper(col("category")).fillna("UNKNOWN"),
        "nibrs_crime_against": crime_against(col("nibrs_crime_against")),
        "nibrs_group": clean_upper(col("nibrs_group")),
        "precinct": clean_upper(col("precinct")),
        "city": city_name(col("city")),
        "zip": zip5(col("zip")),
        "latitude": lat.where(status == "ok"),
        "longitude": lon.where(status == "ok"),
        "geo_status": status,
        "source_updated_ts_utc": utc_times(col("source_updated_ts"), preset.timestamps),
        "batch_id": batch_id,
    }, index=raw.index)
    out["description"] = clean_upper(out["description"])
    out["row_hash"] = content_hash(out)
    return out[CANONICAL_SCHEMA.names]


def content_hash(frame: pd.DataFrame) -> pd.Series:
    """A stable 64-bit hash of each row's content, to tell changed rows from unchanged ones."""
    hashed = pd.util.hash_pandas_object(frame[CONTENT_COLUMNS].astype("string"), index=False)
    return hashed.astype("uint64").astype("int64")


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A canonical frame as an Arrow table with exactly the canonical types."""
    return pa.Table.from_pandas(frame[CANONICAL_SCHEMA.names], schema=CANONICAL_SCHEMA,
                                preserve_index=False)
