"""CompStat windows and reporting lag, on a small fixture whose counts are known cell by cell."""
from __future__ import annotations

import pandas as pd
import pytest

from memphis_incidents.compstat import compstat, compstat_wide, dispersions, windows
from memphis_incidents.reporting_lag import complete_through, days_to_complete, milestones, reported_within
from memphis_incidents.significance import TOO_FEW

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
