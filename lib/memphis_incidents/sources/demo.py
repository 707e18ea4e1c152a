"""Synthetic demo source: an offline stand-in for the ArcGIS publication, in its raw shape.

`demo_snapshot(rows, seed, day)` is the table the imaginary layer holds on the morning of
DEMO_ANCHOR + day: `rows` offense rows from 2020-01-01 up to DEMO_ANCHOR, then one daily update per
day (rows appended, a few rows edited). Values and frequencies come from demo_vocabulary.json,
derived once from real samples; realistic dirt is added at small, fixed rates. No row is a real
incident. Everything is vectorised and deterministic in (rows, seed, day).
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Preset
from .base import Pull, iso_utc, parse_watermark
from .demo_rows import DIRT, OFFENSE_FIELDS, RAW_SCHEMA, ROWS_PER_INCIDENT_P, offense_rows
from .demo_world import (
    DEMO_ANCHOR, SPAN_START, capped_ms, epoch_ms, from_epoch_ms, history_offense_ms, offense_types,
    publication_ms, recent_report_ms, report_lag_ms, whole_minutes,
)
from .fields import Incremental, SourceSchema, check_mapping


PAGE_ROWS = 200_000


UPDATED_FIELD = "EditDate"


EDITS_PER_NEW_ROW = 0.1


RECLASSIFIED_SHARE = 0.6  # the other edits correct the address


RECENT_EDIT_SPAN = 0.02  # edited rows lie about this share of all rows back from the newest (~7 weeks)


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
