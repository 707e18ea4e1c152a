"""Stage 4: answer the report's questions from the marts, as tables, sentences and figures.

Every function takes mart frames (or plain values) and returns a frame, a dict, a string or a
figure; the notebook only calls them and shows the result. Counts come in two named units: offense
rows (one per offense) and distinct incidents. Figures are plain `Figure` objects, not pyplot
figures, so a notebook shows exactly the figures it displays, each with a title, axis units and its
counting unit, in colour-blind-safe colours.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.dates import YearLocator
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from .config import Preset
from .schema import CITY_BOX, LOCAL_TZ

COLOURS = sns.color_palette("colorblind").as_hex()
SEQUENTIAL = "cividis"
COUNT_FORMAT = StrMethodFormatter("{x:,.0f}")
UNIT = {"offense_rows": "offense rows", "incidents": "distinct incidents"}
CRIME_AGAINST = {"PERSONS": "Crimes against persons", "PROPERTY": "Crimes against property",
                 "SOCIETY": "Crimes against society"}
NOT_CLASSIFIED = "Not classified"
GROUP_COLOURS = dict(zip([*CRIME_AGAINST.values(), NOT_CLASSIFIED], COLOURS[:3] + [COLOURS[7]]))
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Both compared periods are noisy counts, so 2·(√current − √previous) spreads about 1.4 times wider
# than a standard normal: a change counts as beyond chance from |z| = 3 (the threshold the metric's
# author recommends), and not at all when the two periods hold fewer than MIN_COUNTS reports together.
SIGNAL_Z = 3.0
MIN_COUNTS = 10
READINGS = {"fall beyond chance": COLOURS[0], "rise beyond chance": COLOURS[3],
            "within chance variation": COLOURS[7], "too few to judge": "#c8c8c8"}
ALL_CATEGORIES = "All categories"
DOWNTOWN = (35.1495, -90.0490)  # latitude, longitude of downtown Memphis, a landmark for the map
QUARANTINE_REASONS = {
    "missing_row_id": "no source row id, so the row cannot be tracked",
    "missing_offense_date": "no offense date",
    "unparseable_offense_date": "offense date not readable",
    "offense_date_before_1970": "offense date before 1970 (impossible)",
    "offense_date_in_future": "offense date in the future (impossible)",
}
GEO_STATUS = {
    "ok": "located inside the Memphis area (on the map)",
    "missing": "no coordinates published",
    "invalid": "coordinates not readable",
    "zero": "coordinates at 0, 0 (a placeholder)",
    "outside_city": "coordinates outside the Memphis area",
}


@dataclass(frozen=True)
class Period:
    """An inclusive range of offense dates, named for the reader."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def label(self) -> str:
        return f"{self.start.day} {self.start:%b %Y} to {self.end.day} {self.end:%b %Y}"


# ---- marts and dates ---------------------------------------------------------------------------
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


def month_grid(monthly: pd.DataFrame, last_offense_date: Any, by: str | None = None) -> pd.DataFrame:
    """Complete months only, with months the mart lacks (nothing reported) filled with zero counts."""
    data = complete_months(monthly, last_offense_date)
    months = pd.date_range(data["offense_month"].min(), latest_full_month(last_offense_date), freq="MS",
                           name="offense_month")
    keys = ["offense_month", by] if by else ["offense_month"]
    index = pd.MultiIndex.from_product([months, sorted(data[by].unique())], names=keys) if by else months
    counts = data.set_index(keys)[list(UNIT)]
    return counts.reindex(index, fill_value=0).reset_index()


def local_time(value: Any) -> pd.Timestamp:
    """A UTC time (aware, or naive meaning UTC) as Memphis wall-clock time."""
    moment = pd.Timestamp(value)
    return (moment if moment.tzinfo else moment.tz_localize("UTC")).tz_convert(LOCAL_TZ)


def last_full_day(summary: pd.DataFrame) -> pd.Timestamp:
    """The latest day the data can be complete for: the last offense date, or the day before the
    source's last update when that is earlier (the update day itself is still filling up)."""
    top = summary.iloc[0]
    last = pd.Timestamp(top["last_offense_date"])
    if pd.isna(top["last_source_update_utc"]):
        return last
    update_day = local_time(top["last_source_update_utc"]).tz_localize(None).normalize()
    return min(last, update_day - pd.Timedelta(days=1))


# ---- headline ----------------------------------------------------------------------------------
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
        "last_source_update": None if pd.isna(updated) else local_time(updated),
        "quarantined_rows": int(quarantine["rows"].sum()),
        "bad_date_rows": int(quarantine.loc[dates, "rows"].sum()),
        "unlocated_rows": int(top["offense_rows"]) - int(top["geo_ok"]),
        "source": preset.title,
        "synthetic": preset.is_synthetic,
        "omissions": preset.omissions,
    }


# ---- distribution by category ------------------------------------------------------------------
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
    order = [g for g in GROUP_COLOURS if g in table.index]
    return table.loc[order].reset_index()


def category_summary_text(shares: pd.DataFrame, rollup: pd.DataFrame, top: int = 5) -> str:
    """Two sentences a newcomer needs: which categories dominate, and the NIBRS split."""
    leader = shares.iloc[0]
    groups = ", ".join(f"{r.crime_against.lower()} {r.share:.0%}" for r in rollup.itertuples())
    return (f"**{leader['category'].title()}** is the largest category, with {leader['share']:.0%} of "
            f"offense rows; the top {top} categories together make up {shares['share'].head(top).sum():.0%}. "
            f"By NIBRS group: {groups}.")


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
    from matplotlib.patches import Patch

    present = [g for g in GROUP_COLOURS if g in set(groups)]
    ax.legend(handles=[Patch(color=GROUP_COLOURS[g], label=g) for g in present], loc="lower right",
              title="NIBRS group", frameon=False)


