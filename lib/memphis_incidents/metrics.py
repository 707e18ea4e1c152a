"""The report's numbers: tables and values computed from the marts, in pandas (no plotting, no prose).

Every function takes mart frames (or plain values) and returns a frame, a dict or a value; the
analysis notebook calls each beside the section that shows it. Counts come in two named units
(marts.UNIT): offense rows (one per offense) and distinct incidents.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .backends import Backends
from .config import Preset
from .compstat import compstat, compstat_wide, dispersions
from .localtime import wall_clock
from .marts import MARTS, UNIT
from .precincts import Outlines, precinct_of
from .quality import REASONS
from .periods import Period, comparison_periods
from .reporting_lag import last_full_day, local_today, reporting_completeness, staleness
from .schema import GEO_STATUS
from .significance import dispersion, judged

CRIME_AGAINST = {"PERSONS": "Crimes against persons", "PROPERTY": "Crimes against property",
                 "SOCIETY": "Crimes against society"}
NOT_CLASSIFIED = "Not classified"
GROUPS = (*CRIME_AGAINST.values(), NOT_CLASSIFIED)  # NIBRS crime-against groups, in reading order
NIBRS_GROUPS = {"A": "Group A", "B": "Group B"}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ALL_CATEGORIES = "All categories"
LOAD_LABELS = {"received": "rows received from the source", "loaded": "loaded into the warehouse",
               "quarantined": "quarantined (kept aside with a reason)",
               "duplicates": "duplicates removed (same row id twice in a batch)"}


def read_marts(backends: Backends, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """The marts the report reads, from the warehouse of any profile."""
    return {name: backends.warehouse.read_mart(name) for name in names or MARTS}


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
    counts = data.set_index(keys)[[unit for unit in UNIT if unit in data.columns]]
    return counts.reindex(index, fill_value=0).reset_index()


def year_to_date(daily_category: pd.DataFrame, complete: pd.Timestamp) -> dict[str, Any]:
    """Offense rows from 1 January to the last complete day, against the same days a year earlier,
    with the change test's reading (dispersion from the total's weekly history)."""
    current, previous = comparison_periods(complete)["Year to date"]
    phi = dispersions(daily_category.assign(category=ALL_CATEGORIES), "category", complete)  # the total's only
    row = change_table(daily_category, current, previous, [], phi).iloc[0]
    return {"current": int(row["current"]), "previous": int(row["previous"]), "pct_change": row["pct_change"],
            "reading": row["reading"], "z": float(row["z"]), "period": current, "previous_period": previous}


def headline(summary: pd.DataFrame, monthly_totals: pd.DataFrame, quarantine: pd.DataFrame, preset: Preset,
             daily_category: pd.DataFrame, reporting_lag: pd.DataFrame,
             today: pd.Timestamp | None = None) -> dict[str, Any]:
    """The report's first lines: the year so far against the last, counts, span, freshness and what
    is excluded, as plain values."""
    top = summary.iloc[0]
    completeness = reporting_completeness(reporting_lag, summary)
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
        "complete_through": completeness["complete_through"],
        "completeness": completeness,
        "year_to_date": year_to_date(daily_category, completeness["complete_through"]),
        "stale": staleness(summary, today if today is not None else local_today(), preset.is_synthetic),
        "latest_full_month": latest_full_month(last),
        "partial_month": month_floor(last),
        "partial_month_offense_rows": int(partial.sum()),
        "last_source_update": None if pd.isna(updated) else wall_clock(updated),
        "quarantined_rows": int(quarantine["rows"].sum()),
        "bad_date_rows": int(quarantine.loc[dates, "rows"].sum()),
        "unlocated_rows": int(top["offense_rows"]) - int(top["geo_ok"]),
        "source": preset.title,
        "synthetic": preset.is_synthetic,
        "omissions": preset.omissions,
    }


def crime_against_label(codes: pd.Series) -> pd.Series:
    """NIBRS crime-against codes (PERSONS, PROPERTY, SOCIETY) as reader labels."""
    return codes.map(CRIME_AGAINST).fillna(NOT_CLASSIFIED)


def nibrs_group_label(codes: pd.Series) -> pd.Series:
    """NIBRS Group A / B codes as reader labels (Group A, Group B, else Not classified)."""
    return codes.map(NIBRS_GROUPS).fillna(NOT_CLASSIFIED)


ROLLUPS = {"crime_against": ("nibrs_crime_against", crime_against_label),  # roll-up: source column, labels
           "nibrs_group": ("nibrs_group", nibrs_group_label)}


def category_groups(category_totals: pd.DataFrame) -> pd.Series:
    """Each category's NIBRS crime-against label (the one holding most of its offense rows)."""
    data = category_totals.assign(crime_against=crime_against_label(category_totals["nibrs_crime_against"]))
    main = data.sort_values("offense_rows", ascending=False).drop_duplicates("category")
    return main.set_index("category")["crime_against"]


