"""The report's findings in words: short Markdown sentences built from the metrics, each saying
which unit it counts and whether a change is beyond chance."""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from .labels import label, percent
from .metrics import Period, category_shares, change_tables, comparison_periods, nibrs_rollup, twelve_months
from .precincts import Outlines
from .significance import FALL, RISE


def category_summary_text(shares: pd.DataFrame, rollup: pd.DataFrame, top: int = 5) -> str:
    """Two sentences a newcomer needs: which categories dominate, and the NIBRS split."""
    leader = shares.iloc[0]
    groups = ", ".join(f"{r.crime_against.lower()} {r.share:.0%}" for r in rollup.itertuples())
    return (f"**{label(leader['category'])}** is the largest category, with {leader['share']:.0%} of "
            f"offense rows; the top {top} categories together make up {shares['share'].head(top).sum():.0%}. "
            f"By NIBRS group: {groups}.")


def change_summary_text(name: str, table: pd.DataFrame, current: Period, previous: Period) -> str:
    """One sentence on the total: counts, percent change and whether it is more than noise."""
    total = table.iloc[0]
    pct = "n/a" if pd.isna(total["pct_change"]) else f"{total['pct_change']:+.1%}"
    beyond = table.iloc[1:]
    movers = beyond.loc[beyond["reading"].isin((FALL, RISE)), "category"].map(label).tolist()
    moved = (f"Categories with a change beyond chance: {', '.join(movers)}." if movers
             else "No single category changed beyond chance variation.")
    return (f"**{name}** ({current.label}): {int(total['current']):,} offense rows against "
            f"{int(total['previous']):,} in {previous.label} ({pct}, z = {total['z']:+.1f}, "
            f"{total['reading']}). {moved}")


def twelve_month_text(monthly_totals: pd.DataFrame, last_offense_date: Any) -> str:
    """The last 12 complete months against the 12 before, in one sentence (empty without 24 months)."""
    year = twelve_months(monthly_totals, last_offense_date)
    if year is None:
        return ""
    return (f"**Last 12 complete months** (to {year['end']:%B %Y}): {year['current']:,} offense rows against "
            f"{year['previous']:,} in the 12 months before ({year['pct_change']:+.1%}, z = {year['z']:+.1f}, "
            f"{year['reading']}).")


def key_findings(marts: Mapping[str, pd.DataFrame], head: Mapping[str, Any]) -> str:
    """The report in a few bullets: what dominates and how it is changing, with the chance test
    (each from the same metrics the report's sections show in full)."""
    shares = category_shares(marts["category_totals"])
    periods = comparison_periods(head["complete_through"])
    changes = change_tables(marts["daily_category"], shares, periods)
    lines = [category_summary_text(shares, nibrs_rollup(marts["category_totals"])),
             twelve_month_text(marts["monthly_totals"], head["last_offense_date"]),
             *(change_summary_text(name, changes[name], *periods[name]) for name in changes)]
    return "\n".join(f"- {line}" for line in lines if line)


def completeness_text(completeness: Mapping[str, Any]) -> str:
    """How late reports arrive, and where the comparisons therefore end."""
    if not completeness["measured"]:
        return ("This publication has no report times, so how late offenses are reported cannot be measured; "
                "comparisons end on the day before the source's last update.")
    share = dict(zip(completeness["milestones"]["within_days"], completeness["milestones"]["share"]))
    return (f"Offenses are reported late: {share[1]:.0%} of offense rows are reported within a day of the "
            f"offense, {share[7]:.0%} within a week, and it takes {completeness['days_to_complete']} days for "
            f"{completeness['threshold']:.0%} of them to be in (measured on offenses one to two years old). "
            f"So comparisons end on {completeness['complete_through']:%d %B %Y}, not on the newest offense date.")


def outlines_text(outlines: Outlines, outside: Mapping[str, Any]) -> str:
    """Where the map's outlines come from, and the located rows that fall inside none of them."""
    origin = ("synthetic outlines made for the synthetic demo data (not MPD's precincts)" if outlines.synthetic
              else f"MPD's station areas from {outlines.source}, retrieved {outlines.retrieved_at}")
    rows = f"{outside['offense_rows']:,} located offense {'row' if outside['offense_rows'] == 1 else 'rows'}"
    return (f"Precinct outlines: {origin}. {rows} ({percent(outside['share'])}) fall inside no precinct "
            "outline. Precincts shown hatched recorded none "
            "in the last 12 complete months (or are named differently in the incident data).")
