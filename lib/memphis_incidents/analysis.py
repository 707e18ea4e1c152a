"""Stage 4: answer the report's questions from the marts, as tables and matplotlib figures.

Every function takes mart frames and returns a frame, a dict or a figure; the notebook only calls
them and shows the result. Figures name their counting unit on the axis.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .config import Preset

PALETTE = "colorblind"
UNIT = {"offense_rows": "offense rows", "incidents": "distinct incidents"}


def load_marts(warehouse: Any, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """The marts the report reads, from the warehouse of any profile."""
    from .spark_jobs import MARTS

    return {name: warehouse.read_mart(name) for name in names or MARTS}


def month_floor(value: Any) -> pd.Timestamp:
    return pd.Timestamp(value).to_period("M").to_timestamp()


def latest_full_month(last_offense_date: Any) -> pd.Timestamp:
    """The last complete month: the month before the one holding the latest offense."""
    return month_floor(last_offense_date) - pd.DateOffset(months=1)


def complete_months(monthly: pd.DataFrame, last_offense_date: Any) -> pd.DataFrame:
    """Monthly rows without the partial current month."""
    months = pd.to_datetime(monthly["offense_month"])
    return monthly.loc[months <= latest_full_month(last_offense_date)].assign(offense_month=months)


def headline(summary: pd.DataFrame, preset: Preset, rows: dict[str, int] | None = None) -> dict[str, Any]:
    """The report's first lines: counts, span, freshness and what is excluded."""
    top = summary.iloc[0]
    last = pd.Timestamp(top["last_offense_date"])
    return {
        "offense_rows": int(top["offense_rows"]),
        "incidents": int(top["incidents"]),
        "first_offense_date": pd.Timestamp(top["first_offense_date"]).date().isoformat(),
        "last_offense_date": last.date().isoformat(),
        "latest_full_month": latest_full_month(last).strftime("%B %Y"),
        "last_source_update_utc": str(top["last_source_update_utc"]),
        "quarantined_rows": (rows or {}).get("quarantined"),
        "source": preset.title,
        "synthetic": preset.is_synthetic,
        "omissions": preset.omissions,
    }


def category_shares(category_totals: pd.DataFrame) -> pd.DataFrame:
    """Counts and shares by category, largest first."""
    totals = category_totals.groupby("category", as_index=False)[["offense_rows", "incidents"]].sum()
    totals["share_of_offense_rows"] = totals["offense_rows"] / totals["offense_rows"].sum()
    return totals.sort_values("offense_rows", ascending=False, ignore_index=True)


def figure_monthly_trend(monthly_totals: pd.DataFrame, last_offense_date: Any) -> Figure:
    """Offense rows and distinct incidents per complete month."""
    data = complete_months(monthly_totals, last_offense_date)
    fig, ax = plt.subplots(figsize=(10, 4))
    palette = sns.color_palette(PALETTE)
    for colour, unit in zip(palette, UNIT):
        ax.plot(data["offense_month"], data[unit], label=UNIT[unit], color=colour)
    ax.set(title="Reported crimes per month (complete months, Memphis local time)",
           xlabel="offense month", ylabel="count per month")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def figure_categories(shares: pd.DataFrame, top: int = 15) -> Figure:
    """Horizontal bars of offense rows for the largest categories."""
    data = shares.head(top)
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(data) + 1.5))
    sns.barplot(data=data, y="category", x="offense_rows", color=sns.color_palette(PALETTE)[0], ax=ax)
    ax.set(title=f"Top {len(data)} categories, all reported months", xlabel="offense rows",
           ylabel="")
    fig.tight_layout()
    return fig


def figure_top_category_trends(monthly_category: pd.DataFrame, last_offense_date: Any,
                               top: int = 6) -> Figure:
    """Small multiples: monthly offense rows of the largest categories."""
    data = complete_months(monthly_category, last_offense_date)
    leaders = data.groupby("category")["offense_rows"].sum().nlargest(top).index
    data = data[data["category"].isin(leaders)]
    grid = sns.relplot(data=data, x="offense_month", y="offense_rows", col="category",
                       col_order=list(leaders), col_wrap=3, kind="line", height=2.4, aspect=1.6,
                       facet_kws={"sharey": False}, color=sns.color_palette(PALETTE)[0])
    grid.set_titles("{col_name}")
    grid.set_axis_labels("offense month", "offense rows per month")
    grid.figure.suptitle("Monthly trend of the largest categories", y=1.02)
    return grid.figure