def monthly_by_group(daily_category: pd.DataFrame) -> pd.DataFrame:
    """Offense rows per month and NIBRS crime-against group, each row in its own group (a category
    the source files under two groups counts in both)."""
    days = pd.to_datetime(daily_category["offense_date"])
    data = daily_category.assign(offense_month=days.dt.to_period("M").dt.to_timestamp(),
                                 group=crime_against_label(daily_category["nibrs_crime_against"]))
    return data.groupby(["offense_month", "group"], as_index=False)["offense_rows"].sum()


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
        nibrs_group=nibrs_group_label(category_totals["nibrs_group"]))
    table = data.pivot_table(index="crime_against", columns="nibrs_group", values="offense_rows",
                             aggfunc="sum", fill_value=0)
    table.columns.name = None
    table["offense_rows"] = table.sum(axis=1)
    table["share"] = table["offense_rows"] / table["offense_rows"].sum()
    order = [g for g in GROUPS if g in table.index]
    return table.loc[order].reset_index()


def rolling_totals(monthly_totals: pd.DataFrame, last_offense_date: Any, window: int = 12) -> pd.DataFrame:
    """Complete months with the sum of the `window` months ending at each (empty until a full window)."""
    data = month_grid(monthly_totals, last_offense_date)
    rolled = data[list(UNIT)].rolling(window).sum()
    return data.assign(**{f"{unit}_{window}m": rolled[unit] for unit in UNIT})


def period_counts(daily_category: pd.DataFrame, period: Period, key: str = "category") -> pd.Series:
    """Offense rows per `key` with offense dates inside the period."""
    days = pd.to_datetime(daily_category["offense_date"])
    inside = daily_category[days.between(period.start, period.end)]
    return inside.groupby(key)["offense_rows"].sum()


def change_table(daily_category: pd.DataFrame, current: Period, previous: Period, categories: list[str],
                 phi: pd.Series) -> pd.DataFrame:
    """Offense rows now and before, for all categories together and for each of `categories`, with
    percent change, a z-score and a reading from the change test (significance.py), judged across
    the whole table; `phi` holds each row's dispersion factor."""
    counts = pd.DataFrame({"previous": period_counts(daily_category, previous),
                           "current": period_counts(daily_category, current)})
    counts = counts.reindex(counts.index.union(categories)).fillna(0).astype(int)
    table = pd.concat([counts.sum().to_frame(ALL_CATEGORIES).T, counts.loc[categories]])
    table["change"] = table["current"] - table["previous"]
    table["pct_change"] = table["change"] / table["previous"].where(table["previous"] > 0)
    table["share"] = current.days / (current.days + previous.days)
    table["phi"] = phi.reindex(table.index).fillna(1.0)
    judged_table = judged(table)
    return judged_table.drop(columns=["share", "phi", "p"]).rename_axis("category").reset_index()


def category_dispersions(daily_category: pd.DataFrame, last_day: pd.Timestamp) -> pd.Series:
    """Each category's dispersion factor (and the total's, as ALL_CATEGORIES), from its weekly history."""
    total = daily_category.assign(category=ALL_CATEGORIES)
    return pd.concat([dispersions(daily_category, "category", last_day), dispersions(total, "category", last_day)])


def change_tables(daily_category: pd.DataFrame, shares: pd.DataFrame,
                  periods: dict[str, tuple[Period, Period]]) -> dict[str, pd.DataFrame]:
    """A change table per comparison, for all categories together and each category, small ones too."""
    categories = shares["category"].tolist()
    last_day = max(now.end for now, _ in periods.values())
    phi = category_dispersions(daily_category, last_day)
    return {name: change_table(daily_category, now, before, categories, phi) for name, (now, before) in periods.items()}


