"""CompStat windows, roll-ups and reporting lag, on small fixtures whose counts are known cell by cell."""
from __future__ import annotations

import pandas as pd
import pytest
from bs4 import BeautifulSoup

from memphis_incidents.compstat import compstat, compstat_wide, dispersions, windows
from memphis_incidents.metrics import compstat_tables
from memphis_incidents.notebook import table_html
from memphis_incidents.reporting_lag import complete_through, days_to_complete, milestones, reported_within
from memphis_incidents.significance import RISE, TOO_FEW, WITHIN

LAST_DAY = pd.Timestamp("2026-11-15")


def daily(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["offense_date", "category", "offense_rows"]).assign(
        offense_date=lambda f: pd.to_datetime(f["offense_date"]).dt.date)


def test_windows_end_on_the_last_complete_day_and_compare_like_with_like():
    found = windows(LAST_DAY)
    assert [(w.start, w.end) for w in found["7 days"]] == [
        (pd.Timestamp("2026-11-09"), LAST_DAY), (pd.Timestamp("2026-11-02"), pd.Timestamp("2026-11-08"))]
    assert found["28 days"][1].days == 28 and found["28 days"][1].end == pd.Timestamp("2026-10-18")
    assert [(w.start, w.end) for w in found["year to date"]] == [
        (pd.Timestamp("2026-01-01"), LAST_DAY), (pd.Timestamp("2025-01-01"), pd.Timestamp("2025-11-15"))]


def test_compstat_counts_every_category_in_every_window_cell_by_cell():
    frame = daily([
        ("2026-11-15", "HOMICIDE", 1), ("2026-11-01", "HOMICIDE", 2),      # 7d: 1 vs 0; 28d: 3 vs 0
        ("2026-02-01", "THEFT", 40), ("2025-02-01", "THEFT", 30),           # year to date: 40 vs 30
        ("2024-02-01", "THEFT", 20), ("2023-02-01", "THEFT", 10),           # 3-year average of YTD: 20
        ("2026-11-16", "THEFT", 99),                                        # after the last complete day
        ("2025-11-16", "THEFT", 7),                                         # after the prior-year window
    ])
    table = compstat(frame, "category", LAST_DAY, dispersions(frame, "category", LAST_DAY)).set_index(
        ["category", "window"])
    assert table.loc[("HOMICIDE", "7 days"), ["current", "previous"]].tolist() == [1, 0]
    assert table.loc[("HOMICIDE", "28 days"), ["current", "previous", "change"]].tolist() == [3, 0, 3]
    assert table.loc[("THEFT", "year to date"), ["current", "previous", "change"]].tolist() == [40, 30, 10]
    assert table.loc[("THEFT", "year to date"), "pct_change"] == pytest.approx(1 / 3)
    assert table.loc[("THEFT", "year to date"), "three_year_average"] == 20.0
    assert table.loc[("HOMICIDE", "7 days"), "reading"] == TOO_FEW
    assert pd.isna(table.loc[("HOMICIDE", "7 days"), "pct_change"])  # no "+inf %" from 0
    assert len(table) == 2 * 3
    wide = compstat_wide(table.reset_index(), "category").set_index("category")
    assert wide.loc["THEFT", ["year_to_date", "previous_year_to_date", "three_year_average"]].tolist() == [40, 30, 20.0]
    assert wide.loc["HOMICIDE", ["last_7_days", "last_28_days", "reading_28_days"]].tolist() == [1, 3, TOO_FEW]
    assert wide.index.tolist() == ["THEFT", "HOMICIDE"]  # largest year to date first


def test_reporting_lag_sets_the_last_complete_day():
    lag = pd.DataFrame({"lag_days": [0, 1, 5, 20, 400, -3], "offense_rows": [50, 20, 15, 15, 9, 1]})
    shares = reported_within(lag)
    assert shares.loc[0] == pytest.approx(0.5) and shares.loc[19] == pytest.approx(0.85) and shares.loc[20] == 1
    assert days_to_complete(shares) == 20
    assert complete_through(pd.Timestamp("2026-11-20 06:00"), shares) == pd.Timestamp("2026-10-31")
    assert milestones(shares)["share"].tolist() == pytest.approx([0.7, 0.85, 1.0])


