"""The demo's world: its calendar (the daily 06:00 publication, Memphis daylight time, when
offenses happen and are reported) and its vocabulary (offense types, station areas, addresses),
drawn from demo_vocabulary.json, which was derived once from real samples."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa

from ..localtime import utc_ms


DEMO_ANCHOR = date(2026, 11, 20)


SPAN_START = date(2020, 1, 1)


PUBLISH_HOUR = 6


VOCABULARY_FILE = "demo_vocabulary.json"


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


MINUTE_MS = 60_000


HOUR_MS = 60 * MINUTE_MS


DAY_MS = 24 * HOUR_MS


BLOCK_SHIFTS = tuple(range(-300, 301, 100))  # each sample address also appears a few blocks away


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
