"""The marts: their names, columns, keys, reading order, and the per-month partials they come from.

Spark-free (pyarrow only), so the aggregate stage, both warehouses and the analysis read one
definition. Counts come in two units, always named: `offense_rows` (one per offense; an incident
with three offenses counts three times) and `incidents` (distinct Crime IDs). An incident with
offenses in two categories counts once in each, so category incident counts do not add up to the
total.

Every mart comes from partials kept per offense month, so that a night recomputes only the months
its load changed (partials.py merges and derives): a mart placed in a month by its keys (MONTHLY)
is its own partial; an all-time mart comes from hidden partials (names starting with "_"):
  _cells       offense rows and spans per month and CELL_KEYS cell (the all-time counted marts),
  _incidents   each incident's offense rows per month and cell, by a 64-bit hash of its key (the
               distinct incidents of the all-time marts, and offenses_per_incident),
  _<mart>      a plain count per month (hour_weekday, geo_grid).

The aggregate stage queries `_incidents` alone (four columns) and, beside it, a union of the other
parts, tagged in `part`:
  counted   offense rows per group of every counted partial (rolled up by grouping sets over KEYS);
  repeats   per group, the rows that repeat an incident already counted there, so that
            incidents = offense rows - repeats exactly;
  the plain partials   plain counts.
`split_partials` adds counts and repeats per group and splits the partials out.
"""
from __future__ import annotations

from typing import Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc

from .schema import GEO_STATUS

UNIT = {"offense_rows": "offense rows", "incidents": "distinct incidents"}  # the two counting units
MAX_LAG_DAYS = 365  # reporting lags are counted day by day up to a year
GRID_DEGREES = 0.005  # about 500 m: fine enough for a city hexbin, coarse enough to anonymise
KEYS = ("offense_month", "offense_date", "category", "nibrs_crime_against", "nibrs_group", "precinct")
COUNTED = {  # mart: the keys it counts offense rows and distinct incidents by
    "monthly_category": ("offense_month", "category"),
    "monthly_totals": ("offense_month",),
    "daily_category": ("offense_date", "category", "nibrs_crime_against", "nibrs_group"),  # year to date, 28 days
    "category_totals": ("category", "nibrs_crime_against", "nibrs_group"),
    "precinct_monthly": ("offense_month", "precinct"),  # precinct UNKNOWN where missing
    "summary": (),  # one row: totals, span and freshness, rows per geo status
}
SPANS = {"first_offense_date": "min", "last_offense_date": "max", "last_source_update_utc": "max",
         **{f"geo_{status}": "sum" for status in GEO_STATUS}}  # summary's columns besides the counts
COLUMNS = {
    **{name: [*keys, *UNIT] for name, keys in COUNTED.items()},
    "summary": [*UNIT, *SPANS],
    "hour_weekday": ["weekday", "hour", "offense_rows"],  # local hour of day, ISO weekday (1 = Monday)
    "geo_grid": ["latitude", "longitude", "offense_rows"],  # located rows on a ~500 m grid (cell centres)
    "offenses_per_incident": [*UNIT],  # how many incidents have 1, 2, 3... rows
    # days from offense to report (-1: reported before the offense time; MAX_LAG_DAYS + 1: later)
    "reporting_lag": ["offense_month", "lag_days", "offense_rows"],
}
MARTS = tuple(COLUMNS)
MONTH = "offense_month"  # every partial is kept per offense month (Memphis local time)
CELLS, INDEX = "_cells", "_incidents"


def month_column(columns: Sequence[str]) -> str | None:
    """The column that places a row of a mart or partial in a month (None: the mart spans all time)."""
    return next((name for name in (MONTH, "offense_date") if name in columns), None)


