"""Synthetic demo source: an offline stand-in for the ArcGIS publication, in its raw shape.

`demo_snapshot(rows, seed, day)` is the table the imaginary layer holds on the morning of
DEMO_ANCHOR + day: `rows` offense rows from 2020-01-01 up to DEMO_ANCHOR, then one daily update per
day (rows appended, a few rows edited). Values and frequencies come from demo_vocabulary.json,
derived once from real samples; realistic dirt is added at small, fixed rates. No row is a real
incident. Everything is vectorised and deterministic in (rows, seed, day). A large layer is made in
blocks of BLOCK_ROWS rows, one at a time (`snapshot_blocks`), so that 17M rows fit in memory.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Preset
from .base import Pull, iso_utc, parse_watermark
from .demo_rows import (
    DIRT, OFFENSE_FIELDS, RAW_SCHEMA, ROWS_PER_INCIDENT_P, Known, Months, Numbering, edit_times, month_prefixes,
    offense_rows, report_months, sequence_gap_limit, sequences,
)
from .demo_world import (
    DEMO_ANCHOR, SPAN_START, capped_ms, epoch_ms, from_epoch_ms, history_offense_ms, offense_types,
    publication_ms, recent_report_ms, report_lag_ms, whole_minutes,
)
from .fields import Incremental, SourceSchema, check_mapping


PAGE_ROWS = 200_000


BLOCK_ROWS = 250_000  # day-0 rows made at a time: memory holds a block, not the layer


UPDATED_FIELD = "EditDate"


EDITS_PER_NEW_ROW = 0.1


RECLASSIFIED_SHARE = 0.6  # the other edits correct the address


RECENT_EDIT_SPAN = 0.02  # edited rows lie about this share of all rows back from the newest (~7 weeks)


def demo_snapshot(rows: int, seed: int, day: int = 0) -> pa.Table:
    """The raw table the imaginary ArcGIS layer holds on the morning of DEMO_ANCHOR + `day`."""
    return pa.concat_tables([RAW_SCHEMA.empty_table(), *snapshot_blocks(rows, seed, day)])


def snapshot_blocks(rows: int, seed: int, day: int = 0, since_ms: int | None = None) -> Iterator[pa.Table]:
    """`demo_snapshot` in blocks of about BLOCK_ROWS rows in ObjectId order, each made when it is
    asked for: the day's update edits every block as it is made, its new rows come last.
    `since_ms`: only the blocks that can hold a row edited at or after it are made (a night's pull
    makes the blocks its edits fall in, not the layer)."""
    zero = DayZero.draw(rows, seed)
    updates = daily_updates(rows, seed, day)
    edited = np.concatenate([np.zeros(0, np.int64), *(u.targets for u in updates
                                                       if since_ms is not None and publication_ms(u.day) >= since_ms)])

    def wanted(first_id: int, last_id: int, newest_edit: int) -> bool:
        return since_ms is None or newest_edit >= since_ms or bool(((edited >= first_id) & (edited <= last_id)).any())

    numbering = Numbering()
    if zero is not None:
        for k in range(zero.blocks):
            if wanted(*zero.id_range(k), zero.newest_edit(k)):
                yield with_edits(zero.block(k), updates)
        numbering = zero.numbering()
    for n, update in enumerate(updates):
        first_id = numbering.next_object_id
        block = update.new_rows(rows, numbering)  # made every time: the ids of later days continue it
        if wanted(first_id, numbering.next_object_id - 1, publication_ms(update.day)):
            yield with_edits(block, updates[n + 1:])


@dataclass
class DayZero:
    """Day 0 drawn before any of its rows is made: exactly `rows` rows (duplicates included) for
    offenses since 2020-01-01, as incidents in report order with their sizes, times, edit times
    and Crime_ID sequence numbers, cut into blocks of whole incidents. A block's rows come from a
    generator of its own, so that any block can be made without the blocks before it."""

    seed: int
    sizes: np.ndarray
    offense: np.ndarray
    reported: np.ndarray
    known: Known
    cuts: np.ndarray  # the first incident of each block, then the number of incidents
    copies: np.ndarray  # exact duplicates made before each block, then in all
    gap_limit: int
    months: Months  # report_months of `reported`

    @classmethod
    def draw(cls, rows: int, seed: int) -> DayZero | None:
        """Day 0 of a layer of `rows` rows (None: no rows)."""
        if rows <= 0:
            return None
        rng = day_rng(seed, 0)
        duplicates = round(rows * DIRT.duplicates)
        sizes = rows_per_incident(rng, rows - duplicates)
        offense = history_offense_ms(rng, sizes.size)
        reported = whole_minutes(capped_ms(rng, offense, report_lag_ms(rng, sizes.size), publication_ms(0)))
        order = np.argsort(reported, kind="stable")
        offense, reported = offense[order], reported[order]
        months = report_months(reported)
        gap_limit = sequence_gap_limit(reported, months)
        known = Known(edit_times(rng, reported, publication_ms(0)),
                      sequences(rng, reported, Numbering(), gap_limit, months))
        ends = np.cumsum(sizes)
        cuts = np.r_[0, np.searchsorted(ends, np.arange(BLOCK_ROWS, ends[-1], BLOCK_ROWS), side="right"), sizes.size]
        copies = np.round(duplicates * np.r_[0, ends][cuts] / ends[-1]).astype(int)  # spread over the blocks
        return cls(seed, sizes, offense, reported, known, cuts, copies, gap_limit, months)

    @property
    def blocks(self) -> int:
        return int(self.cuts.size - 1)

    @functools.cached_property
    def ends(self) -> np.ndarray:
        """The rows of the incidents before each incident, then of all (ObjectIds count them)."""
        return np.r_[0, np.cumsum(self.sizes)]

    def id_range(self, k: int) -> tuple[int, int]:
        """The first and last ObjectId of block `k` (an incident's rows take consecutive ids)."""
        return int(self.ends[self.cuts[k]]) + 1, int(self.ends[self.cuts[k + 1]])

    def newest_edit(self, k: int) -> int:
        """The latest edit time of block `k`'s rows as day 0 made them (epoch ms)."""
        return int(self.known.edit[self.cuts[k]:self.cuts[k + 1]].max())

    def block(self, k: int) -> pa.Table:
        """Block `k`'s rows, made from the block's own generator."""
        part = np.arange(self.cuts[k], self.cuts[k + 1])
        return offense_rows(np.random.default_rng([self.seed, 0, k]), self.sizes[part], self.offense[part],
                            self.reported[part], 0, Numbering(next_object_id=self.id_range(k)[0]),
                            int(self.copies[k + 1] - self.copies[k]), self.gap_limit, self.known.take(part))

    def numbering(self) -> Numbering:
        """The ids day 0 used: the next ObjectId and, per report month, the last sequence number."""
        month_codes, month = self.months
        last = np.zeros(month_codes.size, np.int64)
        np.maximum.at(last, month, self.known.sequence)
        return Numbering(int(self.ends[-1]) + 1, dict(zip(month_prefixes(month_codes), last.tolist())))


@dataclass
class DailyUpdate:
    """One day's update, drawn before any row is made: how many rows it appends, which existing
    ObjectIds it edits and how; its new rows are made last, continuing the day's generator."""

    day: int
    rng: np.random.Generator
    new_count: int
    targets: np.ndarray
    reclassify: np.ndarray
    kind: np.ndarray
    block: np.ndarray

    def new_rows(self, rows: int, numbering: Numbering) -> pa.Table:
        """The day's new reports (ids continuing `numbering`)."""
        duplicates = round(self.new_count * DIRT.duplicates)
        sizes = rows_per_incident(self.rng, self.new_count - duplicates)
        reported = recent_report_ms(self.rng, sizes.size, self.day)
        offense = reported - report_lag_ms(self.rng, sizes.size)
        return offense_rows(self.rng, sizes, offense, reported, self.day, numbering, duplicates,
                            sequence_gap_limit(reported))


def daily_updates(rows: int, seed: int, day: int) -> list[DailyUpdate]:
    """Days 1..`day`, each drawn from its own generator (ObjectIds known from the row counts alone)."""
    updates, max_id = [], rows - round(rows * DIRT.duplicates)
    for later in range(1, day + 1):
        rng = day_rng(seed, later)
        new_rows = daily_row_count(rng, rows)
        if new_rows == 0:
            continue
        targets = np.sort(edit_targets(rng, max_id, max(1, round(new_rows * EDITS_PER_NEW_ROW))))
        reclassify = rng.random(targets.size) < RECLASSIFIED_SHARE
        kind = rng.choice(offense_types().num_rows, size=targets.size, p=offense_types()["p"].to_numpy())
        block = rng.integers(0, 100, targets.size) * 100
        updates.append(DailyUpdate(later, rng, new_rows, targets, reclassify, kind, block))
        max_id += new_rows - round(new_rows * DIRT.duplicates)
    return updates


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


def with_edits(table: pa.Table, updates: list[DailyUpdate]) -> pa.Table:
    """`table` after each update's edits in day order: targeted ObjectIds reclassified or given a
    corrected address, and their edit date set to the day's publication."""
    for update in updates:
        table = edited(table, update)
    return table


def edited(table: pa.Table, update: DailyUpdate) -> pa.Table:
    """`table` with one update's edits applied to the rows it targets (if any are in it)."""
    object_ids, targets = table["ObjectId"].to_numpy(), update.targets
    target = np.minimum(np.searchsorted(targets, object_ids), targets.size - 1)  # per row
    hit = targets[target] == object_ids
    if not hit.any():
        return table
    retyped, moved = hit & update.reclassify[target], hit & ~update.reclassify[target]
    types = offense_types().take(update.kind[target[retyped]])
    for name in (*OFFENSE_FIELDS, "UCR_Category"):
        table = replaced(table, name, retyped, types[name].combine_chunks())
    addresses = table["Street_Address"].filter(pa.array(moved))
    table = replaced(table, "Street_Address", moved, corrected_addresses(addresses, update.block[target[moved]]))
    return replaced(table, UPDATED_FIELD, hit, pa.array(np.full(int(hit.sum()), publication_ms(update.day))))


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

    def blocks_since(self, since: str | None) -> Iterator[pa.Table]:
        """The layer's rows with EditDate at or after `since` (all if None), block by block in
        ObjectId order, each made when it is asked for."""
        floor = None if since is None else epoch_ms(parse_watermark(since))
        for block in snapshot_blocks(self.rows, self.seed, self.day, floor):
            yield block if floor is None else block.filter(pc.greater_equal(block[UPDATED_FIELD], floor))

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
        first = next(self.blocks_since(None), None)
        return first.slice(0, 1).to_pylist()[0] if first is not None and first.num_rows else None

    def pull(self, since: str | None) -> Pull:
        """Pages of PAGE_ROWS rows, exact duplicates included, as a server would send them. A full
        pull is a stream, made block by block as the ingest writes it (memory holds a block, not the
        layer); an incremental one, a day's rows or so, is made before it is served."""
        if since is None:
            return Pull(paged(self.blocks_since(None)), self.count(None))
        pages = list(paged(self.blocks_since(since)))
        return Pull(pages, sum(page.num_rows for page in pages))

    def count(self, since: str | None) -> int:
        """The layer's rows edited at or after `since`; all of them are known without making them."""
        if since is None:
            return max(self.rows, 0) + sum(update.new_count for update in daily_updates(self.rows, self.seed, self.day))
        return sum(block.num_rows for block in self.blocks_since(since))

    def watermark_of(self, table: pa.Table) -> str | None:
        latest = pc.max(table[UPDATED_FIELD]).as_py()
        return None if latest is None else iso_utc(from_epoch_ms(latest))

    def describe(self, since: str | None) -> str:
        return f"synthetic demo: rows={self.rows} seed={self.seed} day={self.day} since={since}"


def paged(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """Tables cut again into pages of PAGE_ROWS rows (the last one shorter)."""
    pending: list[pa.Table] = []
    held = 0
    for table in tables:
        pending.append(table)
        held += table.num_rows
        while held >= PAGE_ROWS:
            whole = pa.concat_tables(pending)
            yield whole.slice(0, PAGE_ROWS)
            pending, held = [whole.slice(PAGE_ROWS)], held - PAGE_ROWS
    if held:
        yield pa.concat_tables(pending)