def compstat_tables(daily_category: pd.DataFrame, last_day: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The CompStat table by category (every one), and rolled up by each row's own NIBRS crime-against
    group and Group A / B (ROLLUPS), keyed "category", "crime_against" and "nibrs_group"."""
    frames = {"category": daily_category, **{key: daily_category.assign(**{key: labels(daily_category[column])})
                                             for key, (column, labels) in ROLLUPS.items()}}
    return {key: compstat_wide(compstat(daily, key, last_day, dispersions(daily, key, last_day)), key)
            for key, daily in frames.items()}


def twelve_months(monthly_totals: pd.DataFrame, last_offense_date: Any) -> dict[str, Any] | None:
    """The last 12 complete months against the 12 before, judged by the change test (None without 24
    months); the dispersion comes from the monthly totals' own history."""
    data = rolling_totals(monthly_totals, last_offense_date)
    if len(data) < 24:
        return None
    now, before = (int(data["offense_rows_12m"].iloc[i]) for i in (-1, -13))
    row = pd.DataFrame({"current": [now], "previous": [before], "share": [0.5],
                        "phi": [dispersion(data["offense_rows"].to_numpy())]})
    verdict = judged(row).iloc[0]
    return {"end": data["offense_month"].iloc[-1], "current": now, "previous": before,
            "pct_change": (now - before) / max(before, 1), "z": float(verdict["z"]), "reading": verdict["reading"]}


def seasonality(monthly_totals: pd.DataFrame, last_offense_date: Any) -> pd.DataFrame:
    """Offense rows per day for each complete month (per day, so short months compare fairly)."""
    data = month_grid(monthly_totals, last_offense_date)
    months = data["offense_month"]
    return pd.DataFrame({"year": months.dt.year, "month": months.dt.month,
                         "offense_rows_per_day": data["offense_rows"] / months.dt.days_in_month})


def hour_weekday_grid(hour_weekday: pd.DataFrame) -> pd.DataFrame:
    """Offense rows as a 7 × 24 table: weekdays (Mon first) by local hour of day."""
    grid = hour_weekday.pivot_table(index="weekday", columns="hour", values="offense_rows", aggfunc="sum")
    grid = grid.reindex(index=range(1, 8), columns=range(24), fill_value=0).fillna(0).astype(int)
    grid.index = list(WEEKDAYS)
    return grid


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
    monthly = data.pivot_table(index="precinct", columns="offense_month", values="offense_rows", aggfunc="sum",
                               fill_value=0)
    test = pd.DataFrame({"current": table["last_12_months"], "previous": table["previous_12_months"], "share": 0.5,
                         "phi": [dispersion(monthly.loc[p].to_numpy()) if p in monthly.index else 1.0
                                 for p in table.index]})
    table[["z", "reading"]] = judged(test)[["z", "reading"]]
    return table.sort_values("last_12_months", ascending=False).rename_axis("precinct").reset_index()


def last_year_by_precinct(precinct_monthly: pd.DataFrame, last_offense_date: Any) -> pd.Series:
    """Offense rows per precinct (upper-cased name) in the last 12 complete months."""
    data = complete_months(precinct_monthly, last_offense_date)
    recent = data[data["offense_month"] > latest_full_month(last_offense_date) - pd.DateOffset(months=12)]
    return recent.groupby(recent["precinct"].str.upper())["offense_rows"].sum()


def outside_precincts(geo_grid: pd.DataFrame, outlines: Outlines) -> dict[str, Any]:
    """Located offense rows that fall inside no precinct outline: how many, and their share."""
    where = precinct_of(geo_grid["longitude"].to_numpy(), geo_grid["latitude"].to_numpy(), outlines)
    outside = int(geo_grid.loc[where == "", "offense_rows"].sum())
    total = int(geo_grid["offense_rows"].sum())
    return {"offense_rows": outside, "share": outside / total if total else 0.0}


def quarantine_table(counts: pd.DataFrame) -> pd.DataFrame:
    """Quarantined rows by reason, with what the reason means."""
    return pd.DataFrame({"reason": counts["reason"],
                         "meaning": counts["reason"].map(REASONS).fillna(""),
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
    return pd.DataFrame({"what_happened": list(LOAD_LABELS.values()), "rows": [rows.get(k) for k in LOAD_LABELS]})
