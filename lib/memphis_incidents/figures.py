"""The report's charts: plain matplotlib `Figure` objects (not pyplot figures, so a notebook shows
exactly the figures it displays), each with a title, axis units and its counting unit, in
colour-blind-safe colours; and a text description of each for readers who cannot see it.

Every figure is drawn for a `width` in inches: WIDE for a laptop's report column, NARROW for a phone
held upright, where panels stack, legends go below and text keeps its size (figure_html.py shows
the one that fits). The maps are in maps.py.
"""
from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.dates import YearLocator
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from .labels import label, labelled, percent
from .marts import UNIT
from .metrics import CRIME_AGAINST, GROUPS, latest_full_month, month_grid, monthly_by_group, rolling_totals
from .significance import READINGS

COLOURS = sns.color_palette("colorblind").as_hex()
SEQUENTIAL = "cividis"
COUNT_FORMAT = StrMethodFormatter("{x:,.0f}")
GROUP_COLOURS = dict(zip(GROUPS, COLOURS[:3] + [COLOURS[7]]))
READING_COLOURS = dict(zip(READINGS, [COLOURS[0], COLOURS[3], COLOURS[7], "#c8c8c8"]))
WIDE, NARROW = 10.0, 4.4  # figure widths in inches: a laptop's report column, a phone (about 420 CSS px)


def is_narrow(width: float) -> bool:
    """Whether a figure `width` inches wide gets the phone layout."""
    return width < 6


def fill(text: str, inches: float, points: float = 10) -> str:
    """Text broken into lines that fit `inches` at a font of `points` (for titles of narrow panels)."""
    return textwrap.fill(text, max(12, int(inches * 72 / (points * 0.6))))


def count_ticks(axis: Any, width: float) -> None:
    """Counts with thousands separators, few enough ticks that their labels never touch."""
    axis.set_major_locator(MaxNLocator(4 if is_narrow(width) else 8))
    axis.set_major_formatter(COUNT_FORMAT)


def below_legend(fig: Figure, handles: list[Any], width: float, title: str = "") -> None:
    """A legend under the plot, never over the data: one row on a laptop, two columns on a phone."""
    columns = 2 if is_narrow(width) else len(handles)
    fig.legend(handles=handles, loc="outside lower center", ncols=columns, frameon=False,
               title=fill(title, width, 11) if title else None)


