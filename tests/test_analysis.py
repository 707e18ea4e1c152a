"""The analysis functions and notebook helpers, one at a time, on frames of a few rows."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from bs4 import BeautifulSoup
from matplotlib.figure import Figure

from memphis_incidents import figures, findings, labels, maps, metrics, notebook
from memphis_incidents.citation import citation, citation_markdown
from memphis_incidents.config import load_preset
from memphis_incidents.figure_html import figure_html
from memphis_incidents.labels import glossary_table, label
from memphis_incidents.precincts import synthetic_outlines
from memphis_incidents.runlog import write_step_record
from memphis_incidents.state import State
from memphis_incidents.storage import LocalStorage


@pytest.fixture
def summary() -> pd.DataFrame:
    return pd.DataFrame({
        "offense_rows": [110], "incidents": [100],
        "first_offense_date": [pd.Timestamp("2024-01-03").date()],
        "last_offense_date": [pd.Timestamp("2025-03-10").date()],
        "last_source_update_utc": [pd.Timestamp("2025-03-10 11:00", tz="UTC")],  # 06:00 in Memphis (CDT)
        "geo_ok": [100], "geo_missing": [6], "geo_invalid": [1], "geo_zero": [2], "geo_outside_city": [1],
    })


@pytest.fixture
def monthly_totals() -> pd.DataFrame:
    months = [pd.Timestamp("2025-01-01").date(), pd.Timestamp("2025-03-01").date(), pd.Timestamp("2025-02-01").date()]
    return pd.DataFrame({"offense_month": months, "offense_rows": [31, 9, 28], "incidents": [30, 8, 25]})


@pytest.fixture
def category_totals() -> pd.DataFrame:
    return pd.DataFrame({
        "category": ["THEFT", "ASSAULT", "THEFT", "DRUGS", "TRESPASS"],
        "nibrs_crime_against": ["PROPERTY", "PERSONS", None, "SOCIETY", "SOCIETY"],
        "nibrs_group": ["A", "A", "A", "A", "B"],
        "offense_rows": [50, 30, 2, 10, 8],
        "incidents": [48, 29, 2, 10, 8],
    })


@pytest.fixture
def quarantine() -> pd.DataFrame:
    return pd.DataFrame({"reason": ["missing_offense_date", "missing_row_id", "offense_date_in_future"],
                         "rows": [4, 2, 1]})


@pytest.fixture
def daily_category() -> pd.DataFrame:
    return daily([("2025-03-05", "THEFT", 30), ("2024-03-05", "THEFT", 20), ("2025-01-02", "ASSAULT", 5)])


@pytest.fixture
def reporting_lag() -> pd.DataFrame:
    """Offenses of early 2024, all reported within two days."""
    return pd.DataFrame({"offense_month": [pd.Timestamp("2024-01-01").date()] * 3, "lag_days": [0, 1, 2],
                         "offense_rows": [80, 15, 5]})


def daily(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"offense_date": pd.Timestamp(d).date(), "category": c, "nibrs_crime_against": "PROPERTY",
                          "offense_rows": n, "incidents": n} for d, c, n in rows])


# ---- dates ---------------------------------------------------------------------------------------
def test_the_partial_current_month_is_left_out(monthly_totals):
    kept = metrics.complete_months(monthly_totals, "2025-03-10")
    assert list(kept["offense_month"]) == [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")]


def test_month_grid_fills_months_without_reports_with_zero():
    monthly = pd.DataFrame({"offense_month": [pd.Timestamp("2025-01-01").date(), pd.Timestamp("2025-03-01").date()],
                            "category": ["THEFT", "ASSAULT"], "offense_rows": [5, 7], "incidents": [5, 6]})
    grid = metrics.month_grid(monthly, "2025-04-02", by="category")
    assert len(grid) == 3 * 2
    feb = grid[grid["offense_month"] == pd.Timestamp("2025-02-01")]
    assert feb["offense_rows"].tolist() == [0, 0]


def test_last_full_day_is_the_day_before_the_source_update_when_that_is_earlier(summary):
    assert metrics.last_full_day(summary) == pd.Timestamp("2025-03-09")
    later = summary.assign(last_source_update_utc=[pd.Timestamp("2025-03-12 11:00", tz="UTC")])
    assert metrics.last_full_day(later) == pd.Timestamp("2025-03-10")


# ---- headline ------------------------------------------------------------------------------------
def test_headline_counts_what_is_left_out(summary, monthly_totals, quarantine, daily_category, reporting_lag):
    head = metrics.headline(summary, monthly_totals, quarantine, load_preset("demo"), daily_category,
                            reporting_lag, pd.Timestamp("2025-03-12"))
    assert (head["offense_rows"], head["incidents"]) == (110, 100)
    assert head["latest_full_month"] == pd.Timestamp("2025-02-01")
    assert head["partial_month_offense_rows"] == 9
    assert (head["quarantined_rows"], head["bad_date_rows"]) == (7, 5)
    assert head["unlocated_rows"] == 10
    assert head["last_source_update"].hour == 6  # Memphis wall clock, not UTC
    assert head["synthetic"] and "sex crimes" in head["omissions"]
    assert head["complete_through"] == pd.Timestamp("2025-03-09")  # source update 10 Mar; 95 % in after a day
    assert (head["year_to_date"]["current"], head["year_to_date"]["previous"]) == (35, 20)
    assert head["stale"] == ""


def test_stale_data_is_said_in_the_headline(summary, monthly_totals, quarantine, daily_category, reporting_lag):
    head = metrics.headline(summary, monthly_totals, quarantine, load_preset("demo"), daily_category,
                            reporting_lag, pd.Timestamp("2025-04-01"))
    assert "22 days before this report was made: the demo is a fixed snapshot" in head["stale"]
    live = metrics.staleness(summary, pd.Timestamp("2025-04-01"))
    assert "22 days before this report was made: the source may have stopped updating" in live
    assert "Stale data." in notebook.headline_html(head) and "Stale data." not in notebook.headline_html(
        {**head, "stale": ""})


def test_headline_html_carries_exact_values_and_the_synthetic_marker(summary, monthly_totals, quarantine,
                                                                     daily_category, reporting_lag):
    head = metrics.headline(summary, monthly_totals, quarantine, load_preset("demo"), daily_category,
                            reporting_lag, pd.Timestamp("2025-03-12"))
    page = notebook.headline_html(head)
    assert 'data-key="offense_rows" data-value="110"' in page and 'data-key="incidents" data-value="100"' in page
    assert "February 2025" in page and "Synthetic" in page
    real = notebook.headline_html({**head, "synthetic": False, "source": "MPD"})
    assert 'data-key="synthetic"' in page and 'data-key="synthetic"' not in real
    assert 'data-key="year_to_date" data-value="35"' in page
    assert "From 1 January to 9 Mar 2025, the latest day complete enough to compare, 35 offenses were reported: " \
           "75.0% more than in the same days of 2024" in page


def test_exclusions_html_lists_omissions_and_the_load_counts(summary, monthly_totals, quarantine, daily_category,
                                                            reporting_lag):
    head = metrics.headline(summary, monthly_totals, quarantine, load_preset("memphis-arcgis"), daily_category,
                            reporting_lag, pd.Timestamp("2025-03-12"))
    page = notebook.exclusions_html(head, "this run's load (r1)", {"received": 1200, "loaded": 1190,
                                                                  "quarantined": 7, "duplicates": 3})
    assert "sex crimes and juvenile-specific" in page and "March 2025" in page
    assert 'data-key="received" data-value="1200">1,200</span>' in page
    assert "Rows in" not in notebook.exclusions_html(head, "no load recorded", {})


# ---- categories ----------------------------------------------------------------------------------
def test_category_shares_sum_groups_and_name_the_nibrs_group(category_totals):
    shares = metrics.category_shares(category_totals)
    assert shares["category"].tolist() == ["THEFT", "ASSAULT", "DRUGS", "TRESPASS"]
    assert shares.loc[0, "offense_rows"] == 52 and shares.loc[0, "crime_against"] == "Crimes against property"
    assert shares["share"].sum() == pytest.approx(1)


def test_nibrs_rollup_splits_groups_a_and_b(category_totals):
    rollup = metrics.nibrs_rollup(category_totals).set_index("crime_against")
    assert rollup.loc["Crimes against society", ["Group A", "Group B"]].tolist() == [10, 8]
    assert rollup.loc["Not classified", "offense_rows"] == 2
    assert rollup["share"].sum() == pytest.approx(1)
    assert rollup.index[0] == "Crimes against persons"


def test_monthly_by_group_counts_each_row_in_its_own_crime_against_group():
    daily = pd.DataFrame({"offense_date": [pd.Timestamp(d).date() for d in ("2025-01-03", "2025-01-20", "2025-02-01")],
                          "category": ["FAMILY OFFENSES, NONVIOLENT"] * 3,  # the name decides nothing
                          "nibrs_crime_against": ["SOCIETY", "PERSONS", "SOCIETY"], "offense_rows": [2, 3, 4]})
    got = metrics.monthly_by_group(daily)
    assert got.values.tolist() == [[pd.Timestamp("2025-01-01"), "Crimes against persons", 3],
                                   [pd.Timestamp("2025-01-01"), "Crimes against society", 2],
                                   [pd.Timestamp("2025-02-01"), "Crimes against society", 4]]


# ---- change --------------------------------------------------------------------------------------
def test_comparison_periods_are_aligned_and_contiguous():
    periods = metrics.comparison_periods(pd.Timestamp("2024-02-29"))
    ytd, prior = periods["Year to date"]
    assert (ytd.start, ytd.end) == (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-29"))
    assert (prior.start, prior.end) == (pd.Timestamp("2023-01-01"), pd.Timestamp("2023-02-28"))
    now, before = periods["Last 28 days"]
    assert (now.end - now.start).days == 27 == (before.end - before.start).days
    assert now.start - before.end == pd.Timedelta(days=1)
    assert ytd.label == "1 Jan 2024 to 29 Feb 2024"


def test_change_table_counts_inside_the_windows_and_reads_the_z_score():
    data = daily([("2025-03-01", "THEFT", 100), ("2025-02-01", "THEFT", 64), ("2025-03-02", "ARSON", 3),
                  ("2025-02-03", "FRAUD", 20), ("2025-03-03", "FRAUD", 30),
                  ("2025-01-15", "THEFT", 1000)])  # outside both windows
    now = metrics.Period(pd.Timestamp("2025-02-15"), pd.Timestamp("2025-03-14"))
    before = metrics.Period(pd.Timestamp("2025-01-18"), pd.Timestamp("2025-02-14"))
    table = metrics.change_table(data, now, before, ["THEFT", "ARSON", "FRAUD", "ROBBERY"],
                                 pd.Series({"FRAUD": 2.0})).set_index("category")
    assert table.loc[metrics.ALL_CATEGORIES, ["previous", "current"]].tolist() == [84, 133]
    assert table.loc["THEFT", "z"] == pytest.approx(18 / (164 * 0.25) ** 0.5)  # (current − expected) / spread
    assert table.loc["THEFT", "reading"] == "rise beyond chance"
    assert table.loc["FRAUD", "pct_change"] == pytest.approx(0.5)
    assert table.loc["FRAUD", "z"] == pytest.approx(5 / (2 * 50 * 0.25) ** 0.5)  # widened by its dispersion
    assert table.loc["FRAUD", "reading"] == "within chance variation"  # +50%, but 20 against 30
    assert pd.isna(table.loc["ARSON", "pct_change"])
    assert table.loc["ARSON", "reading"] == "too few to judge"  # from 0 to 3 reports
    assert table.loc["ROBBERY", ["previous", "current"]].tolist() == [0, 0]


def test_change_summary_names_the_categories_beyond_chance():
    table = pd.DataFrame({"category": [metrics.ALL_CATEGORIES, "THEFT", "ARSON"], "previous": [70, 64, 6],
                          "current": [103, 100, 3], "pct_change": [33 / 70, 36 / 64, -0.5],
                          "z": [3.5, 4.0, -1.44], "reading": ["rise beyond chance", "rise beyond chance",
                                                              "within chance variation"]})
    period = metrics.Period(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-28"))
    text = findings.change_summary_text("Last 28 days", table, period, period)
    assert "103 offense rows against 70" in text and "+47.1%" in text
    assert "Theft" in text and "Arson" not in text


# ---- when and where ------------------------------------------------------------------------------
def test_seasonality_is_per_day_so_short_months_compare_fairly(monthly_totals):
    season = metrics.seasonality(monthly_totals, "2025-03-10").set_index("month")
    assert season.loc[1, "offense_rows_per_day"] == pytest.approx(1.0)
    assert season.loc[2, "offense_rows_per_day"] == pytest.approx(1.0)


def test_hour_weekday_grid_is_seven_by_twenty_four_monday_first():
    grid = metrics.hour_weekday_grid(pd.DataFrame({"weekday": [1, 7], "hour": [0, 23], "offense_rows": [5, 2]}))
    assert grid.shape == (7, 24) and grid.index[0] == "Mon"
    assert grid.loc["Mon", 0] == 5 and grid.loc["Sun", 23] == 2 and grid.to_numpy().sum() == 7


def test_precinct_comparison_uses_the_last_two_complete_years():
    months = pd.to_datetime(["2023-01-01", "2023-02-01", "2024-01-01", "2024-02-01", "2025-01-01",
                             "2025-02-01"]).date
    frame = pd.DataFrame({"offense_month": months, "precinct": "NORTH", "incidents": 1,
                          "offense_rows": [5000, 1000, 200, 25, 16, 7]})  # Feb 2025 is the partial month
    table = metrics.precinct_comparison(frame, "2025-02-20").set_index("precinct")
    assert table.loc["NORTH", ["previous_12_months", "last_12_months"]].tolist() == [1200, 41]
    assert metrics.has_precincts(frame) and not metrics.has_precincts(frame.assign(precinct="UNKNOWN"))


# ---- figures -------------------------------------------------------------------------------------
@pytest.fixture
def marts(summary, category_totals) -> dict[str, pd.DataFrame]:
    months = pd.date_range("2023-01-01", "2025-03-01", freq="MS")
    monthly_category = pd.DataFrame([{"offense_month": m.date(), "category": c, "offense_rows": 10 + i % 5,
                                      "incidents": 9} for i, m in enumerate(months) for c in ("THEFT", "ASSAULT")])
    return {
        "monthly_category": monthly_category,
        "monthly_totals": monthly_category.groupby("offense_month", as_index=False)[list(metrics.UNIT)].sum(),
        "category_totals": category_totals,
        "daily_category": daily([("2025-03-01", "THEFT", 4), ("2024-03-01", "THEFT", 9)]),
        "hour_weekday": pd.DataFrame({"weekday": [1, 2], "hour": [3, 4], "offense_rows": [5, 6]}),
        "precinct_monthly": monthly_category.rename(columns={"category": "precinct"}),
        "geo_grid": pd.DataFrame({"latitude": [35.1, 35.2, 40.0], "longitude": [-90.0, -89.9, -90.0],
                                  "offense_rows": [3, 4, 99]}),
        "summary": summary,
    }


def every_figure(marts: dict[str, pd.DataFrame], width: float | None = None) -> dict[str, Figure]:
    last = "2025-03-10"
    shares = metrics.category_shares(marts["category_totals"])
    periods = metrics.comparison_periods(pd.Timestamp("2025-03-09"))
    changes = {n: metrics.change_table(marts["daily_category"], *p, ["THEFT"], pd.Series(dtype=float))
               for n, p in periods.items()}
    sized = {} if width is None else {"width": width}
    return {
        "categories": figures.figure_categories(shares, **sized),
        "monthly": figures.figure_monthly_trend(marts["monthly_totals"], last, **sized),
        "groups": figures.figure_rolling_by_group(marts["daily_category"], last, **sized),
        "small multiples": figures.figure_top_category_trends(marts["monthly_category"], last, **sized),
        "change": figures.figure_change(changes, **sized),
        "seasonality": figures.figure_seasonality(metrics.seasonality(marts["monthly_totals"], last), **sized),
        "heatmap": figures.figure_hour_weekday(metrics.hour_weekday_grid(marts["hour_weekday"]), **sized),
        "precincts": figures.figure_precincts(metrics.precinct_comparison(marts["precinct_monthly"], last), last,
                                              **sized),
        "map": maps.figure_hexbin_map(marts["geo_grid"], **sized),
    }


@pytest.mark.parametrize("width", [None, figures.NARROW])
def test_every_figure_has_a_title_and_labelled_axes_naming_a_unit(marts, width):
    units = re.compile(r"offense rows|count|z-score|degrees")
    for name, fig in every_figure(marts, width).items():
        panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        assert fig.get_suptitle() or all(ax.get_title() for ax in panels), name
        labels = " ".join(ax.get_xlabel() + " " + ax.get_ylabel() for ax in fig.axes)
        assert units.search(labels), f"{name}: no counting unit in {labels!r}"
        assert fig.get_figwidth() <= (width or figures.WIDE), f"{name} is wider than its column"


def test_on_a_phone_panels_stack_and_the_heatmap_turns_so_hours_run_down(marts):
    wide, narrow = every_figure(marts), every_figure(marts, figures.NARROW)
    def columns(fig: Figure) -> int:
        return fig.axes[0].get_subplotspec().get_gridspec().ncols
    assert columns(wide["change"]) == 2 and columns(narrow["change"]) == 1
    assert columns(wide["small multiples"]) == 3 and columns(narrow["small multiples"]) == 2
    assert wide["heatmap"].axes[0].get_xlabel().startswith("hour of day")
    assert narrow["heatmap"].axes[0].get_ylabel().startswith("hour of day")
    assert not any(ax.get_legend() for fig in (*wide.values(), *narrow.values()) for ax in fig.axes)  # all below


def test_the_map_only_draws_points_inside_the_city_box(marts):
    hexes = maps.figure_hexbin_map(marts["geo_grid"]).axes[0].collections[0]
    assert hexes.get_array().sum() == 7  # the 99 rows at latitude 40 are outside Memphis


def test_alt_text_describes_the_figure_from_its_titles_and_axes(marts):
    text = figures.figure_alt_text(every_figure(marts)["heatmap"])
    assert text.startswith("Chart. When offenses happened")
    assert "Horizontal axis: hour of day" in text and "Colour: offense rows (all years)" in text


def test_a_figure_is_inline_svg_with_text_as_text_for_a_laptop_and_a_phone(marts):
    outlines = synthetic_outlines()
    page = figure_html(maps.figure_precinct_map, marts["geo_grid"], outlines, pd.Series({"CRUMP": 5.0}))
    wide, narrow = (BeautifulSoup(page, "html.parser").select_one(f".mi-{kind} svg") for kind in ("wide", "narrow"))
    for svg in (wide, narrow):
        assert svg["role"] == "img" and svg["aria-label"].startswith("Chart. Where offenses were reported")
        assert "width" not in svg.attrs and "<?xml" not in page
        assert {name.title() for name in outlines.names} <= {t.get_text() for t in svg.find_all("text")}
        assert svg.find("image") is not None  # the hexagons, as pixels
    assert wide["style"] == "max-width: 1056px" and narrow["style"] == "max-width: 422px"  # 11 and 4.4 inches
    ids = [tag["id"] for tag in BeautifulSoup(page, "html.parser").find_all(id=True)]
    assert len(ids) == len(set(ids)), "two figures on one page must not share an id"
    again = figure_html(maps.figure_precinct_map, marts["geo_grid"], outlines, pd.Series({"CRUMP": 5.0}))
    assert again == page  # no date, no random ids: the same figure gives the same bytes


# ---- notebook helpers ----------------------------------------------------------------------------
def test_a_relative_data_dir_is_relative_to_the_project_not_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "run_pipeline.py").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    params = notebook.run_parameters({"data_dir": "data", "source": "demo", "unrelated": 1})
    assert params.data_dir == str(tmp_path / "data")
    assert notebook.run_parameters({"data_dir": "/srv/data"}).data_dir == "/srv/data"


def test_load_counts_fall_back_to_the_latest_committed_load(tmp_path):
    storage = LocalStorage(tmp_path)
    backends = type("Stores", (), {"storage": storage, "state": State(storage)})()
    assert notebook.load_counts(backends, "") == ("no load recorded", {})
    backends.state.commit_load("b1", None, {"received": 5})
    backends.state.commit_load("b2", None, {"received": 7})
    assert notebook.load_counts(backends, "") == ("the latest load (batch b2)", {"received": 7})
    write_step_record(storage, "r9", "load", {"rows": {"received": 12}})
    assert notebook.load_counts(backends, "r9") == ("this run's load (r9)", {"received": 12})


def test_table_formats_follow_column_meaning():
    frame = pd.DataFrame({"category": ["A"], "offense_rows": [1200], "share": [0.25], "pct_change": [0.1],
                          "z": [2.0], "change": [-3]})
    formats = notebook.table_formats(frame)
    shown = [f(frame.loc[0, c]) if callable(f) else f.format(frame.loc[0, c]) for c, f in formats.items()]
    assert shown == ["1,200", "25.0%", "+10%", "+2.0", "-3"]
    assert "category" not in formats


def test_shares_too_small_to_print_say_so_and_none_is_zero():
    assert [labels.percent(x) for x in (0.0, 0.0001, 0.0004, 0.0006, 0.289, float("nan"))] == [
        "0%", "<0.1%", "<0.1%", "0.1%", "28.9%", "–"]


def test_a_change_too_small_to_test_shows_no_percent_change_or_z_score():
    frame = pd.DataFrame({"category": ["BRIBERY", "FRAUD"], "previous": [2, 100], "current": [0, 60],
                          "pct_change": [-1.0, -0.4], "z": [-1.4, -3.1], "reading": ["too few to judge", "fall"]})
    cells = notebook.styled_table(frame).to_html()
    assert "-100%" not in cells and "-1.4" not in cells
    assert "-40%" in cells and "-3.1" in cells


def test_the_precinct_map_names_every_precinct_and_counts_rows_outside_all_of_them(marts):
    outlines = synthetic_outlines()
    fig = maps.figure_precinct_map(marts["geo_grid"], outlines, pd.Series({"CRUMP": 5.0}))
    labels = {text.get_text() for ax in fig.axes for text in ax.texts}
    assert {name.title() for name in outlines.names} <= labels
    assert "synthetic precinct outlines (not MPD's)" in fig.get_suptitle()
    outside = metrics.outside_precincts(marts["geo_grid"], outlines)
    assert outside == {"offense_rows": 99, "share": pytest.approx(99 / 106)}  # the point at latitude 40
    assert "99 located offense rows (93.4%) fall inside no precinct outline" in findings.outlines_text(outlines, outside)


def test_the_citation_names_publisher_title_url_and_retrieval_time():
    batch = {"synthetic": False, "title": "MPD Public Safety Incidents", "ingested_at": "2026-11-20T12:00:00.000Z",
             "url": "https://services2.arcgis.com/x/FeatureServer/0"}
    cite = citation(batch)
    assert cite == {"publisher": "Memphis Police Department", "title": "MPD Public Safety Incidents",
                    "url": batch["url"], "retrieved_at": batch["ingested_at"]}
    text = citation_markdown(cite, pd.Timestamp("2026-11-20 06:00"))
    assert text.startswith("**How to cite the data:** Memphis Police Department, *MPD Public Safety Incidents*, https://")
    assert "last updated 20 November 2026 06:00" in text
    assert citation({**batch, "synthetic": True})["publisher"] == "synthetic demo data (not real incidents)"
    assert citation({}) == {} and citation_markdown({}, None) == ""


def test_one_label_style_for_categories_and_precincts_everywhere():
    assert [label(t) for t in ("DEST/DAM/VAND OF PROPERTY", "DRIVING UNDER THE INFLUENCE", "MT MORIAH")] == [
        "Dest/Dam/Vand of Property", "Driving Under the Influence", "Mt Moriah"]
    assert label(metrics.ALL_CATEGORIES) == metrics.ALL_CATEGORIES and label(None) is None
    assert {"DEST/DAM/VAND", "OCU", "STIS", "MEM"} <= set(glossary_table()["code"])
