"""The canonical incident schema and the normaliser from any preset's raw rows to it.

Raw rows keep the source's own field names and value types; `canonical_incidents` maps them through
the preset's field mapping, parses times (UTC plus America/Chicago wall clock) and cleans the dirty
values the publications are known for. Validation and quarantine live in quality.py.
"""
from __future__ import annotations

from typing import Callable

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import Preset
from .localtime import utc_of, wall_clock

CITY_BOX = {"lat": (34.95, 35.35), "lon": (-90.30, -89.55)}  # generous box around Memphis
MEMPHIS_ALIASES = {"MEMPHIS", "MEMPHIS TN", "MEM", "MPHS", "M", "MEMHPIS", "MEMPHS", "MEMPIS"}
# Text is cleaned with Arrow's kernels (RE2), spelled to match Python's own rules: the characters
# str.strip() and re's \s treat as whitespace (U+3000 is the last), and \d as any Unicode digit.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
WHITESPACE_RUNS = f"[{WHITESPACE}]+"
UNEVEN_WHITESPACE = f"[{WHITESPACE.replace(' ', '')}]|  "  # anything but single spaces
ZIP5 = r"^\p{Nd}{5}"
NIBRS_AGAINST = r"AGAINST (?P<group>PERSON|PROPERTY|SOCIETY)S?$"
OFFSET_SUFFIX = r"(?:Z|[+-]\p{Nd}\p{Nd}:?\p{Nd}\p{Nd})$"
INGEST_PREFIX = "_ingest_"  # the raw lake's own columns (_ingest_batch_id, _ingest_at); the rest are the source's
US_DATETIME = "%m/%d/%Y %I:%M:%S %p"
GEO_STATUS = dict(  # geo_status: what it means for a reader
    ok="located inside the Memphis area (on the map)",
    missing="no coordinates published",
    invalid="coordinates not readable",
    zero="coordinates at 0, 0 (a placeholder)",
    outside_city="coordinates outside the Memphis area",
)

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
# The content as DuckDB hashes it: text as large_string, as pandas holds it (no copy; same hash).
CONTENT_SCHEMA = pa.schema([CANONICAL_SCHEMA.field(n).with_type(pa.large_string())
                            if CANONICAL_SCHEMA.field(n).type == pa.string() else CANONICAL_SCHEMA.field(n)
                            for n in CONTENT_COLUMNS])
TEXT_FIELDS = ("incident_id", "ucr_code", "agency_crime_type", "address")
LABEL_FIELDS = ("description", "nibrs_group", "precinct")


SPARK_TYPES = {pa.string(): "STRING", pa.float64(): "DOUBLE", pa.int64(): "BIGINT", pa.date32(): "DATE",
               pa.timestamp("us"): "TIMESTAMP_NTZ", pa.timestamp("us", tz="UTC"): "TIMESTAMP"}


def spark_schema(schema: pa.Schema) -> str:
    """An Arrow schema as Spark DDL, to read Parquet without an inference job (and without pyspark).

    Timestamps without a zone (local wall clock) are TIMESTAMP_NTZ, as Spark reads them from Parquet.
    """
    return ", ".join(f"`{field.name}` {SPARK_TYPES[field.type]}" for field in schema)


def source_column(raw: pd.DataFrame, preset: Preset, name: str) -> pd.Series:
    """The raw column the preset maps to canonical `name`, or all-null if unmapped or absent."""
    field = preset.fields.get(name)
    if field is None or field not in raw.columns:
        return pd.Series(None, index=raw.index, dtype="object")
    return raw[field]


def text_array(values: pd.Series) -> pa.Array:
    """A column as one Arrow text array; numbers are spelled as pandas' astype("string") spells them."""
    text = pa.array(values.astype("string"))
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def text_series(text: pa.Array, index: pd.Index) -> pd.Series:
    """Arrow text as a pandas "string" column, without a copy."""
    return pd.Series(pd.arrays.ArrowStringArray(text), index=index)


