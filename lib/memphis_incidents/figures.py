"""The report's figures: plain matplotlib `Figure` objects (not pyplot figures, so a notebook shows
exactly the figures it displays), each with a title, axis units and its counting unit, in
colour-blind-safe colours; and a text description of each for readers who cannot see it.
"""
from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.dates import YearLocator
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, PathPatch
from matplotlib.ticker import StrMethodFormatter

from .labels import label, labelled
from .marts import UNIT
from .metrics import CRIME_AGAINST, GROUPS, latest_full_month, month_grid, monthly_by_group, rolling_totals
from .precincts import Outlines
from .schema import CITY_BOX
from .significance import READINGS

COLOURS = sns.color_palette("colorblind").as_hex()
SEQUENTIAL = "cividis"
COUNT_FORMAT = StrMethodFormatter("{x:,.0f}")
GROUP_COLOURS = dict(zip(GROUPS, COLOURS[:3] + [COLOURS[7]]))
READING_COLOURS = dict(zip(READINGS, [COLOURS[0], COLOURS[3], COLOURS[7], "#c8c8c8"]))
DOWNTOWN = (35.1495, -90.0490)  # latitude, longitude of downtown Memphis, a landmark for the map


def figure_categories(shares: pd.DataFrame, top: int = 15) -> Figure:
    """Horizontal bars of offense rows for the largest categories, coloured by NIBRS group."""
    data = shares.head(top).iloc[::-1]
    fig = Figure(figsize=(10, 0.36 * len(data) + 1.6), layout="constrained")
    ax = fig.subplots()
    ax.barh(data["category"], data["offense_rows"], color=data["crime_against"].map(GROUP_COLOURS))
    for y, (rows, share) in enumerate(zip(data["offense_rows"], data["share"])):
        ax.annotate(f" {rows:,} ({share:.1%})", (rows, y), va="center", fontsize=8)
    ax.set(title=f"The {len(data)} largest categories, all reported months",
           xlabel="offense rows (all months)", ylabel="")
    ax.xaxis.set_major_formatter(COUNT_FORMAT)
    ax.margins(x=0.15)
    _group_legend(ax, data["crime_against"])
    return fig


def _group_legend(ax: Axes, groups: pd.Series) -> None:
    present = [g for g in GROUP_COLOURS if g in set(groups)]
    ax.legend(handles=[Patch(color=GROUP_COLOURS[g], label=g) for g in present], loc="lower right",
              title="NIBRS group", frameon=False)


def figure_monthly_trend(monthly_totals: pd.DataFrame, last_offense_date: Any) -> Figure:
    """Counts per complete month (top) and rolling 12-month totals (bottom), in both units."""
    data = rolling_totals(monthly_totals, last_offense_date)
    fig = Figure(figsize=(10, 6.4), layout="constrained")
    monthly, yearly = fig.subplots(2, 1, sharex=True)
    for colour, unit in zip(COLOURS, UNIT):
        monthly.plot(data["offense_month"], data[unit], color=colour, label=UNIT[unit])
        yearly.plot(data["offense_month"], data[f"{unit}_12m"], color=colour, label=UNIT[unit])
    monthly.set(title="Reported per month (complete months, Memphis local time)", ylabel="count per month")
    yearly.set(title="Rolling 12-month total (each point: the 12 months ending that month)",
               ylabel="count per 12 months", xlabel="offense month")
    for ax in (monthly, yearly):
        _count_axis(ax)
    monthly.legend(frameon=False)
    return fig


def _count_axis(ax: Axes) -> None:
    """Thousands separators, a zero baseline and a light grid."""
    ax.yaxis.set_major_formatter(COUNT_FORMAT)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def figure_rolling_by_group(daily_category: pd.DataFrame, last_offense_date: Any) -> Figure:
    """Rolling 12-month offense rows per NIBRS crime-against group (each row's own), one panel each."""
    data = month_grid(monthly_by_group(daily_category), last_offense_date, by="group")
    groups = [g for g in CRIME_AGAINST.values() if g in set(data["group"])]
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(groups), sharex=True))
    for ax, group in zip(axes, groups):
        monthly = data[data["group"] == group].groupby("offense_month")["offense_rows"].sum()
        ax.plot(monthly.index, monthly.rolling(12).sum(), color=GROUP_COLOURS[group])
        ax.set(title=group, xlabel="offense month")
        ax.xaxis.set_major_locator(YearLocator(2))
        _count_axis(ax)
    axes[0].set_ylabel("offense rows per 12 months")
    fig.suptitle("Rolling 12-month totals by NIBRS crime-against group")
    return fig


