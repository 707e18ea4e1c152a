"""The demo's raw rows: incidents and their offense rows in the ArcGIS layer's shape (RAW_SCHEMA),
with the dirt real data has at small, fixed rates (DirtRates)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .demo_world import (
    BLOCK_SHIFTS, DAY_MS, EPOCH, SPAN_START, capped_ms, category_variants, edit_lag_ms,
    offense_types, places, publication_ms, vocabulary,
)
from ..localtime import wall_clock_ms


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


MEMPHIS_BOX = (35.00, 35.26, -90.10, -89.72)  # lat min, lat max, lon min, lon max


SPREAD_DEGREES = (0.025, 0.03)  # lat, lon standard deviation around a station-area centre


ROWS_PER_INCIDENT_P = (0.902, 0.088, 0.008, 0.002)  # 1, 2, 3, 4 offense rows: 1.11 on average


SAME_OFFENSE_SHARE = 0.4  # further offense rows of an incident that repeat its first offense


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


@dataclass
class Numbering:
    """The ids a snapshot has used so far: the next ObjectId and, per report month (YYMM), the
    highest Crime_ID sequence number a row shows. Kept as blocks of rows are made, so that a block
    continues the ones before it without them in memory."""

    next_object_id: int = 1
    last_sequences: dict[str, int] = field(default_factory=dict)

    def last_sequence(self, prefix: str) -> int:
        """Highest Crime_ID sequence number already used in the month `prefix` (YYMM), 0 if none."""
        return self.last_sequences.get(prefix, 0)

    def count(self, table: pa.Table) -> None:
        """Take note of the ids a new block of rows uses."""
        if table.num_rows:
            self.next_object_id = max(self.next_object_id, pc.max(table["ObjectId"]).as_py() + 1)
        ids = pc.drop_null(table["Crime_ID"])
        prefixes, sequences = pc.utf8_slice_codeunits(ids, 0, 4), pc.utf8_slice_codeunits(ids, 4, 10).cast(pa.int64())
        found = pa.table({"prefix": prefixes, "sequence": sequences}).group_by("prefix").aggregate([("sequence", "max")])
        for prefix, sequence in zip(found["prefix"].to_pylist(), found["sequence_max"].to_pylist()):
            self.last_sequences[prefix] = max(self.last_sequence(prefix), sequence)


@dataclass
class Known:
    """Incident values drawn before their rows are made (day 0 draws them for the whole layer, so
    that any block of it can be made alone): the edit time and the Crime_ID sequence number."""

    edit: np.ndarray
    sequence: np.ndarray

    def take(self, positions: np.ndarray) -> "Known":
        return Known(self.edit[positions], self.sequence[positions])


def offense_rows(
    rng: np.random.Generator,
    sizes: np.ndarray,
    offense: np.ndarray,
    reported: np.ndarray,
    day: int,
    numbering: Numbering,
    duplicates: int,
    gap_limit: int,
    known: Known | None = None,
) -> pa.Table:
    """Raw offense rows of new incidents (in report order), ids continuing `numbering` (updated)."""
    order = np.argsort(reported, kind="stable")
    shared = incidents(rng, offense[order], reported[order], publication_ms(day), numbering, gap_limit,
                       None if known is None else known.take(order))
    incident = np.repeat(np.arange(sizes.size), sizes)
    kind = offense_type_per_row(rng, sizes)
    variant = category_variant(rng, incident.size)
    object_id = np.arange(numbering.next_object_id, numbering.next_object_id + incident.size)
    keep = with_copies(rng, incident.size, duplicates)
    shared = shared.take(incident[keep])
    types = offense_types().take(kind[keep])
    columns = {name: shared[name] for name in shared.column_names}
    columns.update({name: types[name] for name in OFFENSE_FIELDS})
    columns["UCR_Category"] = category_variants().take(kind[keep] * 3 + variant[keep])
    columns["ObjectId"] = pa.array(object_id[keep])
    table = pa.table([columns[field.name] for field in RAW_SCHEMA], schema=RAW_SCHEMA)
    numbering.count(table)
    return table


def incidents(rng: np.random.Generator, offense: np.ndarray, reported: np.ndarray, cutoff: int,
              numbering: Numbering, gap_limit: int, known: Known | None = None) -> pa.Table:
    """Incident-level raw fields: id, times, place and coordinates, shared by its offense rows."""
    n = offense.size
    return pa.table({
        "Crime_ID": crime_ids(rng, reported, numbering, gap_limit, None if known is None else known.sequence),
        "Offense_Datetime": dirty_offense_times(rng, offense),
        "Reported_Datetime": pa.array(reported),
        "EditDate": pa.array(edit_times(rng, reported, cutoff) if known is None else known.edit),
        **place_fields(rng, n),
    })


Months = tuple[np.ndarray, np.ndarray]  # report_months: the distinct months, each report's index among them


def report_months(reported: np.ndarray) -> Months:
    """The distinct (local) report months, and each report's index among them."""
    months = wall_clock_ms(reported).astype("datetime64[ms]").astype("datetime64[M]")
    return np.unique(months, return_inverse=True)


def edit_times(rng: np.random.Generator, reported: np.ndarray, cutoff: int) -> np.ndarray:
    """Each incident's last edit: a while after its report, never after `cutoff` (its publication)."""
    return capped_ms(rng, reported, edit_lag_ms(rng, reported.size), cutoff)


def month_prefixes(month_codes: np.ndarray) -> list[str]:
    """YYMM of each report month."""
    return [text[2:4] + text[5:7] for text in np.datetime_as_string(month_codes)]


def sequences(rng: np.random.Generator, reported: np.ndarray, numbering: Numbering, gap_limit: int,
              months: Months | None = None) -> np.ndarray:
    """Crime_ID sequence numbers of incidents in report order: per report month, rising by random
    steps from the last number `numbering` has seen in that month."""
    month_codes, month = months or report_months(reported)
    gaps = rng.integers(1, gap_limit, month.size)
    before = np.array([numbering.last_sequence(p) for p in month_prefixes(month_codes)], dtype=np.int64)
    return before[month] + running_within(gaps, month)


def crime_ids(rng: np.random.Generator, reported: np.ndarray, numbering: Numbering, gap_limit: int,
              sequence: np.ndarray | None = None) -> pa.Array:
    """Crime_IDs like 1803013551ME: YYMM of the (local) report, a sequence within the month, ME."""
    month_codes, month = months = report_months(reported)
    prefixes = month_prefixes(month_codes)
    if sequence is None:
        sequence = sequences(rng, reported, numbering, gap_limit, months)
    text = pc.binary_join_element_wise(
        pa.array(prefixes, pa.string()).take(month),
        pc.utf8_lpad(pa.array(sequence).cast(pa.string()), 6, "0"),
        "ME",
        "",
    )
    return pc.if_else(pa.array(rng.random(month.size) < DIRT.null_crime_id), None, text)


def sequence_gap_limit(reported: np.ndarray, months: Months | None = None) -> int:
    """Upper bound (exclusive) of the step between sequence numbers, so that the busiest report
    month of these reports stays within 6 digits."""
    _, month = months or report_months(reported)
    return int(np.clip(900_000 // np.bincount(month).max(), 2, 10)) if month.size else 10


def running_within(steps: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running total of `steps` that restarts wherever the sorted `group` changes."""
    running = np.cumsum(steps)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return running - np.repeat(running[starts] - steps[starts], np.diff(np.r_[starts, group.size]))


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
