"""The periods the report compares: inclusive ranges of offense dates, named for the reader, and the
windows each comparison sets side by side (the year so far, 28 and 7 days, against the periods before)."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """An inclusive range of offense dates."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def label(self) -> str:
        return f"{self.start.day} {self.start:%b %Y} to {self.end.day} {self.end:%b %Y}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def years_back(self, years: int) -> "Period":
        return Period(self.start - pd.DateOffset(years=years), self.end - pd.DateOffset(years=years))


def comparison_periods(last_day: pd.Timestamp) -> dict[str, tuple[Period, Period]]:
    """Year to date against the same days a year earlier; the last 28 days against the 28 before."""
    year_start = pd.Timestamp(year=last_day.year, month=1, day=1)
    return {
        "Year to date": (Period(year_start, last_day), Period(year_start, last_day).years_back(1)),
        "Last 28 days": (Period(last_day - 27 * DAY, last_day), Period(last_day - 55 * DAY, last_day - 28 * DAY)),
    }


def windows(last_day: pd.Timestamp) -> dict[str, tuple[Period, Period]]:
    """The CompStat windows ending on `last_day`, each with the period it is compared with."""
    periods = comparison_periods(last_day)
    return {"7 days": (Period(last_day - 6 * DAY, last_day), Period(last_day - 13 * DAY, last_day - 7 * DAY)),
            "28 days": periods["Last 28 days"], "year to date": periods["Year to date"]}