def figure_top_category_trends(monthly_category: pd.DataFrame, last_offense_date: Any,
                               top: int = 9) -> Figure:
    """Small multiples: offense rows per month of the largest categories, with a 12-month average."""
    data = month_grid(monthly_category, last_offense_date, by="category")
    leaders = data.groupby("category")["offense_rows"].sum().nlargest(top).index
    columns = 3
    rows = math.ceil(len(leaders) / columns)
    fig = Figure(figsize=(10, 2.3 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True)).ravel()
    for ax, category in zip(axes, leaders):
        series = data[data["category"] == category].set_index("offense_month")["offense_rows"]
        ax.plot(series.index, series, color=COLOURS[0], alpha=0.35, linewidth=1, label="per month")
        ax.plot(series.index, series.rolling(12).mean(), color=COLOURS[0], linewidth=2,
                label="12-month average")
        ax.set_title(label(category), fontsize=10)
        ax.xaxis.set_major_locator(YearLocator(2))
        _count_axis(ax)
    for ax in axes[len(leaders):]:
        ax.set_visible(False)
    for ax in axes[::columns]:
        ax.set_ylabel("offense rows per month")
    for ax in axes[len(leaders) - columns:len(leaders)]:
        ax.set_xlabel("offense month")
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle(f"Monthly trend of the {len(leaders)} largest categories (each panel has its own scale)")
    return fig


def figure_change(tables: dict[str, pd.DataFrame]) -> Figure:
    """One panel per comparison: each category's z-score, coloured by the change test's reading."""
    fig = Figure(figsize=(10, 0.32 * max(len(t) for t in tables.values()) + 2.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(tables), sharey=True))
    reach = max(3.0, *(t["z"].abs().max() + 0.5 for t in tables.values()))
    for ax, (name, table) in zip(axes, tables.items()):
        data = table.iloc[::-1].reset_index(drop=True)
        ax.axvline(0, color="0.5", linewidth=0.8)
        for reading, colour in READING_COLOURS.items():
            points = data[data["reading"] == reading]
            ax.scatter(points["z"], points.index, color=colour, zorder=3, label=reading)
        ax.set_yticks(data.index, labelled(data["category"]))
        ax.set(title=name, xlim=(-reach, reach), xlabel="z-score of offense rows (− fewer, + more)")
        ax.grid(axis="x", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(READING_COLOURS),
               frameon=False, title="colour: the change test's reading, judged across all categories at once")
    fig.suptitle("Change in reported offense rows: z = (current − expected) / its spread, allowing for "
                 "each category's usual swings")
    return fig


def figure_seasonality(season: pd.DataFrame) -> Figure:
    """Average offense rows per day by month of year (bars), each year as a dot."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax = fig.subplots()
    mean = season.groupby("month")["offense_rows_per_day"].mean()
    ax.bar(mean.index, mean, color=COLOURS[0], alpha=0.45, label="average over the years")
    ax.scatter(season["month"], season["offense_rows_per_day"], s=10, color=COLOURS[0],
               label="one year's month")
    ax.set_xticks(range(1, 13), [pd.Timestamp(2000, m, 1).strftime("%b") for m in range(1, 13)])
    ax.set(title="Seasonality: reported offense rows per day, by month of year (complete months)",
           xlabel="month of year", ylabel="offense rows per day")
    ax.legend(frameon=False, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return fig


def figure_hour_weekday(grid: pd.DataFrame) -> Figure:
    """Heatmap of offense rows by hour of day and day of week (Memphis local time)."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(grid, ax=ax, cmap=SEQUENTIAL, linewidths=0.5, linecolor="white",
                cbar_kws={"label": "offense rows (all years)", "format": COUNT_FORMAT})
    ax.set(title="When offenses happened: hour of day × day of week (Memphis local time)",
           xlabel="hour of day (0 = midnight to 1 am)", ylabel="")
    ax.tick_params(axis="y", labelrotation=0)
    return fig


def figure_precincts(table: pd.DataFrame, last_offense_date: Any) -> Figure:
    """Bars: offense rows per precinct in the last 12 complete months; dots: the 12 before."""
    data = table.iloc[::-1]
    end = latest_full_month(last_offense_date)
    fig = Figure(figsize=(10, 0.36 * len(data) + 1.6), layout="constrained")
    ax = fig.subplots()
    ax.barh(data["precinct"], data["last_12_months"], color=COLOURS[0],
            label=f"12 months to {end:%b %Y}")
    ax.scatter(data["previous_12_months"], data["precinct"], color=COLOURS[1], zorder=3,
               label="the 12 months before")
    ax.set(title="Offense rows by precinct, last 12 complete months", xlabel="offense rows per 12 months",
           ylabel="")
    ax.xaxis.set_major_formatter(COUNT_FORMAT)
    ax.legend(frameon=False, loc="lower right")
    return fig


def hex_width_km(gridsize: int) -> float:
    """Width of one map hexagon, in km, for a hexbin with `gridsize` hexagons across the city box."""
    lon0, lon1 = CITY_BOX["lon"]
    lat = sum(CITY_BOX["lat"]) / 2
    return (lon1 - lon0) / gridsize * 111.32 * math.cos(math.radians(lat))