MONTHLY = tuple(name for name in MARTS if month_column(COLUMNS[name]))  # each its own partial
ALL_TIME_COUNTED = tuple(name for name in COUNTED if name not in MONTHLY)  # from _cells and _incidents
FROM_INDEX = ("offenses_per_incident",)  # incidents by their number of offense rows, from _incidents
PLAIN = tuple(name for name in MARTS if name not in (*MONTHLY, *COUNTED, *FROM_INDEX))  # summed over months
CELL_KEYS = tuple(key for key in KEYS if any(key in COUNTED[name] for name in ALL_TIME_COUNTED))
PARTIALS = {
    **{name: COLUMNS[name] for name in MONTHLY},
    CELLS: [MONTH, *CELL_KEYS, "cell", "offense_rows", *SPANS],
    INDEX: [MONTH, "incident", "cell", "offense_rows"],
    **{f"_{name}": [MONTH, *COLUMNS[name]] for name in PLAIN},
}
SETS = {**{name: COUNTED[name] for name in COUNTED if name in MONTHLY},
        CELLS: (MONTH, *CELL_KEYS)}  # the counted partials: their grouping sets over KEYS
SortKey = Union[str, tuple[str, str]]
ORDER: dict[str, list[SortKey]] = {
    "monthly_category": ["offense_month", "category"],
    "monthly_totals": ["offense_month"],
    "daily_category": ["offense_date", "category"],
    "category_totals": [("offense_rows", "descending")],
    "precinct_monthly": ["offense_month", "precinct"],
    "hour_weekday": ["weekday", "hour"],
    "geo_grid": ["latitude", "longitude"],
    "offenses_per_incident": ["offense_rows"],
    "reporting_lag": ["offense_month", "lag_days"],
}


def grouping_id(keys: Sequence[str]) -> int:
    """Spark's grouping_id() of the grouping set `keys` over KEYS: a 1 bit per key rolled up."""
    return sum(1 << (len(KEYS) - 1 - i) for i, key in enumerate(KEYS) if key not in keys)


def partials_of(name: str) -> tuple[str, ...]:
    """The partials a mart is derived from."""
    if name in MONTHLY:
        return (name,)
    if name in ALL_TIME_COUNTED:
        return (CELLS, INDEX)
    return (INDEX,) if name in FROM_INDEX else (f"_{name}",)


def partials_for(names: Sequence[str]) -> list[str]:
    """The partials the marts `names` need, in PARTIALS order."""
    needed = {partial for name in names for partial in partials_of(name)}
    return [name for name in PARTIALS if name in needed]


def split_partials(result: pa.Table, names: Sequence[str]) -> dict[str, pa.Table]:
    """The partials `names` out of the query's result: counts and repeats added up per group."""
    def part(name: str) -> pa.Table:
        return result.filter(pc.equal(result["part"], name))

    tables = counted_tables(part("counted"), part("repeats"), [name for name in names if name in SETS])
    return {name: tables[name] if name in tables else part(name).select(PARTIALS[name]) for name in names}


def counted_tables(counted: pa.Table, repeats: pa.Table, names: list[str]) -> dict[str, pa.Table]:
    """The counted partials: offense rows and repeats added up per group, incidents their difference."""
    if not names:
        return {}
    groups = ["gid", *KEYS]
    columns = [*groups, "cell", "offense_rows", "repeats", *SPANS]
    totals = rollup(pa.concat_tables([counted.select(columns), repeats.select(columns)]), groups,
                    [("cell", "max"), ("offense_rows", "sum"), ("repeats", "sum"), *SPANS.items()])
    totals = totals.append_column("incidents", pc.subtract(totals["offense_rows"],
                                                           pc.coalesce(totals["repeats"], 0)))
    return {name: totals.filter(pc.equal(totals["gid"], grouping_id(SETS[name]))).select(PARTIALS[name])
            for name in names}


def sort(table: pa.Table, keys: list[SortKey]) -> pa.Table:
    """A mart in its reading order (names ascending, or (name, order) pairs)."""
    if not keys:
        return table
    return table.sort_by([key if isinstance(key, tuple) else (key, "ascending") for key in keys])


def rollup(table: pa.Table, keys: Sequence[str], aggregations: Sequence[tuple[str, str]]) -> pa.Table:
    """`table` grouped by `keys` (null a group of its own), each aggregate keeping its column's name."""
    totals = table.group_by(list(keys), use_threads=False).aggregate(list(aggregations))
    return totals.rename_columns([*keys, *(column for column, _ in aggregations)])
