"""A CompStat-style table: each group's offense rows in the last 7 days, 28 days and year to date,
against the same windows before, with a 3-year average and a reading of the change.

Every window ends on the last day the data is complete enough to compare (reporting_lag.py), not on
the newest offense date, so late reports do not build a drop into the newest days.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .periods import DAY, Period, windows
from .significance import dispersion, judged

HISTORY_YEARS = 3


def window_counts(daily: pd.DataFrame, key: str, window: Period) -> pd.Series:
    """Offense rows per `key` with offense dates inside the window."""
    days = pd.to_datetime(daily["offense_date"])
    return daily[days.between(window.start, window.end)].groupby(key)["offense_rows"].sum()


def weekly_history(daily: pd.DataFrame, key: str, last_day: pd.Timestamp, weeks: int = 104) -> pd.DataFrame:
    """Offense rows per `key` (rows) and week (columns) for the `weeks` weeks ending on `last_day`."""
    days = pd.to_datetime(daily["offense_date"])
    recent = daily[(days > last_day - weeks * 7 * DAY) & (days <= last_day)]
    week = ((last_day - pd.to_datetime(recent["offense_date"])).dt.days // 7).rename("week")
    table = recent.groupby([recent[key], week])["offense_rows"].sum().unstack("week", fill_value=0)
    return table.reindex(columns=range(weeks - 1, -1, -1), fill_value=0)


def compstat(daily: pd.DataFrame, key: str, last_day: pd.Timestamp, dispersions: pd.Series) -> pd.DataFrame:
    """One row per value of `key` (every one in the data, small ones included) and one per window:
    the count, the count in the window before, the 3-year average of the same window, the change,
    and whether it is more than chance (tested across the whole table, per window)."""
    groups = sorted(daily[key].dropna().unique())
    parts = []
    for name, (current, previous) in windows(last_day).items():
        counts = pd.DataFrame({
            "window": name,
            "current": window_counts(daily, key, current),
            "previous": window_counts(daily, key, previous),
            "three_year_average": sum(window_counts(daily, key, current.years_back(y)).reindex(groups, fill_value=0)
                                      for y in range(1, HISTORY_YEARS + 1)) / HISTORY_YEARS,
        }).reindex(groups)
        counts[["current", "previous"]] = counts[["current", "previous"]].fillna(0).astype(int)
        counts["window"] = name
        counts["share"] = current.days / (current.days + previous.days)
        counts["phi"] = dispersions.reindex(groups).fillna(1.0).to_numpy()
        parts.append(judged(counts.rename_axis(key).reset_index()))
    table = pd.concat(parts, ignore_index=True)
    table["change"] = table["current"] - table["previous"]
    table["pct_change"] = table["change"] / table["previous"].where(table["previous"] > 0)
    table["three_year_average"] = table["three_year_average"].fillna(0).round(1)
    return table[[key, "window", "current", "previous", "change", "pct_change", "three_year_average", "z", "p",
                  "reading"]]


def compstat_wide(long: pd.DataFrame, key: str) -> pd.DataFrame:
    """The CompStat table as a reader scans it: one row per group, each window's counts side by side,
    the change and reading of the 28 days and of the year to date, largest groups first."""
    by = long.set_index([key, "window"])
    def column(window: str, field: str) -> pd.Series:
        return by.xs(window, level="window")[field]
    table = pd.DataFrame({
        "last_7_days": column("7 days", "current"), "previous_7_days": column("7 days", "previous"),
        "last_28_days": column("28 days", "current"), "previous_28_days": column("28 days", "previous"),
        "change_28_days": column("28 days", "pct_change"), "reading_28_days": column("28 days", "reading"),
        "year_to_date": column("year to date", "current"), "previous_year_to_date": column("year to date", "previous"),
        "three_year_average": column("year to date", "three_year_average"),
        "change_year_to_date": column("year to date", "pct_change"),
        "reading_year_to_date": column("year to date", "reading"),
    })
    return table.sort_values(["year_to_date", "previous_year_to_date"], ascending=False).reset_index()


def dispersions(daily: pd.DataFrame, key: str, last_day: pd.Timestamp) -> pd.Series:
    """Each group's dispersion factor, from its weekly counts over the two years before the window."""
    history = weekly_history(daily, key, last_day - 56 * DAY)
    return pd.Series({group: dispersion(np.asarray(row)) for group, row in history.iterrows()}, dtype=float)