# ---- the report's CompStat tables, from rows that carry their own NIBRS classification -------------
SOURCE_ROWS = [  # offense date, category, NIBRS crime against, NIBRS group, offense rows
    ("2026-11-15", "HOMICIDE", "PERSONS", "A", 1),
    ("2026-11-01", "HOMICIDE", "PERSONS", "A", 2),
    ("2026-02-01", "THEFT", "PROPERTY", "A", 40),
    ("2025-02-01", "THEFT", "PROPERTY", "A", 30),
    ("2024-02-01", "THEFT", "PROPERTY", "A", 20),
    ("2023-02-01", "THEFT", "PROPERTY", "A", 10),
    ("2026-11-16", "THEFT", "PROPERTY", "A", 99),                       # after the last complete day
    ("2026-11-10", "TRESPASS OF REAL PROPERTY", "SOCIETY", "B", 6),
    ("2026-11-05", "TRESPASS OF REAL PROPERTY", "SOCIETY", "B", 4),
    ("2026-10-01", "FAMILY OFFENSES, NONVIOLENT", "SOCIETY", "B", 3),
    ("2026-11-12", "ALL OTHER OFFENSES", None, "B", 2),                 # one category, two classifications
    ("2026-11-12", "ALL OTHER OFFENSES", "PROPERTY", None, 5),
]
WIDE = ["last_7_days", "previous_7_days", "last_28_days", "previous_28_days", "change_28_days", "reading_28_days",
        "year_to_date", "previous_year_to_date", "three_year_average", "change_year_to_date", "reading_year_to_date"]
NA = float("nan")


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    frame = pd.DataFrame(SOURCE_ROWS, columns=["offense_date", "category", "nibrs_crime_against", "nibrs_group",
                                               "offense_rows"])
    frame["offense_date"] = pd.to_datetime(frame["offense_date"]).dt.date
    return compstat_tables(frame, LAST_DAY)


def expected(rows: dict[str, list]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index", columns=WIDE)


def test_compstat_rolls_up_by_each_row_s_own_nibrs_group_a_and_b_cell_by_cell(tables):
    groups = tables["nibrs_group"].set_index("nibrs_group")
    assert groups.index.tolist() == ["Group A", "Group B", "Not classified"]  # largest year to date first
    pd.testing.assert_frame_equal(groups[WIDE], expected({
        "Group A": [1, 0, 3, 0, NA, TOO_FEW, 43, 30, 20.0, 13 / 30, WITHIN],
        "Group B": [8, 4, 12, 3, 3.0, RISE, 15, 0, 0.0, NA, RISE],  # 28 days: p = 2 × 576 / 2¹⁵ = 0.035
        "Not classified": [5, 0, 5, 0, NA, TOO_FEW, 5, 0, 0.0, NA, TOO_FEW],
    }), check_names=False, check_dtype=False)


def test_compstat_rolls_up_by_crimes_against_from_the_row_not_the_category_cell_by_cell(tables):
    against = tables["crime_against"].set_index("crime_against")
    pd.testing.assert_frame_equal(against[WIDE], expected({
        "Crimes against property": [5, 0, 5, 0, NA, TOO_FEW, 45, 30, 20.0, 15 / 30, WITHIN],
        "Crimes against society": [6, 4, 10, 3, 7 / 3, WITHIN, 13, 0, 0.0, NA, RISE],  # 28 days: p = 0.092
        "Crimes against persons": [1, 0, 3, 0, NA, TOO_FEW, 3, 0, 0.0, NA, TOO_FEW],
        "Not classified": [2, 0, 2, 0, NA, TOO_FEW, 2, 0, 0.0, NA, TOO_FEW],
    }), check_names=False, check_dtype=False)
    categories = tables["category"].set_index("category")
    assert categories.loc["ALL OTHER OFFENSES", ["last_7_days", "year_to_date"]].tolist() == [7, 7]
    assert categories.loc["FAMILY OFFENSES, NONVIOLENT", ["previous_28_days", "year_to_date"]].tolist() == [3, 3]


def test_the_report_shows_the_group_a_b_table_as_read(tables):
    page = BeautifulSoup(table_html(tables["nibrs_group"], "CompStat by NIBRS Group A / B"), "html.parser")
    head, *rows = ([cell.get_text() for cell in row.find_all(["th", "td"])] for row in page.find_all("tr"))
    shown = pd.DataFrame(rows, columns=head).set_index("NIBRS group")
    assert page.figcaption.get_text() == "CompStat by NIBRS Group A / B"
    assert page.select_one(".mi-scroll")["aria-labelledby"] == page.figcaption["id"]
    assert shown.loc["Group A", ["year to date", "previous year to date", "3-year average, year to date",
                                 "% change, year to date", "reading year to date"]].tolist() == [
        "43", "30", "20.0", "+43%", WITHIN]
    assert shown.loc["Group B", ["last 28 days", "previous 28 days", "% change, 28 days"]].tolist() == [
        "12", "3", "+300%"]
    assert shown.loc["Group B", "% change, year to date"] == "–"  # from 0: no "+inf %"
