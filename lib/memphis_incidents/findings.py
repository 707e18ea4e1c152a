"""The report's findings in words: short Markdown sentences built from the metrics, each saying
which unit it counts and whether a change is beyond chance."""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from .metrics import (FALL, RISE, Period, category_shares, change_tables, comparison_periods, nibrs_rollup,
                      poisson_z, rolling_totals, z_reading)


def category_summary_text(shares: pd.DataFrame, rollup: pd.DataFrame, top: int = 5) -> str:
    """Two sentences a newcomer needs: which categories dominate, and the NIBRS split."""
    leader = shares.iloc[0]
    groups = ", ".join(f"{r.crime_against.lower()} {r.share:.0%}" for r in rollup.itertuples())
    return (f"**{leader['category'].title()}** is the largest category, with {leader['share']:.0%} of "
            f"offense rows; the top {top} categories together make up {shares['share'].head(top).sum():.0%}. "
            f"By NIBRS group: {groups}.")


def change_summary_text(name: str, table: pd.DataFrame, current: Period, previous: Period) -> str:
    """One sentence on the total: counts, percent change and whether it is more than noise."""
    total = table.iloc[0]
    pct = "n/a" if pd.isna(total["pct_change"]) else f"{total['pct_change']:+.1%}"
    beyond = table.iloc[1:]
    movers = beyond.loc[beyond["reading"].isin((FALL, RISE)), "category"].str.title().tolist()
    moved = (f"Categories with a change beyond chance: {', '.join(movers)}." if movers
             else "No single category changed beyond chance variation.")
    return (f"**{name}** ({current.label}): {int(total['current']):,} offense rows against "
            f"{int(total['previous']):,} in {previous.label} ({pct}, z = {total['z']:+.1f}, "
            f"{total['reading']}). {moved}")


def twelve_month_text(monthly_totals: pd.DataFrame, last_offense_date: Any) -> str:
    """The last 12 complete months against the 12 before, in one sentence (empty without 24 months)."""
    data = rolling_totals(monthly_totals, last_offense_date)
    if len(data) < 24:
        return ""
    now, before = (int(data["offense_rows_12m"].iloc[i]) for i in (-1, -13))
    end = data["offense_month"].iloc[-1]
    z = poisson_z(now, before)
    return (f"**Last 12 complete months** (to {end:%B %Y}): {now:,} offense rows against {before:,} in "
            f"the 12 months before ({(now - before) / max(before, 1):+.1%}, z = {z:+.1f}, "
            f"{z_reading(z, now + before)}).")


def key_findings(marts: Mapping[str, pd.DataFrame], head: Mapping[str, Any]) -> str:
    """The report in a few bullets: what dominates and how it is changing, with the chance test
    (each from the same metrics the report's sections show in full)."""
    shares = category_shares(marts["category_totals"])
    periods = comparison_periods(head["last_full_day"])
    changes = change_tables(marts["daily_category"], shares, periods)
    lines = [category_summary_text(shares, nibrs_rollup(marts["category_totals"])),
             twelve_month_text(marts["monthly_totals"], head["last_offense_date"]),
             *(change_summary_text(name, changes[name], *periods[name]) for name in changes)]
    return "\n".join(f"- {line}" for line in lines if line)