def cleaned(text: pa.Array) -> pa.Array:
    """Strip, collapse inner whitespace runs to one space; empty becomes null (Arrow kernels).

    The regex replacement runs only on the few values that need it (it is the slow kernel).
    """
    text = pc.utf8_trim_whitespace(text)  # Arrow's Unicode whitespace is Python's
    uneven = pc.match_substring_regex(text, UNEVEN_WHITESPACE).fill_null(False)
    if pc.any(uneven).as_py():
        even = pc.replace_substring_regex(text.filter(uneven), WHITESPACE_RUNS, " ")
        text = pc.replace_with_mask(text, uneven, even)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)


def row_key(values: pd.Series) -> pd.Series:
    """A source row id as text, only stripped (inner characters are part of the key); empty is null.

    Whole numbers keep no decimal part: an integer id column arrives as floats when one row lacks
    its id or sends it as 5.0, and the id must still be "1", not "1.0" (or every row would be new).
    """
    if pd.api.types.is_float_dtype(values):
        whole = (values == values.round()) & (values.abs() < 2**53)
        values = values.astype("string").mask(whole, values.where(whole).astype("Int64").astype("string"))
    text = pc.utf8_trim_whitespace(text_array(values))
    return text_series(pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text), values.index)


def per_distinct(transform: Callable[[pa.Array], pa.Array], values: pd.Series) -> pd.Series:
    """`transform` run once per distinct value of a text column and spread back over its rows
    (labels repeat a few thousand values over millions of rows)."""
    encoded = pc.dictionary_encode(text_array(values))
    return text_series(transform(encoded.dictionary).take(encoded.indices), values.index)


def upper_cleaned(text: pa.Array) -> pa.Array:
    return pc.utf8_upper(cleaned(text))


def clean_text(values: pd.Series) -> pd.Series:
    """Strip, collapse inner whitespace; empty becomes null."""
    return per_distinct(cleaned, values)


def clean_upper(values: pd.Series) -> pd.Series:
    """`clean_text`, upper-cased: for categories, precincts and other coded labels."""
    return per_distinct(upper_cleaned, values)


def utc_times(values: pd.Series, timestamps: str) -> pd.Series:
    """Parse source times to tz-aware UTC, to the microsecond the table keeps (a fractional epoch
    or a nanosecond time must not fail the load); unparseable values become NaT."""
    if timestamps == "epoch_ms_utc" or pd.api.types.is_numeric_dtype(values):
        millis = pd.to_numeric(values, errors="coerce")
        in_range = millis.abs() < 9.2e12  # beyond ~year 2262 a nanosecond time cannot hold it: NaT
        return pd.to_datetime(millis.where(in_range), unit="ms", utc=True, errors="coerce").dt.floor("us")
    text = clean_text(values)
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    with_offset = pc.match_substring_regex(pa.array(text.array), OFFSET_SUFFIX).fill_null(False)
    naive = ~pd.Series(with_offset.to_numpy(zero_copy_only=False), index=text.index)
    local = pd.to_datetime(text.where(naive), format="ISO8601", errors="coerce")
    us_style = pd.to_datetime(text.where(naive & local.isna()), format=US_DATETIME, errors="coerce")
    local = local.fillna(us_style)
    as_utc = utc_of(local)
    return as_utc.where(naive, parsed).dt.floor("us")


def city_name(values: pd.Series) -> pd.Series:
    """Known spellings of Memphis become MEMPHIS; other cities are kept upper-cased."""
    return per_distinct(city_of, values)


def city_of(text: pa.Array) -> pa.Array:
    city = pc.replace_substring_regex(upper_cleaned(text), "[.,]", "")
    return pc.if_else(pc.is_in(city, pa.array(sorted(MEMPHIS_ALIASES), city.type)), "MEMPHIS", city)


def zip5(values: pd.Series) -> pd.Series:
    """The five-digit ZIP code ("38118-" and "38118-1234" give "38118"), else null."""
    return per_distinct(zip_of, values)


def zip_of(text: pa.Array) -> pa.Array:
    text = cleaned(text)
    return pc.if_else(pc.match_substring_regex(text, ZIP5), pc.utf8_slice_codeunits(text, 0, 5), None)


