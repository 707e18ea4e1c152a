"""The report's numbers: tables and values computed from the marts, in pandas (no plotting, no prose).

Every function takes mart frames (or plain values) and returns a frame, a dict or a value; the
analysis notebook calls each beside the section that shows it. Counts come in two named units
(marts.UNIT): offense rows (one per offense) and distinct incidents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .backends import Backends
from .config import Preset
from .localtime import wall_clock
from .marts import MARTS, UNIT
from .quality import REASONS
from .schema import GEO_STATUS

CRIME_AGAINST = {"PERSONS": "Crimes against persons", "PROPERTY": "Crimes against property",
                 "SOCIETY": "Crimes against society"}
NOT_CLASSIFIED = "Not classified"
GROUPS = (*CRIME_AGAINST.values(), NOT_CLASSIFIED)  # NIBRS crime-against groups, in reading order
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Both compared periods are noisy counts, so 2·(√current − √previous) spreads about 1.4 times wider
# than a standard normal: a change counts as beyond chance from |z| = 3 (the threshold the metric's
# author recommends), and not at all when the two periods hold fewer than MIN_COUNTS reports together.
SIGNAL_Z = 3.0
MIN_COUNTS = 10
FALL, RISE, WITHIN, TOO_FEW = "fall beyond chance", "rise beyond chance", "within chance variation", "too few to judge"
READINGS = (FALL, RISE, WITHIN, TOO_FEW)  # what a z-score says about a change
ALL_CATEGORIES = "All categories"
CHANGE_CATEGORIES = 12  # the largest categories the change tables list one by one
LOAD_LABELS = {"received": "rows received from the source", "loaded": "loaded into the warehouse",
               "quarantined": "quarantined (kept aside with a reason)",
               "duplicates": "duplicates removed (same row id twice in a batch)"}


@dataclass(frozen=True)
class Period:
    """An inclusive range of offense dates, named for the reader."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def label(self) -> str:
        return f"{self.start.day} {self.start:%b %Y} to {self.end.day} {self.end:%b %Y}"


