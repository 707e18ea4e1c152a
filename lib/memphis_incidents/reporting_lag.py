"""How complete recent days are: offenses are reported, and published, days or weeks after they
happen, so the newest days always hold fewer reports than they will.

From the lag between offense and report in settled history (offenses one to two years old, whose
reports are all in), the share of an offense day's eventual reports that are in after k days is
F(k). A day k days before the data's as-of date is complete enough to compare once F(k) reaches the
threshold (95 % by default); comparison windows end on the last such day.
"""
from __future__ import annotations

import pandas as pd

from .marts import MAX_LAG_DAYS

COMPLETE_SHARE = 0.95
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