def crime_against(values: pd.Series) -> pd.Series:
    """NIBRS crime-against group from labels like CRIMES AGAINST PERSONS: PERSONS, PROPERTY,
    SOCIETY, or OTHER for any other label (MPD files "All Other Offenses" under "PERSON,
    PROPERTY, OR SOCIETY")."""
    return per_distinct(group_of, values)


def group_of(labels: pa.Array) -> pa.Array:
    labels = upper_cleaned(labels)
    group = pc.struct_field(pc.extract_regex(labels, NIBRS_AGAINST), [0])
    group = pc.if_else(pc.equal(group, "PERSON"), "PERSONS", group)
    return pc.if_else(pc.and_(pc.is_null(group), pc.is_valid(labels)), "OTHER", group)


def geo_status(lat: pd.Series, lon: pd.Series, raw_present: pd.Series) -> pd.Series:
    """Why a point is or is not usable: ok, missing, invalid, zero or outside_city."""
    zero = (lat.abs() < 1e-6) & (lon.abs() < 1e-6)
    inside = lat.between(*CITY_BOX["lat"]) & lon.between(*CITY_BOX["lon"])
    code = np.select([~raw_present, lat.isna() | lon.isna(), zero, ~inside], [1, 2, 3, 4], default=0)
    return text_series(pa.array(list(GEO_STATUS), pa.large_string()).take(code), lat.index)


def canonical_incidents(raw: pd.DataFrame, preset: Preset, batch_id: str) -> pd.DataFrame:
    """Map raw rows to the canonical columns (one row out per row in, same index)."""
    col = lambda name: source_column(raw, preset, name)  # noqa: E731 - local shorthand
    offense_utc = utc_times(col("offense_ts"), preset.timestamps)
    offense_local = wall_clock(offense_utc)
    lat = pd.to_numeric(col("latitude"), errors="coerce")
    lon = pd.to_numeric(col("longitude"), errors="coerce")
    present = col("latitude").notna() & col("longitude").notna()
    status = geo_status(lat, lon, present)
    out = pd.DataFrame({
        "row_id": row_key(col("row_id")),
        **{name: clean_text(col(name)) for name in TEXT_FIELDS},
        **{name: clean_upper(col(name)) for name in LABEL_FIELDS},
        "offense_ts_utc": offense_utc,
        "offense_ts_local": offense_local,
        "offense_date": offense_local.dt.normalize(),
        "offense_month": offense_local.dt.to_period("M").dt.start_time,
        "reported_ts_utc": utc_times(col("reported_ts"), preset.timestamps),
        "category": clean_upper(col("category")).fillna("UNKNOWN"),
        "nibrs_crime_against": crime_against(col("nibrs_crime_against")),
        "city": city_name(col("city")),
        "zip": zip5(col("zip")),
        "latitude": lat.where(status == "ok"),
        "longitude": lon.where(status == "ok"),
        "geo_status": status,
        "source_updated_ts_utc": utc_times(col("source_updated_ts"), preset.timestamps),
        "batch_id": batch_id,
    }, index=raw.index)
    out["row_hash"] = content_hash(out)
    return out[CANONICAL_SCHEMA.names]


def content_hash(frame: pd.DataFrame) -> pd.Series:
    """A stable 64-bit hash of each row's content, to tell changed rows from unchanged ones.

    DuckDB hashes the canonical Arrow values (vectorised, on every core), so the hash depends on
    the values only, never on how pandas happens to type a column.
    """
    content = pa.Table.from_pandas(frame[CONTENT_COLUMNS], schema=CONTENT_SCHEMA, preserve_index=False)
    with duckdb.connect() as con:
        con.register("content", content)
        hashed = con.sql(f"SELECT hash({', '.join(CONTENT_COLUMNS)}) FROM content").fetchnumpy()
    return pd.Series(next(iter(hashed.values())).view(np.int64), index=frame.index)


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A canonical frame as an Arrow table with exactly the canonical types."""
    return pa.Table.from_pandas(frame[CANONICAL_SCHEMA.names], schema=CANONICAL_SCHEMA,
                                preserve_index=False)
