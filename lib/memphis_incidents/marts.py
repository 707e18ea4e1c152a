"""The marts: their names, columns, keys, reading order, and how the one Spark result splits into them.

Spark-free (pyarrow only), so the aggregate stage, both warehouses and the analysis read one
definition. Counts come in two units, always named: `offense_rows` (one per offense; an incident
with three offenses counts three times) and `incidents` (distinct Crime IDs). An incident with
offenses in two categories counts once in each, so category incident counts do not add up to the
total.

The aggregate stage's one query is a union of parts, tagged in `part`:
  counted   offense rows per group of every counted mart (rolled up by grouping sets over KEYS);
  repeats   per group, the rows that repeat an incident already counted there, so that
            incidents = offense rows - repeats exactly;
  hour_weekday, geo_grid, offenses_per_incident, reporting_lag   plain counts.
`split_marts` adds counts and repeats per group and splits the marts out.
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


def counted_marts(names: Sequence[str]) -> list[str]:
    """The counted marts `names` need (offenses_per_incident needs the summary's total)."""
    needed = set(names) | ({"summary"} if "offenses_per_incident" in names else set())
    return [name for name in COUNTED if name in needed]


def split_marts(result: pa.Table, names: Sequence[str] = MARTS) -> dict[str, pa.Table]:
    """The marts out of the query's result: counts and repeats added up per group, each mart sorted."""
    def part(name: str) -> pa.Table:
        return result.filter(pc.equal(result["part"], name))

    marts = counted_tables(part("counted"), part("repeats"), counted_marts(names))
    for name in ("hour_weekday", "geo_grid", "reporting_lag"):
        if name in names:
            marts[name] = part(name).select(COLUMNS[name])
    if "offenses_per_incident" in names:
        marts["offenses_per_incident"] = offenses_per_incident(part("offenses_per_incident"), marts["summary"])
    return {name: sort(marts[name], ORDER.get(name, [])) for name in names}


def offenses_per_incident(several: pa.Table, summary: pa.Table) -> pa.Table:
    """Incidents by offense rows: those with several rows as counted, those with one the rest."""
    several = several.select(COLUMNS["offenses_per_incident"])
    in_several = pc.sum(pc.multiply(several["offense_rows"], several["incidents"])).as_py() or 0
    single = summary["offense_rows"][0].as_py() - in_several
    ones = pa.Table.from_pylist([{"offense_rows": 1, "incidents": single}] if single else [], several.schema)
    return pa.concat_tables([ones, several])


def counted_tables(counted: pa.Table, repeats: pa.Table, names: list[str]) -> dict[str, pa.Table]:
    """The counted marts: offense rows and repeats added up per group, incidents their difference."""
    if not names:
        return {}
    groups = ["gid", *KEYS]
    both = pa.concat_tables([counted.select([*groups, "offense_rows", "repeats", *SPANS]),
                             repeats.select([*groups, "offense_rows", "repeats", *SPANS])])
    totals = both.group_by(groups, use_threads=False).aggregate(
        [("offense_rows", "sum"), ("repeats", "sum"), *SPANS.items()])
    totals = totals.rename_columns([name if name in groups else name.rsplit("_", 1)[0]
                                    for name in totals.column_names])
    totals = totals.append_column("incidents", pc.subtract(totals["offense_rows"],
                                                           pc.coalesce(totals["repeats"], 0)))
    marts = {name: totals.filter(pc.equal(totals["gid"], grouping_id(COUNTED[name]))).select(COLUMNS[name])
             for name in names}
    if "summary" in marts and marts["summary"].num_rows == 0:  # an empty table still has a summary
        marts["summary"] = pa.Table.from_pylist([{"offense_rows": 0, "incidents": 0}], marts["summary"].schema)
    return marts


def sort(table: pa.Table, keys: list[SortKey]) -> pa.Table:
    """A mart in its reading order (names ascending, or (name, order) pairs)."""
    if not keys:
        return table
    return table.sort_by([key if isinstance(key, tuple) else (key, "ascending") for key in keys])
