"""Synthetic demo source: an offline stand-in for the ArcGIS publication, in its raw shape.

`demo_snapshot(rows, seed, day)` is the table the imaginary layer holds on the morning of
DEMO_ANCHOR + day: `rows` offense rows from 2020-01-01 up to DEMO_ANCHOR, then one daily update per
day (rows appended, a few rows edited). Values and frequencies come from demo_vocabulary.json,
derived once from real samples; realistic dirt is added at small, fixed rates. No row is a real
incident. Everything is vectorised and deterministic in (rows, seed, day).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Preset
from .base import Pull, iso_utc, parse_watermark
from .fields import Incremental, SourceSchema, check_mapping

DEMO_ANCHOR = date(2026, 11, 20)
SPAN_START = date(2020, 1, 1)
PUBLISH_HOUR = 6
PAGE_ROWS = 200_000
UPDATED_FIELD = "EditDate"
VOCABULARY_FILE = "demo_vocabulary.json"

RAW_SCHEMA = pa.schema([
    ("ObjectId", pa.int64()),
    ("Crime_ID", pa.string()),
    ("Offense_Datetime", pa.int64()),
    ("Reported_Datetime", pa.int64()),
    ("Agency_Crime_Type", pa.string()),
    ("UCR_Incident_Code", pa.string()),
    ("UCR_Category", pa.string()),
    ("UCR_Description", pa.string()),
    ("NIBRS_Offense_Group", pa.string()),
    ("NIBRS_Group", pa.string()),
    ("Street_Address", pa.string()),
    ("City", pa.string()),
    ("ZIP_Code", pa.string()),
    ("Precinct", pa.string()),
    ("Latitude", pa.float64()),
    ("Longitude", pa.float64()),
    ("EditDate", pa.int64()),
])
OFFENSE_FIELDS = ("Agency_Crime_Type", "UCR_Incident_Code", "UCR_Description", "NIBRS_Offense_Group", "NIBRS_Group")

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
CST_MS = 6 * HOUR_MS
MEMPHIS_BOX = (35.00, 35.26, -90.10, -89.72)  # lat min, lat max, lon min, lon max
SPREAD_DEGREES = (0.025, 0.03)  # lat, lon standard deviation around a station-area centre
ROWS_PER_INCIDENT_P = (0.902, 0.088, 0.008, 0.002)  # 1, 2, 3, 4 offense rows: 1.11 on average
SAME_OFFENSE_SHARE = 0.4  # further offense rows of an incident that repeat its first offense
BLOCK_SHIFTS = tuple(range(-300, 301, 100))  # each sample address also appears a few blocks away
EDITS_PER_NEW_ROW = 0.1
RECLASSIFIED_SHARE = 0.6  # the other edits correct the address
RECENT_EDIT_SPAN = 0.02  # edited rows lie about this share of all rows back from the newest (~7 weeks)


@dataclass(frozen=True)
class DirtRates:
    """Share of rows (or of incidents, for incident-level fields) that carry each kind of dirt."""

    duplicates: float = 0.003
    zero_coordinates: float = 0.01
    outside_coordinates: float = 0.005
    null_coordinates: float = 0.02
    future_offense: float = 0.0002
    ancient_offense: float = 0.0002
    null_offense: float = 0.0005
    trailing_space: float = 0.03
    odd_casing: float = 0.01
    null_crime_id: float = 0.0002
    null_precinct: float = 0.0006
    zip_dash: float = 0.02
    zip_plus_four: float = 0.02
    null_zip: float = 0.01


DIRT = DirtRates()
FUTURE_SHIFT_MS = (date(2099, 1, 1) - SPAN_START).days * DAY_MS  # moves an offense into 2099 or so
ANCIENT_OFFENSE_MS = (datetime(1900, 1, 1, 6, tzinfo=timezone.utc) - EPOCH) // timedelta(milliseconds=1)


def demo_snapshot(rows: int, seed: int, day: int = 0) -> pa.Table:
    """The raw table the imaginary ArcGIS layer holds on the morning of DEMO_ANCHOR + `day`."""
    table = first_snapshot(rows, seed)
    for later in range(1, day + 1):
        table = next_snapshot(table, rows, seed, later)
    return table


def first_snapshot(rows: int, seed: int) -> pa.Table:
    """Day 0: exactly `rows` rows (duplicates included) for offenses since 2020-01-01."""
    if rows <= 0:
        return RAW_SCHEMA.empty_table()
    rng = day_rng(seed, 0)
    duplicates = round(rows * DIRT.duplicates)
    sizes = rows_per_incident(rng, rows - duplicates)
    offense = history_offense_ms(rng, sizes.size)
    reported = whole_minutes(capped_ms(rng, offense, report_lag_ms(rng, sizes.size), publication_ms(0)))
    return offense_rows(rng, sizes, offense, reported, 0, None, duplicates)


def next_snapshot(table: pa.Table, rows: int, seed: int, day: int) -> pa.Table:
    """The snapshot after day `day`'s update: a few rows edited, the day's new reports appended."""
    rng = day_rng(seed, day)
    new_rows = daily_row_count(rng, rows)
    if new_rows == 0:
        return table
    edited = with_edits(rng, table, max(1, round(new_rows * EDITS_PER_NEW_ROW)), day)
    duplicates = round(new_rows * DIRT.duplicates)
    sizes = rows_per_incident(rng, new_rows - duplicates)
    reported = recent_report_ms(rng, sizes.size, day)
    offense = reported - report_lag_ms(rng, sizes.size)
    new = offense_rows(rng, sizes, offense, reported, day, table, duplicates)
    return pa.concat_tables([edited, new])


def day_rng(seed: int, day: int) -> np.random.Generator:
    """The random generator of one day's update (day 0 = the initial load)."""
    return np.random.default_rng([seed, day])