# ---- month by month ----------------------------------------------------------------------------
def rolling_totals(monthly_totals: pd.DataFrame, last_offense_date: Any, window: int = 12) -> pd.DataFrame:
    """Complete months with the sum of the `window` months ending at each (empty until a full window)."""
    data = month_grid(monthly_totals, last_offense_date)
    rolled = data[list(UNIT)].rolling(window).sum()
    return data.assign(**{f"{unit}_{window}m": rolled[unit] for unit in UNIT})


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


def figure_rolling_by_group(monthly_category: pd.DataFrame, category_totals: pd.DataFrame,
                            last_offense_date: Any) -> Figure:
    """Rolling 12-month offense rows per NIBRS crime-against group, one panel each."""
    data = month_grid(monthly_category, last_offense_date, by="category")
    data["group"] = data["category"].map(category_groups(category_totals))
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
        ax.set_title(category.title(), fontsize=10)
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


# ---- change ------------------------------------------------------------------------------------
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


def z_reading(z: float, counts: int) -> str:
    """What a z-score says about a change, given how many reports the two periods hold together."""
    if counts < MIN_COUNTS:
        return "too few to judge"
    if z >= SIGNAL_Z:
        return "rise beyond chance"
    if z <= -SIGNAL_Z:
        return "fall beyond chance"
    return "within chance variation"


def change_summary_text(name: str, table: pd.DataFrame, current: Period, previous: Period) -> str:
    """One sentence on the total: counts, percent change and whether it is more than noise."""
    total = table.iloc[0]
    pct = "n/a" if pd.isna(total["pct_change"]) else f"{total['pct_change']:+.1%}"
    beyond = table.iloc[1:]
    movers = beyond.loc[beyond["reading"].str.endswith("beyond chance"), "category"].str.title().tolist()
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


def key_findings(shares: pd.DataFrame, rollup: pd.DataFrame, monthly_totals: pd.DataFrame,
                 last_offense_date: Any, changes: dict[str, pd.DataFrame],
                 periods: dict[str, tuple[Period, Period]]) -> str:
    """The report in a few bullets: what dominates and how it is changing, with the chance test."""
    lines = [category_summary_text(shares, rollup), twelve_month_text(monthly_totals, last_offense_date),
             *(change_summary_text(name, changes[name], *periods[name]) for name in changes)]
    return "\n".join(f"- {line}" for line in lines if line)


def figure_change(tables: dict[str, pd.DataFrame]) -> Figure:
    """One panel per comparison: each category's Poisson z-score, with the chance band shaded."""
    fig = Figure(figsize=(10, 0.32 * max(len(t) for t in tables.values()) + 2.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(tables), sharey=True))
    reach = max(SIGNAL_Z + 1, *(t["z"].abs().max() + 0.5 for t in tables.values()))
    for ax, (name, table) in zip(axes, tables.items()):
        data = table.iloc[::-1].reset_index(drop=True)
        ax.axvspan(-SIGNAL_Z, SIGNAL_Z, color="0.92")
        ax.axvline(0, color="0.5", linewidth=0.8)
        for reading, colour in READINGS.items():
            points = data[data["reading"] == reading]
            ax.scatter(points["z"], points.index, color=colour, zorder=3, label=reading)
        ax.set_yticks(data.index, data["category"].str.title())
        ax.set(title=name, xlim=(-reach, reach), xlabel="z-score of offense rows (− fewer, + more)")
        ax.grid(axis="x", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(READINGS),
               frameon=False, title=f"grey band: |z| < {SIGNAL_Z:g}, within chance variation")
    fig.suptitle("Change in reported offense rows, judged against chance: z = 2·(√current − √previous)")
    return fig


# ---- when and where ----------------------------------------------------------------------------
def seasonality(monthly_totals: pd.DataFrame, last_offense_date: Any) -> pd.DataFrame:
    """Offense rows per day for each complete month (per day, so short months compare fairly)."""
    data = month_grid(monthly_totals, last_offense_date)
    months = data["offense_month"]
    return pd.DataFrame({"year": months.dt.year, "month": months.dt.month,
                         "offense_rows_per_day": data["offense_rows"] / months.dt.days_in_month})


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


def hour_weekday_grid(hour_weekday: pd.DataFrame) -> pd.DataFrame:
    """Offense rows as a 7 × 24 table: weekdays (Mon first) by local hour of day."""
    grid = hour_weekday.pivot_table(index="weekday", columns="hour", values="offense_rows", aggfunc="sum")
    grid = grid.reindex(index=range(1, 8), columns=range(24), fill_value=0).fillna(0).astype(int)
    grid.index = list(WEEKDAYS)
    return grid


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


# ---- data quality ------------------------------------------------------------------------------
def quarantine_table(counts: pd.DataFrame) -> pd.DataFrame:
    """Quarantined rows by reason, with what the reason means."""
    return pd.DataFrame({"reason": counts["reason"],
                         "meaning": counts["reason"].map(QUARANTINE_REASONS).fillna(""),
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
    labels = {"received": "rows received from the source", "loaded": "loaded into the warehouse",
              "quarantined": "quarantined (kept aside with a reason)",
              "duplicates": "duplicates removed (same row id twice in a batch)"}
    return pd.DataFrame({"what_happened": list(labels.values()), "rows": [rows.get(k) for k in labels]})


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