def figure_categories(shares: pd.DataFrame, top: int = 15, width: float = WIDE) -> Figure:
    """Horizontal bars of offense rows for the largest categories, coloured by NIBRS crime-against group."""
    data = shares.head(top).iloc[::-1]
    narrow = is_narrow(width)
    fig = Figure(figsize=(width, 0.36 * len(data) + 2.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(labelled(data["category"]), data["offense_rows"], color=data["crime_against"].map(GROUP_COLOURS))
    for y, (rows, share) in enumerate(zip(data["offense_rows"], data["share"])):
        ax.annotate(f" {percent(share)}" if narrow else f" {rows:,} ({percent(share)})", (rows, y), va="center", fontsize=8)
    ax.set_title(f"The {len(data)} largest categories, all reported months", wrap=True)
    ax.set(xlabel="offense rows (all months)", ylabel="")
    count_ticks(ax.xaxis, width)
    ax.margins(x=0.3 if narrow else 0.15)
    present = [g for g in GROUP_COLOURS if g in set(data["crime_against"])]
    below_legend(fig, [Patch(color=GROUP_COLOURS[g], label=g) for g in present], width, "NIBRS crime against")
    return fig


def figure_monthly_trend(monthly_totals: pd.DataFrame, last_offense_date: Any, width: float = WIDE) -> Figure:
    """Counts per complete month (top) and rolling 12-month totals (bottom), in both units."""
    data = rolling_totals(monthly_totals, last_offense_date)
    fig = Figure(figsize=(width, 7.2 if is_narrow(width) else 6.4), layout="constrained")
    monthly, yearly = fig.subplots(2, 1, sharex=True)
    for colour, unit in zip(COLOURS, UNIT):
        monthly.plot(data["offense_month"], data[unit], color=colour, label=UNIT[unit])
        yearly.plot(data["offense_month"], data[f"{unit}_12m"], color=colour, label=UNIT[unit])
    monthly.set_title("Reported per month (complete months, Memphis local time)", wrap=True)
    yearly.set_title("Rolling 12-month total (each point: the 12 months ending that month)", wrap=True)
    monthly.set_ylabel("count per month")
    yearly.set(ylabel="count per 12 months", xlabel="offense month")
    for ax in (monthly, yearly):
        _count_axis(ax)
    below_legend(fig, monthly.get_legend_handles_labels()[0], width)
    return fig


def _count_axis(ax: Axes) -> None:
    """Thousands separators, a zero baseline and a light grid."""
    ax.yaxis.set_major_formatter(COUNT_FORMAT)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def panel_grid(fig: Figure, panels: int, columns: int, **shared: Any) -> np.ndarray:
    """`panels` axes in rows of `columns` (flattened), the spare ones hidden."""
    axes = np.atleast_1d(fig.subplots(math.ceil(panels / columns), columns, **shared)).ravel()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return axes


def figure_rolling_by_group(daily_category: pd.DataFrame, last_offense_date: Any, width: float = WIDE) -> Figure:
    """Rolling 12-month offense rows per NIBRS crime-against group (each row's own), one panel each."""
    data = month_grid(monthly_by_group(daily_category), last_offense_date, by="group")
    groups = [g for g in CRIME_AGAINST.values() if g in set(data["group"])]
    columns = 1 if is_narrow(width) else len(groups)
    fig = Figure(figsize=(width, 2.2 * math.ceil(len(groups) / columns) + 1.0), layout="constrained")
    axes = panel_grid(fig, len(groups), columns, sharex=True)
    for ax, group in zip(axes, groups):
        monthly = data[data["group"] == group].groupby("offense_month")["offense_rows"].sum()
        ax.plot(monthly.index, monthly.rolling(12).sum(), color=GROUP_COLOURS[group])
        ax.set_title(group)
        ax.xaxis.set_major_locator(YearLocator(2))
        _count_axis(ax)
    for ax in axes[::columns]:
        ax.set_ylabel("offense rows per 12 months")
    axes[len(groups) - 1].set_xlabel("offense month")
    fig.suptitle("Rolling 12-month totals by NIBRS crime-against group", wrap=True)
    return fig


def figure_top_category_trends(monthly_category: pd.DataFrame, last_offense_date: Any,
                               top: int = 9, width: float = WIDE) -> Figure:
    """Small multiples: offense rows per month of the largest categories, with a 12-month average."""
    data = month_grid(monthly_category, last_offense_date, by="category")
    leaders = data.groupby("category")["offense_rows"].sum().nlargest(top).index
    columns = 2 if is_narrow(width) else 3
    fig = Figure(figsize=(width, 2.1 * math.ceil(len(leaders) / columns) + 1.4), layout="constrained")
    axes = panel_grid(fig, len(leaders), columns, sharex=True)
    for ax, category in zip(axes, leaders):
        series = data[data["category"] == category].set_index("offense_month")["offense_rows"]
        ax.plot(series.index, series, color=COLOURS[0], alpha=0.35, linewidth=1, label="per month")
        ax.plot(series.index, series.rolling(12).mean(), color=COLOURS[0], linewidth=2,
                label="12-month average")
        ax.set_title(fill(str(label(category)), width / columns - 0.4, 9), fontsize=9)
        ax.xaxis.set_major_locator(YearLocator(2 if columns == 3 else 3))
        _count_axis(ax)
    for ax in axes[::columns]:
        ax.set_ylabel("offense rows per month")
    for ax in axes[max(0, len(leaders) - columns):len(leaders)]:
        ax.set_xlabel("offense month")
    below_legend(fig, axes[0].get_legend_handles_labels()[0], width)
    fig.suptitle(f"Monthly trend of the {len(leaders)} largest categories (each panel has its own scale)",
                 wrap=True)
    return fig


def figure_change(tables: dict[str, pd.DataFrame], width: float = WIDE) -> Figure:
    """One panel per comparison: each category's z-score, coloured by the change test's reading."""
    narrow = is_narrow(width)
    rows = max(len(t) for t in tables.values())
    columns = 1 if narrow else len(tables)
    height = (0.3 * rows + 1.2) * len(tables) + 2.2 if narrow else 0.32 * rows + 2.6
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = panel_grid(fig, len(tables), columns, sharey=True)
    reach = max(3.0, *(t["z"].abs().max() + 0.5 for t in tables.values()))
    for ax, (name, table) in zip(axes, tables.items()):
        data = table.iloc[::-1].reset_index(drop=True)
        ax.axvline(0, color="0.5", linewidth=0.8)
        for reading, colour in READING_COLOURS.items():
            points = data[data["reading"] == reading]
            ax.scatter(points["z"], points.index, color=colour, zorder=3, label=reading)
        ax.set_yticks(data.index, labelled(data["category"]), fontsize=9 if narrow else 10)
        ax.set(title=name, xlim=(-reach, reach),
               xlabel="z-score of offense rows" + ("\n" if narrow else " ") + "(− fewer, + more)")
        ax.grid(axis="x", alpha=0.3)
    below_legend(fig, axes[0].get_legend_handles_labels()[0], width,
                 "colour: the change test's reading, judged across all categories at once")
    fig.suptitle("Change in reported offense rows: z = (current − expected) / its spread, allowing for "
                 "each category's usual swings", wrap=True)
    return fig


def figure_seasonality(season: pd.DataFrame, width: float = WIDE) -> Figure:
    """Average offense rows per day by month of year (bars), each year as a dot."""
    fig = Figure(figsize=(width, 4.6 if is_narrow(width) else 4.2), layout="constrained")
    ax = fig.subplots()
    mean = season.groupby("month")["offense_rows_per_day"].mean()
    ax.bar(mean.index, mean, color=COLOURS[0], alpha=0.45, label="average over the years")
    ax.scatter(season["month"], season["offense_rows_per_day"], s=10, color=COLOURS[0],
               label="one year's month")
    months = [pd.Timestamp(2000, m, 1).strftime("%b") for m in range(1, 13)]
    ax.set_xticks(range(1, 13), [m[0] for m in months] if is_narrow(width) else months)
    ax.set_title("Seasonality: reported offense rows per day, by month of year (complete months)", wrap=True)
    ax.set(xlabel="month of year", ylabel="offense rows per day")
    below_legend(fig, ax.get_legend_handles_labels()[0], width)
    ax.grid(axis="y", alpha=0.3)
    return fig


def figure_hour_weekday(grid: pd.DataFrame, width: float = WIDE) -> Figure:
    """Heatmap of offense rows by hour of day and day of week (Memphis local time); on a phone the
    hours run down the page."""
    narrow = is_narrow(width)
    fig = Figure(figsize=(width, 7.6 if narrow else 3.8), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(grid.T if narrow else grid, ax=ax, cmap=SEQUENTIAL, linewidths=0.5, linecolor="white",
                cbar_kws={"label": "offense rows (all years)", "format": COUNT_FORMAT,
                          "location": "bottom" if narrow else "right"})
    hours = "hour of day (0 = midnight to 1 am)"
    ax.set_title("When offenses happened: hour of day × day of week (Memphis local time)", wrap=True)
    ax.set(xlabel="" if narrow else hours, ylabel=hours if narrow else "")
    ax.tick_params(axis="y", labelrotation=0)
    return fig


def figure_precincts(table: pd.DataFrame, last_offense_date: Any, width: float = WIDE) -> Figure:
    """Bars: offense rows per precinct in the last 12 complete months; dots: the 12 before."""
    data = table.iloc[::-1]
    end = latest_full_month(last_offense_date)
    fig = Figure(figsize=(width, 0.36 * len(data) + 2.2), layout="constrained")
    ax = fig.subplots()
    names = labelled(data["precinct"])
    ax.barh(names, data["last_12_months"], color=COLOURS[0], label=f"12 months to {end:%b %Y}")
    ax.scatter(data["previous_12_months"], names, color=COLOURS[1], zorder=3, label="the 12 months before")
    ax.set_title("Offense rows by precinct, last 12 complete months", wrap=True)
    ax.set(xlabel="offense rows per 12 months", ylabel="")
    count_ticks(ax.xaxis, width)
    below_legend(fig, ax.get_legend_handles_labels()[0], width)
    return fig


def figure_alt_text(fig: Figure) -> str:
    """A text description of a figure from its titles and axis labels, for readers who cannot see it."""
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    colour = [ax.get_ylabel() or ax.get_xlabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]
    titles = [fig.get_suptitle(), *(ax.get_title() for ax in panels)]
    axes = {"Horizontal axis": [ax.get_xlabel() for ax in panels],
            "Vertical axis": [ax.get_ylabel() for ax in panels], "Colour": colour}
    parts = [" ".join(t.split()) for t in dict.fromkeys(titles) if t]
    parts += [f"{name}: {', '.join(dict.fromkeys(l for l in labels if l))}"
              for name, labels in axes.items() if any(labels)]
    return "Chart. " + ". ".join(parts) + "."