def figure_hexbin_map(geo_grid: pd.DataFrame, gridsize: int = 50) -> Figure:
    """Hexbin map of located offense rows inside the city box (no map tiles: axes in degrees)."""
    (lat0, lat1), (lon0, lon1) = CITY_BOX["lat"], CITY_BOX["lon"]
    inside = geo_grid[geo_grid["latitude"].between(lat0, lat1) & geo_grid["longitude"].between(lon0, lon1)]
    fig = Figure(figsize=(10, 6.6), layout="constrained")
    ax = fig.subplots()
    if inside.empty:  # a publication without coordinates (or none usable): say so, draw no map
        ax.text(0.5, 0.5, "No offense row in this data has usable coordinates: no map.", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    hexes = ax.hexbin(inside["longitude"], inside["latitude"], C=inside["offense_rows"],
                      reduce_C_function=np.sum, gridsize=gridsize, extent=(lon0, lon1, lat0, lat1),
                      cmap=SEQUENTIAL, bins="log", mincnt=1, linewidths=0.2)
    fig.colorbar(hexes, ax=ax, label="offense rows per hexagon (log scale)", shrink=0.8, format=COUNT_FORMAT)
    ax.plot(DOWNTOWN[1], DOWNTOWN[0], marker="*", markersize=12, color=COLOURS[3], linestyle="none",
            label="downtown Memphis")
    ax.set_aspect(1 / math.cos(math.radians((lat0 + lat1) / 2)))
    ax.set(xlim=(lon0, lon1), ylim=(lat0, lat1), xlabel="longitude (degrees east)",
           ylabel="latitude (degrees north)",
           title=f"Where located offenses were reported, all years (each hexagon ≈ "
                 f"{hex_width_km(gridsize):.1f} km across)")
    ax.legend(frameon=False, loc="upper right")
    return fig


def figure_precinct_map(geo_grid: pd.DataFrame, outlines: Outlines, precinct_rows: pd.Series,
                        gridsize: int = 50) -> Figure:
    """Two maps with precinct outlines and names: located offense rows as hexagons, and offense rows
    per precinct (last 12 complete months) as a choropleth. No map tiles: the report stays offline."""
    (lat0, lat1), (lon0, lon1) = CITY_BOX["lat"], CITY_BOX["lon"]
    fig = Figure(figsize=(11, 5.6), layout="constrained")
    hexmap, choropleth = fig.subplots(1, 2, sharex=True, sharey=True)
    inside = geo_grid[geo_grid["latitude"].between(lat0, lat1) & geo_grid["longitude"].between(lon0, lon1)]
    if len(inside):
        hexes = hexmap.hexbin(inside["longitude"], inside["latitude"], C=inside["offense_rows"],
                              reduce_C_function=np.sum, gridsize=gridsize, extent=(lon0, lon1, lat0, lat1),
                              cmap=SEQUENTIAL, bins="log", mincnt=1, linewidths=0.2)
        fig.colorbar(hexes, ax=hexmap, label="offense rows per hexagon (log scale)", shrink=0.7,
                     format=COUNT_FORMAT, location="bottom")
    values = precinct_rows.reindex([name.upper() for name in outlines.names])
    scale = Normalize(0, max(float(values.max()), 1.0) if values.notna().any() else 1.0)
    for name, path, value in zip(outlines.names, outlines.paths(), values):
        colour = "#e0e0e0" if pd.isna(value) else matplotlib.colormaps[SEQUENTIAL](scale(value))
        choropleth.add_patch(PathPatch(path, facecolor=colour, edgecolor="white", linewidth=1.2))
        for ax in (hexmap, choropleth):
            ax.add_patch(PathPatch(path, fill=False, edgecolor="0.25", linewidth=0.8))
            ax.annotate(label(name), np.asarray(path.vertices).mean(0), ha="center", va="center", fontsize=7,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75, "linewidth": 0})
    fig.colorbar(ScalarMappable(scale, SEQUENTIAL), ax=choropleth, shrink=0.7, format=COUNT_FORMAT,
                 location="bottom", label="offense rows per precinct, last 12 complete months")
    for ax, title in ((hexmap, "Located offense rows, all years"), (choropleth, "Offense rows by precinct")):
        ax.set_aspect(1 / math.cos(math.radians((lat0 + lat1) / 2)))
        ax.set(xlim=(lon0, lon1), ylim=(lat0, lat1), xlabel="longitude (degrees east)", title=title)
    hexmap.set_ylabel("latitude (degrees north)")
    outlines_said = "synthetic precinct outlines (not MPD's)" if outlines.synthetic else "MPD precinct outlines"
    fig.suptitle(f"Where offenses were reported, with {outlines_said}")
    return fig


def figure_alt_text(fig: Figure) -> str:
    """A text description of a figure from its titles and axis labels, for readers who cannot see it."""
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    colour = [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]
    titles = [fig.get_suptitle(), *(ax.get_title() for ax in panels)]
    axes = {"Horizontal axis": [ax.get_xlabel() for ax in panels],
            "Vertical axis": [ax.get_ylabel() for ax in panels], "Colour": colour}
    parts = [t for t in dict.fromkeys(titles) if t]
    parts += [f"{name}: {', '.join(dict.fromkeys(l for l in labels if l))}"
              for name, labels in axes.items() if any(labels)]
    return "Chart. " + ". ".join(parts) + "."
