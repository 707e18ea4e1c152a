"""Incremental marts: which months a night recomputes, how their partials replace the previous ones,
and how the published marts are derived from the partials (marts.py defines both).

The marts of a warehouse version are computed from its `incidents` table by the package code of the
time. A warehouse that can tell what identifies each month partition of `incidents` now (the local
one: its files) lets the aggregate stage recompute only the months whose partition changed since
the live marts were computed (a new month, a changed one, one that vanished); everything else,
another code version, or no marts yet, computes every month.

Deriving: a monthly mart is its partial, sorted. An all-time counted mart adds up offense rows and
spans over the months of `_cells`, and counts distinct incidents in `_incidents`, where an incident
with rows in several months counts once. offenses_per_incident counts incidents by their rows in
`_incidents`. Plain counts add up over months.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .errors import PipelineError
from .marts import (ALL_TIME_COUNTED, CELL_KEYS, CELLS, COLUMNS, COUNTED, FROM_INDEX, INDEX, MARTS, MONTH, MONTHLY,
                    ORDER, SPANS, month_column, rollup, sort)

Basis = dict[str, Any]  # what a marts version was computed from: {"code": digest, "months": {month: token}}


def recompute_plan(now: dict[str, str] | None, basis: Basis | None, code: str,
                   full_refresh: bool = False) -> tuple[list[date] | None, str]:
    """The months whose `incidents` partition changed since the marts of `basis` were computed, given
    each partition's token `now` (None: compute every month), and why."""
    if full_refresh:
        return None, "full refresh asked for"
    if now is None:
        return None, "this warehouse computes every month"
    if basis is None:
        return None, "no marts with partials yet"
    if basis.get("code") != code:
        return None, "the package code changed since the marts were computed"
    before: dict[str, str] = basis.get("months", {})
    months = sorted(date.fromisoformat(month) for month in now.keys() | before.keys()
                    if now.get(month) != before.get(month))
    return months, f"{len(months)} of {len(now)} months changed since the marts were computed"


def merge_partials(previous: dict[str, pa.Table], fresh: dict[str, pa.Table],
                   months: Sequence[date] | None) -> dict[str, pa.Table]:
    """Each partial: the previous rows of the months not recomputed, then the recomputed months' rows
    (a recomputed month without rows now disappears). `months` None: the fresh partials are whole."""
    if months is None:
        return fresh
    recomputed = pa.array(months, pa.date32())
    return {name: pa.concat_tables([outside(previous[name], recomputed).select(table.column_names)
                                    .cast(table.schema), table])
            for name, table in fresh.items()}


def outside(table: pa.Table, months: pa.Array) -> pa.Table:
    """The rows of a partial whose month is not among `months`."""
    column = month_column(table.column_names)
    placed = table[column] if column == MONTH else pc.floor_temporal(table[column], unit="month")
    return table.filter(pc.invert(pc.is_in(placed, value_set=months)))


def derive_marts(partials: dict[str, pa.Table], names: Sequence[str] = MARTS) -> dict[str, pa.Table]:
    """The published marts `names` from the partials, each in its reading order."""
    per_incident = None
    if any(name in FROM_INDEX or name == "summary" for name in names):
        per_incident = partials[INDEX].group_by("incident", use_threads=False).aggregate([("offense_rows", "sum")])
    marts = {}
    for name in names:
        if name in MONTHLY:
            marts[name] = partials[name]
        elif name in ALL_TIME_COUNTED:
            marts[name] = all_time_counted(name, partials[CELLS], partials[INDEX], per_incident)
        elif name in FROM_INDEX:
            marts[name] = offenses_per_incident(per_incident)
        else:
            marts[name] = rollup(partials[f"_{name}"], COLUMNS[name][:-1], [("offense_rows", "sum")])
    return {name: sort(table.select(COLUMNS[name]), ORDER.get(name, [])) for name, table in marts.items()}


def all_time_counted(name: str, cells: pa.Table, index: pa.Table, per_incident: pa.Table | None) -> pa.Table:
    """An all-time counted mart: offense rows and spans added up over months, distinct incidents
    counted once however many months they span."""
    keys = list(COUNTED[name])
    spans = [(column, how) for column, how in SPANS.items() if column in COLUMNS[name]]
    totals = rollup(cells, keys, [("offense_rows", "sum"), *spans])
    if not keys:  # the summary: one row, zeros for an empty table
        incidents = per_incident.num_rows if per_incident is not None else 0
        rows = totals.schema.get_field_index("offense_rows")
        return totals.set_column(rows, "offense_rows", pc.coalesce(totals["offense_rows"], 0)) \
            .append_column("incidents", pa.array([incidents], pa.int64()))
    counted = incidents_per_group(index, cells, keys)
    both = pa.concat_tables([totals, counted], promote_options="default")
    return rollup(both, keys, [("offense_rows", "sum"), ("incidents", "sum"), *spans])


def incidents_per_group(index: pa.Table, cells: pa.Table, keys: list[str]) -> pa.Table:
    """Distinct incidents per group of `keys` (a subset of CELL_KEYS): each cell of `_incidents` is
    mapped to its group, then each (group, incident) pair counted once."""
    cell_keys = rollup(cells.select(["cell", *CELL_KEYS]), ["cell", *CELL_KEYS], [])
    if len(pc.unique(cell_keys["cell"])) != cell_keys.num_rows:
        raise PipelineError("two mart cells share a 64-bit hash: recompute with --full-refresh "
                            "after reporting this (it should not happen)")
    groups: dict[tuple, int] = {}
    group_of = [groups.setdefault(tuple(row[k] for k in keys), len(groups)) for row in cell_keys.to_pylist()]
    placed = pc.take(pa.array(group_of, pa.int64()), pc.index_in(index["cell"], value_set=cell_keys["cell"]))
    pairs = pa.table({"group": placed, "incident": index["incident"]}).group_by(
        ["group", "incident"], use_threads=False).aggregate([])
    counts = pairs.group_by("group", use_threads=False).aggregate([("incident", "count")])
    labels = pa.Table.from_pylist([dict(zip(keys, group)) for group in groups], schema=cells.select(keys).schema)
    return labels.take(counts["group"]).append_column("incidents", counts["incident_count"])


def offenses_per_incident(per_incident: pa.Table | None) -> pa.Table:
    """Incidents by their number of offense rows, across all months."""
    assert per_incident is not None
    counts = per_incident.group_by("offense_rows_sum", use_threads=False).aggregate([("incident", "count")])
    return counts.rename_columns(["offense_rows", "incidents"])
