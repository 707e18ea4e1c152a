"""How complete recent days are: offenses are reported, and published, days or weeks after they
happen, so the newest days always hold fewer reports than they will.

From the lag between offense and report in settled history (offenses one to two years old, whose
reports are all in), the share of an offense day's eventual reports that are in after k days is
F(k). A day k days before the data's as-of date is complete enough to compare once F(k) reaches the
threshold (95 % by default); comparison windows end on the last such day.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .localtime import wall_clock
from .marts import MAX_LAG_DAYS

COMPLETE_SHARE = 0.95
STALE_DAYS = 7  # newest offense this many days before the report: the data is stale, and the report says so
MILESTONES = (1, 7, 30)
SETTLED = (pd.DateOffset(years=2), pd.DateOffset(years=1))  # offense months old enough to be complete


def reported_within(lag: pd.DataFrame) -> pd.Series:
    """F(k): the share of offense rows reported within k days (k = 0 … MAX_LAG_DAYS), from a frame of
    `lag_days` and `offense_rows`; rows reported later than that, or never, are left out."""
    counts = lag[lag["lag_days"].between(0, MAX_LAG_DAYS)].groupby("lag_days")["offense_rows"].sum()
    counts = counts.reindex(range(MAX_LAG_DAYS + 1), fill_value=0)
    total = counts.sum()
    return (counts.cumsum() / total) if total else pd.Series(1.0, index=counts.index)


def days_to_complete(shares: pd.Series, threshold: float = COMPLETE_SHARE) -> int:
    """The fewest days after which an offense day holds `threshold` of its eventual reports."""
    reached = shares[shares >= threshold]
    return int(reached.index[0]) if len(reached) else MAX_LAG_DAYS


def complete_through(as_of: pd.Timestamp, shares: pd.Series, threshold: float = COMPLETE_SHARE) -> pd.Timestamp:
    """The last offense day that is at least `threshold` complete on `as_of`."""
    return (as_of - pd.Timedelta(days=days_to_complete(shares, threshold))).normalize()


def settled_lags(reporting_lag: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The lag mart's rows for offense months between two years and one year before `as_of`, whose
    reports are all in (all months when the data is younger than that)."""
    months = pd.to_datetime(reporting_lag["offense_month"])
    settled = reporting_lag[(months >= as_of - SETTLED[0]) & (months < as_of - SETTLED[1])]
    return settled if len(settled) else reporting_lag


def milestones(shares: pd.Series) -> pd.DataFrame:
    """The share of offense rows reported within 1, 7 and 30 days: the report's lag chart."""
    return pd.DataFrame({"within_days": MILESTONES, "share": [float(shares.loc[d]) for d in MILESTONES]})


def last_full_day(summary: pd.DataFrame) -> pd.Timestamp:
    """The latest day the data can be complete for: the last offense date, or the day before the
    source's last update when that is earlier (the update day itself is still filling up)."""
    top = summary.iloc[0]
    last = pd.Timestamp(top["last_offense_date"])
    if pd.isna(top["last_source_update_utc"]):
        return last
    update_day = wall_clock(top["last_source_update_utc"]).normalize()
    return min(last, update_day - pd.Timedelta(days=1))


def data_as_of(summary: pd.DataFrame) -> pd.Timestamp:
    """When the data was current: the source's last update (local time), else the newest offense."""
    top = summary.iloc[0]
    if pd.isna(top["last_source_update_utc"]):
        return pd.Timestamp(top["last_offense_date"]) + pd.Timedelta(days=1)
    return wall_clock(top["last_source_update_utc"])


def reporting_completeness(reporting_lag: pd.DataFrame, summary: pd.DataFrame,
                           threshold: float = COMPLETE_SHARE) -> dict[str, Any]:
    """How late offenses are reported, and the last day complete enough to compare: comparison
    windows end there, so late reports do not build a drop into the newest days."""
    as_of = data_as_of(summary)
    shares = reported_within(settled_lags(reporting_lag, as_of)) if len(reporting_lag) else None
    days = days_to_complete(shares, threshold) if shares is not None else 0
    complete = min(complete_through(as_of, shares, threshold) if shares is not None else last_full_day(summary),
                   last_full_day(summary))
    return {"as_of": as_of, "threshold": threshold, "days_to_complete": days, "complete_through": complete,
            "measured": shares is not None,
            "milestones": milestones(shares) if shares is not None else pd.DataFrame(columns=["within_days", "share"])}


def local_today() -> pd.Timestamp:
    """Today's date in Memphis."""
    return wall_clock(pd.Timestamp.now(tz="UTC")).normalize()


def staleness(summary: pd.DataFrame, today: pd.Timestamp, synthetic: bool = False) -> str:
    """A warning when the newest offense is more than STALE_DAYS days before `today` (else "")."""
    last = pd.Timestamp(summary.iloc[0]["last_offense_date"])
    age = (today.normalize() - last).days
    if age <= STALE_DAYS:
        return ""
    if synthetic:
        return (f"The newest offense in this synthetic data is from {last:%d %B %Y}, {age} days before this report "
                "was made: the demo is a fixed snapshot (-p demo_day N serves the days after it).")
    return (f"The newest offense in this data is from {last:%d %B %Y}, {age} days before this report was "
            "made: the source may have stopped updating, or this run could not reach it. Recent figures are out of date.")