def daily_row_count(rng: np.random.Generator, rows: int) -> int:
    """New rows one daily update appends: about `rows` / days of the initial span, at least one."""
    if rows <= 0:
        return 0
    return max(1, int(rng.poisson(rows / (DEMO_ANCHOR - SPAN_START).days)))


def rows_per_incident(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Offense rows of each incident, summing to exactly `rows`."""
    sizes = rng.choice(len(ROWS_PER_INCIDENT_P), size=rows, p=ROWS_PER_INCIDENT_P) + 1
    ends = np.cumsum(sizes)
    last = int(np.searchsorted(ends, rows))
    sizes = sizes[: last + 1]
    sizes[-1] -= ends[last] - rows
    return sizes


# --- time ---------------------------------------------------------------------------------------

@functools.cache
def dst_bounds_utc_ms() -> np.ndarray:
    """UTC instants where Memphis enters and leaves daylight time, 2007-2100 (the US rule since 2007)."""
    bounds = []
    for year in range(2007, 2101):
        march = 8 + (6 - date(year, 3, 8).weekday()) % 7  # second Sunday, 02:00 CST = 08:00Z
        november = 1 + (6 - date(year, 11, 1).weekday()) % 7  # first Sunday, 02:00 CDT = 07:00Z
        bounds += [datetime(year, 3, march, 8), datetime(year, 11, november, 7)]
    return np.array(bounds, dtype="datetime64[ms]").astype(np.int64)


def wall_clock_ms(utc_ms: np.ndarray) -> np.ndarray:
    """Memphis local wall-clock time (as naive epoch ms) of UTC epoch ms."""
    daylight = np.searchsorted(dst_bounds_utc_ms(), utc_ms, side="right") % 2
    return utc_ms - CST_MS + daylight * HOUR_MS


def utc_ms(local_ms: np.ndarray) -> np.ndarray:
    """UTC epoch ms of Memphis wall-clock times (ambiguous fall-back hours read as standard time)."""
    daylight = np.searchsorted(dst_bounds_utc_ms(), local_ms + CST_MS, side="right") % 2
    return local_ms + CST_MS - daylight * HOUR_MS


def publication_ms(day: int) -> int:
    """UTC epoch ms of the 06:00 Memphis publication on DEMO_ANCHOR + `day`."""
    local = np.datetime64(DEMO_ANCHOR + timedelta(days=day), "ms") + np.timedelta64(PUBLISH_HOUR, "h")
    return int(utc_ms(np.array([local.astype(np.int64)]))[0])


def publication_time(day: int) -> datetime:
    """The 06:00 Memphis publication on DEMO_ANCHOR + `day`, as an aware UTC datetime."""
    return from_epoch_ms(publication_ms(day))


def from_epoch_ms(ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds."""
    return EPOCH + timedelta(milliseconds=ms)


def epoch_ms(moment: datetime) -> int:
    """UTC epoch milliseconds of an aware datetime."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def day_weights(days: np.ndarray) -> np.ndarray:
    """Probability of each local date: seasonality, weekday effect and the yearly level."""
    time = vocabulary()["time"]
    months = days.astype("datetime64[M]").astype(np.int64) % 12
    weekdays = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    years = sorted(time["year_levels"])
    midyears = np.array([f"{year}-07-02" for year in years], dtype="datetime64[D]").astype(np.int64)
    level = np.interp(days.astype(np.int64), midyears, [time["year_levels"][y] for y in years])
    weights = np.take(time["month_weights"], months) * np.take(time["weekday_weights"], weekdays) * level
    return weights / weights.sum()


def time_of_day_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Local time of day: hours on the Memphis curve, minutes often rounded to :00 or :30."""
    hours = rng.choice(24, size=n, p=hour_probabilities())
    rounding = rng.random(n)
    minutes = np.where(rounding < 0.4, 0, np.where(rounding < 0.5, 30, rng.integers(0, 60, n)))
    return hours * HOUR_MS + minutes * MINUTE_MS


def history_offense_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """UTC offense times of `n` incidents spread over SPAN_START .. the day before DEMO_ANCHOR."""
    days = np.arange(np.datetime64(SPAN_START), np.datetime64(DEMO_ANCHOR))
    picked = rng.choice(days.size, size=n, p=day_weights(days))
    return utc_ms(days[picked].astype("datetime64[ms]").astype(np.int64) + time_of_day_ms(rng, n))


def recent_report_ms(rng: np.random.Generator, n: int, day: int) -> np.ndarray:
    """UTC report times between the previous publication and day `day`'s, busier in the afternoon."""
    start, end = publication_ms(day - 1), publication_ms(day)
    hours = rng.choice(24, size=n, p=np.roll(hour_probabilities(), -PUBLISH_HOUR))
    return np.minimum(start + hours * HOUR_MS + rng.integers(0, 60, n) * MINUTE_MS, end - MINUTE_MS)


def report_lag_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Offense-to-report delay: mostly under a few hours, a fifth takes days (capped at a year)."""
    slow = rng.random(n) < 0.2
    median = np.where(slow, 1.5 * DAY_MS, 50 * MINUTE_MS)
    spread = np.where(slow, 1.2, 0.8)
    return whole_minutes(np.minimum(median * np.exp(spread * rng.standard_normal(n)), 365 * DAY_MS))


def edit_lag_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Report-to-last-edit delay: minutes to a day, median three hours."""
    return (3 * HOUR_MS * np.exp(rng.standard_normal(n))).astype(np.int64)


def whole_minutes(ms: np.ndarray) -> np.ndarray:
    """Times or delays truncated to the minute, as reports record them."""
    return (ms // MINUTE_MS * MINUTE_MS).astype(np.int64)


def capped_ms(rng: np.random.Generator, start: np.ndarray, lag: np.ndarray, cap: int) -> np.ndarray:
    """`start + lag`, or a random moment between `start` and `cap` where that would pass `cap`."""
    late = start + lag > cap
    squeezed = start + ((cap - start) * rng.random(start.size)).astype(np.int64)
    return np.where(late, squeezed, start + lag)


# --- vocabulary ---------------------------------------------------------------------------------

@functools.cache
def vocabulary() -> dict[str, Any]:
    """The shipped value lists and frequencies (demo_vocabulary.json)."""
    text = resources.files(__package__).joinpath(VOCABULARY_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def hour_probabilities() -> np.ndarray:
    """Probability of each local hour 0-23."""
    weights = np.array(vocabulary()["time"]["hour_weights"])
    return weights / weights.sum()


@functools.cache
def offense_types() -> pa.Table:
    """Every offense type the demo draws (one per agency crime type) in raw fields, with probability p."""
    types = []
    for offense in vocabulary()["offenses"]:
        description_total = sum(d["weight"] for d in offense["descriptions"])
        for description in offense["descriptions"]:
            agency_total = sum(description["agency_crime_types"].values())
            for agency, weight in description["agency_crime_types"].items():
                share = description["weight"] / description_total * weight / agency_total
                types.append({
                    "Agency_Crime_Type": agency,
                    "UCR_Incident_Code": description["ucr_code"],
                    "UCR_Category": offense["category"],
                    "UCR_Description": description["description"],
                    "NIBRS_Offense_Group": offense["crime_against"],
                    "NIBRS_Group": offense["nibrs_group"],
                    "p": offense["weight"] * share,
                })
    total = sum(t["p"] for t in types)
    return pa.Table.from_pylist([{**t, "p": t["p"] / total} for t in types])


@functools.cache
def category_variants() -> pa.Array:
    """Per offense type: its category as published, with a trailing space, and in odd casing."""
    categories = offense_types()["UCR_Category"].to_pylist()
    return pa.array([form for c in categories for form in (c, c + " ", c.title())])


@dataclass(frozen=True)
class Places:
    """Station areas with their weights, centres, addresses (with block variants) and zip codes."""

    names: list[str]
    p: np.ndarray
    centres: np.ndarray
    addresses: pa.Array
    address_start: np.ndarray
    address_count: np.ndarray
    zips: pa.Array
    zip_start: np.ndarray
    zip_count: np.ndarray


@functools.cache
def places() -> Places:
    """The station areas of the vocabulary, flattened for vectorised draws."""
    precincts = vocabulary()["precincts"]
    names = list(precincts)
    weights = np.array([precincts[n]["weight"] for n in names], dtype=float)
    addresses = [precincts[n]["addresses"] for n in names]
    zips = [precincts[n]["zips"] for n in names]
    return Places(
        names=names,
        p=weights / weights.sum(),
        centres=np.array([precincts[n]["centre"] for n in names]),
        addresses=pa.array([v for group in addresses for a in group for v in block_variants(a)]),
        address_start=np.cumsum([0] + [len(g) for g in addresses[:-1]]),
        address_count=np.array([len(g) for g in addresses]),
        zips=pa.array([z for group in zips for z in group]),
        zip_start=np.cumsum([0] + [len(g) for g in zips[:-1]]),
        zip_count=np.array([len(g) for g in zips]),
    )


def block_variants(address: str) -> list[str]:
    """A 100-block address moved by each of BLOCK_SHIFTS (an intersection stays as it is)."""
    block, _, street = address.partition(" ")
    if not block.isdigit():
        return [address] * len(BLOCK_SHIFTS)
    return [f"{max(0, int(block) + shift)} {street}" for shift in BLOCK_SHIFTS]


# --- incidents ----------------------------------------------------------------------------------

def offense_rows(
    rng: np.random.Generator,
    sizes: np.ndarray,
    offense: np.ndarray,
    reported: np.ndarray,
    day: int,
    earlier: pa.Table | None,
    duplicates: int,
) -> pa.Table:
    """Raw offense rows of new incidents (in report order), ObjectIds continuing after `earlier`."""
    order = np.argsort(reported, kind="stable")
    shared = incidents(rng, offense[order], reported[order], publication_ms(day), earlier)
    incident = np.repeat(np.arange(sizes.size), sizes)
    kind = offense_type_per_row(rng, sizes)
    variant = category_variant(rng, incident.size)
    first_id = 1 if earlier is None else pc.max(earlier["ObjectId"]).as_py() + 1
    object_id = np.arange(first_id, first_id + incident.size)
    keep = with_copies(rng, incident.size, duplicates)
    shared = shared.take(incident[keep])
    types = offense_types().take(kind[keep])
    columns = {name: shared[name] for name in shared.column_names}
    columns.update({name: types[name] for name in OFFENSE_FIELDS})
    columns["UCR_Category"] = category_variants().take(kind[keep] * 3 + variant[keep])
    columns["ObjectId"] = pa.array(object_id[keep])
    return pa.table([columns[field.name] for field in RAW_SCHEMA], schema=RAW_SCHEMA)


def incidents(
    rng: np.random.Generator, offense: np.ndarray, reported: np.ndarray, cutoff: int, earlier: pa.Table | None
) -> pa.Table:
    """Incident-level raw fields: id, times, place and coordinates, shared by its offense rows."""
    n = offense.size
    return pa.table({
        "Crime_ID": crime_ids(rng, reported, earlier),
        "Offense_Datetime": dirty_offense_times(rng, offense),
        "Reported_Datetime": pa.array(reported),
        "EditDate": pa.array(capped_ms(rng, reported, edit_lag_ms(rng, n), cutoff)),
        **place_fields(rng, n),
    })


def crime_ids(rng: np.random.Generator, reported: np.ndarray, earlier: pa.Table | None) -> pa.Array:
    """Crime_IDs like 1803013551ME: YYMM of the (local) report, a sequence within the month, ME."""
    months = wall_clock_ms(reported).astype("datetime64[ms]").astype("datetime64[M]")
    month_codes, month = np.unique(months, return_inverse=True)
    prefixes = [text[2:4] + text[5:7] for text in np.datetime_as_string(month_codes)]
    gaps = rng.integers(1, sequence_gap_limit(month), month.size)
    before = np.array([last_sequence(earlier, p) for p in prefixes], dtype=np.int64)
    sequence = before[month] + running_within(gaps, month)
    text = pc.binary_join_element_wise(
        pa.array(prefixes, pa.string()).take(month),
        pc.utf8_lpad(pa.array(sequence).cast(pa.string()), 6, "0"),
        "ME",
        "",
    )
    return pc.if_else(pa.array(rng.random(month.size) < DIRT.null_crime_id), None, text)


def sequence_gap_limit(month: np.ndarray) -> int:
    """Upper bound (exclusive) of the step between sequence numbers, so a month stays within 6 digits."""
    return int(np.clip(900_000 // np.bincount(month).max(), 2, 10))


def running_within(steps: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running total of `steps` that restarts wherever the sorted `group` changes."""
    running = np.cumsum(steps)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return running - np.repeat(running[starts] - steps[starts], np.diff(np.r_[starts, group.size]))


def last_sequence(table: pa.Table | None, prefix: str) -> int:
    """Highest Crime_ID sequence number already used in the month `prefix` (YYMM), 0 if none."""
    if table is None:
        return 0
    ids = table["Crime_ID"].filter(pc.starts_with(table["Crime_ID"], prefix))
    if len(ids) == 0:
        return 0
    return pc.max(pc.utf8_slice_codeunits(ids, 4, 10).cast(pa.int64())).as_py()


def dirty_offense_times(rng: np.random.Generator, offense: np.ndarray) -> pa.Array:
    """Offense times with a few far in the future, at 1900-01-01, or missing."""
    draw = rng.random(offense.size)
    future = draw < DIRT.future_offense
    ancient = (draw >= DIRT.future_offense) & (draw < DIRT.future_offense + DIRT.ancient_offense)
    missing = draw >= 1 - DIRT.null_offense
    values = np.where(future, offense + FUTURE_SHIFT_MS, np.where(ancient, ANCIENT_OFFENSE_MS, offense))
    return pa.array(values, mask=missing)


def place_fields(rng: np.random.Generator, n: int) -> dict[str, pa.Array]:
    """Address, city, zip, precinct and coordinates of `n` incidents, clustered by station area."""
    where = places()
    area = rng.choice(len(where.names), size=n, p=where.p)
    address = where.address_start[area] + (rng.random(n) * where.address_count[area]).astype(np.int64)
    block = rng.integers(0, len(BLOCK_SHIFTS), n)
    zip_code = where.zip_start[area] + (rng.random(n) * where.zip_count[area]).astype(np.int64)
    latitude, longitude = coordinates(rng, where.centres[area])
    return {
        "Street_Address": where.addresses.take(address * len(BLOCK_SHIFTS) + block),
        "City": cities(rng, n),
        "ZIP_Code": dirty_zips(rng, where.zips.take(zip_code)),
        "Precinct": precinct_labels(rng, area),
        "Latitude": latitude,
        "Longitude": longitude,
    }


def coordinates(rng: np.random.Generator, centres: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Block-level (3-decimal) coordinates around each centre, with 0,0, out-of-city and null dirt."""
    n = len(centres)
    lat_min, lat_max, lon_min, lon_max = MEMPHIS_BOX
    lat = np.clip(centres[:, 0] + rng.normal(0, SPREAD_DEGREES[0], n), lat_min, lat_max)
    lon = np.clip(centres[:, 1] + rng.normal(0, SPREAD_DEGREES[1], n), lon_min, lon_max)
    outside_lat = np.where(rng.random(n) < 0.5, rng.uniform(34.60, 34.95, n), rng.uniform(35.30, 35.60, n))
    outside_lon = rng.uniform(-90.40, -89.40, n)
    draw = rng.random(n)
    zero = draw < DIRT.zero_coordinates
    outside = (draw >= DIRT.zero_coordinates) & (draw < DIRT.zero_coordinates + DIRT.outside_coordinates)
    missing = draw >= 1 - DIRT.null_coordinates
    lat = np.where(zero, 0.0, np.where(outside, outside_lat, lat)).round(3)
    lon = np.where(zero, 0.0, np.where(outside, outside_lon, lon)).round(3)
    return pa.array(lat, mask=missing), pa.array(lon, mask=missing)


def cities(rng: np.random.Generator, n: int) -> pa.Array:
    """City as typed on the report: mostly MEMPHIS, sometimes Memphis, M, mphs, a trailing space or null."""
    spellings = vocabulary()["city_spellings"]
    weights = np.array([w for _, w in spellings], dtype=float)
    picked = rng.choice(len(spellings), size=n, p=weights / weights.sum())
    return pa.array([s for s, _ in spellings], pa.string()).take(picked)


def dirty_zips(rng: np.random.Generator, zips: pa.Array) -> pa.Array:
    """Zip codes with some written 38118-, some as ZIP+4 38118-1234, some missing."""
    draw = rng.random(len(zips))
    dash = draw < DIRT.zip_dash
    plus_four = (draw >= DIRT.zip_dash) & (draw < DIRT.zip_dash + DIRT.zip_plus_four)
    suffix = pc.utf8_lpad(pa.array(rng.integers(0, 10_000, len(zips))).cast(pa.string()), 4, "0")
    written = pc.if_else(pa.array(dash), pc.binary_join_element_wise(zips, "-", ""), zips)
    written = pc.if_else(pa.array(plus_four), pc.binary_join_element_wise(zips, suffix, "-"), written)
    return pc.if_else(pa.array(draw >= 1 - DIRT.null_zip), None, written)


def precinct_labels(rng: np.random.Generator, area: np.ndarray) -> pa.Array:
    """The station name, or now and then a special unit (OCU, STIS, ...), a blank or null."""
    units = vocabulary()["special_units"]
    unit_p = np.array(list(units.values())) / 100_000
    labels = pa.array(places().names + list(units) + [None], pa.string())
    p = np.r_[1 - unit_p.sum() - DIRT.null_precinct, unit_p, DIRT.null_precinct]
    unit = rng.choice(p.size, size=area.size, p=p)
    return labels.take(np.where(unit == 0, area, len(places().names) + unit - 1))


def offense_type_per_row(rng: np.random.Generator, sizes: np.ndarray) -> np.ndarray:
    """Offense type of each row; an incident's further rows often repeat its first offense."""
    p = offense_types()["p"].to_numpy()
    first = np.repeat(rng.choice(p.size, size=sizes.size, p=p), sizes)
    other = rng.choice(p.size, size=first.size, p=p)
    is_first = np.zeros(first.size, dtype=bool)
    is_first[np.cumsum(sizes) - sizes] = True
    return np.where(is_first | (rng.random(first.size) < SAME_OFFENSE_SHARE), first, other)


def category_variant(rng: np.random.Generator, n: int) -> np.ndarray:
    """0 = category as published, 1 = with a trailing space, 2 = odd casing."""
    draw = rng.random(n)
    odd = draw < DIRT.trailing_space + DIRT.odd_casing
    return np.where(draw < DIRT.trailing_space, 1, np.where(odd, 2, 0))


def with_copies(rng: np.random.Generator, n: int, copies: int) -> np.ndarray:
    """Row positions 0..n-1 with `copies` of them repeated right after themselves (exact duplicates)."""
    repeated = rng.choice(n, size=min(copies, n), replace=False)
    return np.sort(np.concatenate([np.arange(n), repeated]))


# --- daily edits --------------------------------------------------------------------------------

def with_edits(rng: np.random.Generator, table: pa.Table, count: int, day: int) -> pa.Table:
    """`table` with about `count` recent ObjectIds reclassified or given a corrected address."""
    object_ids = table["ObjectId"].to_numpy()
    targets = np.sort(edit_targets(rng, int(object_ids.max()), count))
    reclassify = rng.random(targets.size) < RECLASSIFIED_SHARE
    kind = rng.choice(offense_types().num_rows, size=targets.size, p=offense_types()["p"].to_numpy())
    block = rng.integers(0, 100, targets.size) * 100
    target = np.minimum(np.searchsorted(targets, object_ids), targets.size - 1)  # per row
    hit = targets[target] == object_ids
    retyped, moved = hit & reclassify[target], hit & ~reclassify[target]
    types = offense_types().take(kind[target[retyped]])
    for name in (*OFFENSE_FIELDS, "UCR_Category"):
        table = replaced(table, name, retyped, types[name].combine_chunks())
    addresses = table["Street_Address"].filter(pa.array(moved))
    table = replaced(table, "Street_Address", moved, corrected_addresses(addresses, block[target[moved]]))
    return replaced(table, UPDATED_FIELD, hit, pa.array(np.full(int(hit.sum()), publication_ms(day))))


def edit_targets(rng: np.random.Generator, max_id: int, count: int) -> np.ndarray:
    """About `count` distinct ObjectIds in 1..max_id, mostly from the last weeks' reports."""
    back = rng.exponential(max_id * RECENT_EDIT_SPAN, 2 * count).astype(np.int64)
    drawn = max_id - np.minimum(back, max_id - 1)
    _, first = np.unique(drawn, return_index=True)
    return drawn[np.sort(first)][:count]


def corrected_addresses(addresses: pa.ChunkedArray, blocks: np.ndarray) -> pa.Array:
    """Addresses with their 100-block number replaced (intersections stay as they are)."""
    street = pc.replace_substring_regex(addresses, r"^[0-9]+ ", "")
    moved = pc.binary_join_element_wise(pa.array(blocks).cast(pa.string()), street, " ")
    return pc.if_else(pc.match_substring_regex(addresses, r"^[0-9]+ "), moved, addresses).combine_chunks()


def replaced(table: pa.Table, name: str, mask: np.ndarray, values: pa.Array) -> pa.Table:
    """`table` with column `name` set to `values` (in order) where `mask` is true."""
    index = table.schema.get_field_index(name)
    column = pc.replace_with_mask(table[name], pa.array(mask), values)
    return table.set_column(index, table.schema.field(index), column)


# --- the source ---------------------------------------------------------------------------------

class DemoSource:
    """The Source protocol over `demo_snapshot`: pages of rows edited at or after a watermark."""

    def __init__(self, preset: Preset, rows: int, seed: int, day: int) -> None:
        self.preset = preset
        self.rows = rows
        self.seed = seed
        self.day = day

    @functools.cached_property
    def snapshot(self) -> pa.Table:
        """The whole imaginary layer on the morning of DEMO_ANCHOR + day, generated once."""
        return demo_snapshot(self.rows, self.seed, self.day)

    def rows_since(self, since: str | None) -> pa.Table:
        """The snapshot's rows with EditDate at or after `since`, in ObjectId order."""
        if since is None:
            return self.snapshot
        edited = self.snapshot[UPDATED_FIELD]
        return self.snapshot.filter(pc.greater_equal(edited, epoch_ms(parse_watermark(since))))

    @property
    def inspected(self) -> SourceSchema:
        """The imaginary layer has every field the ArcGIS preset maps, and an edit date."""
        fields = RAW_SCHEMA.names
        mode = Incremental("edit date", UPDATED_FIELD, f"the demo layer's edit date {UPDATED_FIELD}")
        return SourceSchema(tuple(check_mapping(self.preset, dict.fromkeys(fields), {})), mode,
                            "the demo generator's raw schema", tuple(fields))

    @property
    def schema(self) -> SourceSchema:
        return self.inspected

    def sample(self) -> dict[str, Any] | None:
        return self.snapshot.slice(0, 1).to_pylist()[0] if self.snapshot.num_rows else None

    def pull(self, since: str | None) -> Pull:
        """Pages of at most PAGE_ROWS rows, exact duplicates included, as a server would send them."""
        table = self.rows_since(since)
        pages = [table.slice(start, PAGE_ROWS) for start in range(0, table.num_rows, PAGE_ROWS)]
        return Pull(pages, table.num_rows)

    def count(self, since: str | None) -> int:
        return self.rows_since(since).num_rows

    def watermark_of(self, table: pa.Table) -> str | None:
        latest = pc.max(table[UPDATED_FIELD]).as_py()
        return None if latest is None else iso_utc(from_epoch_ms(latest))

    def describe(self, since: str | None) -> str:
        return f"synthetic demo: rows={self.rows} seed={self.seed} day={self.day} since={since}"