def read_marts(backends: Backends, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """The marts the report reads, from the warehouse of any profile."""
    return {name: backends.warehouse.read_mart(name) for name in names or MARTS}


def month_floor(value: Any) -> pd.Timestamp:
    return pd.Timestamp(value).to_period("M").to_timestamp()


def latest_full_month(last_offense_date: Any) -> pd.Timestamp:
    """The last complete month: the month before the one holding the latest offense."""
    return month_floor(last_offense_date) - pd.DateOffset(months=1)


def complete_months(monthly: pd.DataFrame, last_offense_date: Any) -> pd.DataFrame:
    """Monthly rows without the partial current month."""
    months = pd.to_datetime(monthly["offense_month"])
    return monthly.loc[months <= latest_full_month(last_offense_date)].assign(offense_month=months)


def month_grid(monthly: pd.DataFrame, last_offense_date: Any, by: str | None = None) -> pd.DataFrame:
    """Complete months only, with months the mart lacks (nothing reported) filled with zero counts."""
    data = complete_months(monthly, last_offense_date)
    months = pd.date_range(data["offense_month"].min(), latest_full_month(last_offense_date), freq="MS",
                           name="offense_month")
    keys = ["offense_month", by] if by else ["offense_month"]
    index = pd.MultiIndex.from_product([months, sorted(data[by].unique())], names=keys) if by else months
    counts = data.set_index(keys)[list(UNIT)]
    return counts.reindex(index, fill_value=0).reset_index()


def last_full_day(summary: pd.DataFrame) -> pd.Timestamp:
    """The latest day the data can be complete for: the last offense date, or the day before the
    source's last update when that is earlier (the update day itself is still filling up)."""
    top = summary.iloc[0]
    last = pd.Timestamp(top["last_offense_date"])
    if pd.isna(top["last_source_update_utc"]):
        return last
    update_day = wall_clock(top["last_source_update_utc"]).normalize()
    return min(last, update_day - pd.Timedelta(days=1))


def headline(summary: pd.DataFrame, monthly_totals: pd.DataFrame, quarantine: pd.DataFrame,
             preset: Preset) -> dict[str, Any]:
    """The report's first lines: counts, span, freshness and what is excluded, as plain values."""
    top = summary.iloc[0]
    last = pd.Timestamp(top["last_offense_date"])
    months = pd.to_datetime(monthly_totals["offense_month"])
    partial = monthly_totals.loc[months > latest_full_month(last), "offense_rows"]
    dates = quarantine["reason"].str.contains("offense_date")
    updated = top["last_source_update_utc"]
    return {
        "offense_rows": int(top["offense_rows"]),
        "incidents": int(top["incidents"]),
        "offenses_per_incident": float(top["offense_rows"]) / max(int(top["incidents"]), 1),
        "first_offense_date": pd.Timestamp(top["first_offense_date"]),
        "last_offense_date": last,
        "last_full_day": last_full_day(summary),
        "latest_full_month": latest_full_month(last),
        "partial_month": month_floor(last),
        "partial_month_offense_rows": int(partial.sum()),
        "last_source_update": None if pd.isna(updated) else wall_clock(updated),
        "quarantined_rows": int(quarantine["rows"].sum()),
        "bad_date_rows": int(quarantine.loc[dates, "rows"].sum()),
        "unlocated_rows": int(top["offense_rows"]) - int(top["geo_ok"]),
        "source": preset.title,
        "synthetic": preset.is_synthetic,
        "omissions": preset.omissions,
    }


def crime_against_label(codes: pd.Series) -> pd.Series:
    """NIBRS crime-against codes (PERSONS, PROPERTY, SOCIETY) as reader labels."""
    return codes.map(CRIME_AGAINST).fillna(NOT_CLASSIFIED)


def category_groups(category_totals: pd.DataFrame) -> pd.Series:
    """Each category's NIBRS crime-against label (the one holding most of its offense rows)."""
    data = category_totals.assign(crime_against=crime_against_label(category_totals["nibrs_crime_against"]))
    main = data.sort_values("offense_rows", ascending=False).drop_duplicates("category")
    return main.set_index("category")["crime_against"]


def category_shares(category_totals: pd.DataFrame) -> pd.DataFrame:
    """Offense rows, incidents and share of offense rows by category, largest first."""
    totals = category_totals.groupby("category", as_index=False)[list(UNIT)].sum()
    totals["share"] = totals["offense_rows"] / totals["offense_rows"].sum()
    totals.insert(1, "crime_against", totals["category"].map(category_groups(category_totals)))
    return totals.sort_values(["offense_rows", "category"], ascending=[False, True], ignore_index=True)


def nibrs_rollup(category_totals: pd.DataFrame) -> pd.DataFrame:
    """Offense rows by NIBRS crime-against group and Group A / B, with each group's share."""
    data = category_totals.assign(
        crime_against=crime_against_label(category_totals["nibrs_crime_against"]),
        nibrs_group="Group " + category_totals["nibrs_group"].fillna("?").astype(str))
    table = data.pivot_table(index="crime_against", columns="nibrs_group", values="offense_rows",
                             aggfunc="sum", fill_value=0)
    table.columns.name = None
    table["offense_rows"] = table.sum(axis=1)
    table["share"] = table["offense_rows"] / table["offense_rows"].sum()
    order = [g for g in GROUPS if g in table.index]
    return table.loc[order].reset_index()


def rolling_totals(monthly_totals: pd.DataFrame, last_offense_date: Any, window: int = 12) -> pd.DataFrame:
    """Complete months with the sum of the `window` months ending at each (empty until a full window)."""
    data = month_grid(monthly_totals, last_offense_date)
    rolled = data[list(UNIT)].rolling(window).sum()
    return data.assign(**{f"{unit}_{window}m": rolled[unit] for unit in UNIT})


def comparison_periods(last_day: pd.Timestamp) -> dict[str, tuple[Period, Period]]:
    """Year to date against the same days a year earlier; the last 28 days against the 28 before."""
    day = pd.Timedelta(days=1)
    year_start = pd.Timestamp(year=last_day.year, month=1, day=1)
    return {
        "Year to date": (Period(year_start, last_day),
                         Period(year_start - pd.DateOffset(years=1), last_day - pd.DateOffset(years=1))),
        "Last 28 days": (Period(last_day - 27 * day, last_day),
                         Period(last_day - 55 * day, last_day - 28 * day)),
    }


def poisson_z(current: Any, previous: Any) -> Any:
    """2·(√current − √previous): near zero when both counts come from one steady rate, however
    large the percent change between small counts looks."""
    return 2 * (np.sqrt(current) - np.sqrt(previous))


def period_counts(daily_category: pd.DataFrame, period: Period) -> pd.Series:
    """Offense rows per category with offense dates inside the period."""
    days = pd.to_datetime(daily_category["offense_date"])
    inside = daily_category[days.between(period.start, period.end)]
    return inside.groupby("category")["offense_rows"].sum()


def change_table(daily_category: pd.DataFrame, current: Period, previous: Period,
                 categories: list[str]) -> pd.DataFrame:
    """Offense rows now and before, for all categories together and for each of `categories`,
    with percent change, the Poisson z-score and a plain reading of it."""
    counts = pd.DataFrame({"previous": period_counts(daily_category, previous),
                           "current": period_counts(daily_category, current)})
    counts = counts.reindex(counts.index.union(categories)).fillna(0).astype(int)
    table = pd.concat([counts.sum().to_frame(ALL_CATEGORIES).T, counts.loc[categories]])
    table["change"] = table["current"] - table["previous"]
    table["pct_change"] = table["change"] / table["previous"].where(table["previous"] > 0)
    table["z"] = poisson_z(table["current"], table["previous"])
    table["reading"] = [z_reading(z, now + before) for z, now, before in
                        zip(table["z"], table["current"], table["previous"])]
    return table.rename_axis("category").reset_index()


def change_tables(daily_category: pd.DataFrame, shares: pd.DataFrame,
                  periods: dict[str, tuple[Period, Period]]) -> dict[str, pd.DataFrame]:
    """A change table per comparison, for all categories and each of the CHANGE_CATEGORIES largest."""
    categories = shares["category"].head(CHANGE_CATEGORIES).tolist()
    return {name: change_table(daily_category, now, before, categories) for name, (now, before) in periods.items()}


def z_reading(z: float, counts: int) -> str:
    """What a z-score says about a change, given how many reports the two periods hold together."""
    if counts < MIN_COUNTS:
        return TOO_FEW
    if z >= SIGNAL_Z:
        return RISE
    if z <= -SIGNAL_Z:
        return FALL
    return WITHIN


def seasonality(monthly_totals: pd.DataFrame, last_offense_date: Any) -> pd.DataFrame:
    """Offense rows per day for each complete month (per day, so short months compare fairly)."""
    data = month_grid(monthly_totals, last_offense_date)
    months = data["offense_month"]
    return pd.DataFrame({"year": months.dt.year, "month": months.dt.month,
                         "offense_rows_per_day": data["offense_rows"] / months.dt.days_in_month})


def hour_weekday_grid(hour_weekday: pd.DataFrame) -> pd.DataFrame:
    """Offense rows as a 7 × 24 table: weekdays (Mon first) by local hour of day."""
    grid = hour_weekday.pivot_table(index="weekday", columns="hour", values="offense_rows", aggfunc="sum")
    grid = grid.reindex(index=range(1, 8), columns=range(24), fill_value=0).fillna(0).astype(int)
    grid.index = list(WEEKDAYS)
    return grid


def has_precincts(precinct_monthly: pd.DataFrame) -> bool:
    """Whether the source publishes precincts (the legacy publication does not)."""
    return bool((precinct_monthly["precinct"] != "UNKNOWN").any())


def precinct_comparison(precinct_monthly: pd.DataFrame, last_offense_date: Any) -> pd.DataFrame:
    """Offense rows per precinct in the last 12 complete months against the 12 before."""
    data = complete_months(precinct_monthly, last_offense_date)
    end = latest_full_month(last_offense_date)
    recent = data["offense_month"] > end - pd.DateOffset(months=12)
    earlier = ~recent & (data["offense_month"] > end - pd.DateOffset(months=24))
    table = pd.DataFrame({
        "previous_12_months": data[earlier].groupby("precinct")["offense_rows"].sum(),
        "last_12_months": data[recent].groupby("precinct")["offense_rows"].sum(),
    }).fillna(0).astype(int)
    table["pct_change"] = (table["last_12_months"] - table["previous_12_months"]) / \
        table["previous_12_months"].where(table["previous_12_months"] > 0)
    table["z"] = poisson_z(table["last_12_months"], table["previous_12_months"])
    return table.sort_values("last_12_months", ascending=False).rename_axis("precinct").reset_index()


def quarantine_table(counts: pd.DataFrame) -> pd.DataFrame:
    """Quarantined rows by reason, with what the reason means."""
    return pd.DataFrame({"reason": counts["reason"],
                         "meaning": counts["reason"].map(REASONS).fillna(""),
                         "rows": counts["rows"].astype(int)})


def geo_quality(summary: pd.DataFrame) -> pd.DataFrame:
    """Offense rows by coordinate status: only `ok` rows are on the map."""
    top = summary.iloc[0]
    rows = [int(top[f"geo_{status}"]) for status in GEO_STATUS]
    total = max(int(top["offense_rows"]), 1)
    return pd.DataFrame({"status": list(GEO_STATUS), "meaning": list(GEO_STATUS.values()),
                         "offense_rows": rows, "share": [r / total for r in rows]})


def offenses_per_incident_table(mart: pd.DataFrame) -> pd.DataFrame:
    """How many incidents carry 1, 2, 3… offense rows, with their share of incidents."""
    data = mart.sort_values("offense_rows", ignore_index=True)
    return pd.DataFrame({"offense_rows_per_incident": data["offense_rows"], "incidents": data["incidents"],
                         "share": data["incidents"] / data["incidents"].sum()})


def load_table(rows: dict[str, Any]) -> pd.DataFrame:
    """What one load did with the rows it received (received = loaded + quarantined + duplicates)."""
    return pd.DataFrame({"what_happened": list(LOAD_LABELS.values()), "rows": [rows.get(k) for k in LOAD_LABELS]})
