"""The synthetic demo source: shape, determinism, daily updates, realistic structure and dirt."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from memphis_incidents import localtime
from memphis_incidents.config import load_preset
from memphis_incidents.sources import demo, demo_rows, demo_world
from memphis_incidents.sources.base import iso_utc, parse_watermark
from memphis_incidents.sources.demo import DemoSource, demo_snapshot

ROWS = 20_000
MEMPHIS = ZoneInfo("America/Chicago")
EXPECTED_SCHEMA = [
    ("ObjectId", pa.int64()), ("Crime_ID", pa.string()), ("Offense_Datetime", pa.int64()),
    ("Reported_Datetime", pa.int64()), ("Agency_Crime_Type", pa.string()), ("UCR_Incident_Code", pa.string()),
    ("UCR_Category", pa.string()), ("UCR_Description", pa.string()), ("NIBRS_Offense_Group", pa.string()),
    ("NIBRS_Group", pa.string()), ("Street_Address", pa.string()), ("City", pa.string()),
    ("ZIP_Code", pa.string()), ("Precinct", pa.string()), ("Latitude", pa.float64()),
    ("Longitude", pa.float64()), ("EditDate", pa.int64()),
]
SEX_OR_JUVENILE = re.compile(
    r"RAPE|SODOMY|FONDLING|SEX|INCEST|STATUTORY|PROSTITUT|PORNOGRAPH|OBSCN|PEEPING|CURFEW|RUNAWAY|TRAFFICKING"
)
SEX_OR_JUVENILE_CODES = {"11A", "11B", "11C", "11D", "36A", "36B", "370", "40A", "40B", "40C", "64A", "64B",
                         "90B", "90H", "90I"}


@pytest.fixture(scope="module")
def day0() -> pd.DataFrame:
    return demo_snapshot(ROWS, 42).to_pandas()


@pytest.fixture(scope="module")
def days() -> list[pa.Table]:
    return [demo_snapshot(50_000, 7, day) for day in range(3)]


def source(rows: int = 2_000, seed: int = 1, day: int = 0) -> DemoSource:
    return DemoSource(load_preset("demo"), rows=rows, seed=seed, day=day)


def share(mask: pd.Series) -> float:
    return float(mask.fillna(False).mean())


def clean_categories(frame: pd.DataFrame) -> pd.Series:
    return frame["UCR_Category"].str.strip().str.upper()


def edited_rows(before: pa.Table, after: pa.Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of `before` that `after` changed (same positions), as they were and as they are."""
    old, new = before.to_pandas(), after.slice(0, before.num_rows).to_pandas()
    changed = ~((new == old) | (new.isna() & old.isna())).all(axis=1)
    return old[changed], new[changed]


# --- shape and determinism ----------------------------------------------------------------------

def test_same_rows_seed_and_day_give_an_identical_table():
    assert demo_snapshot(3_000, 5, 2).equals(demo_snapshot(3_000, 5, 2))
    assert not demo_snapshot(3_000, 5, 2).equals(demo_snapshot(3_000, 6, 2))


@pytest.mark.parametrize("rows", [1, 50, 2_000, 12_345])
def test_day_zero_has_exactly_the_rows_asked_for(rows):
    assert demo_snapshot(rows, 3).num_rows == rows


@pytest.mark.parametrize("day", [0, 2])
def test_zero_rows_is_an_empty_table_with_the_schema(day):
    table = demo_snapshot(0, 3, day)
    assert table.num_rows == 0
    assert [(f.name, f.type) for f in table.schema] == EXPECTED_SCHEMA


def test_schema_is_the_raw_arcgis_shape_the_preset_maps():
    table = demo_snapshot(500, 3, 1)
    assert [(f.name, f.type) for f in table.schema] == EXPECTED_SCHEMA
    assert set(load_preset("demo").fields.values()) == set(table.column_names)


def test_object_ids_run_from_one_in_order_duplicates_sharing_theirs(day0):
    ids = day0["ObjectId"]
    assert ids.is_monotonic_increasing
    assert sorted(ids.unique()) == list(range(1, ids.nunique() + 1))


# --- daily updates ------------------------------------------------------------------------------

def test_each_day_keeps_every_earlier_row_position_and_appends_new_ids(days):
    for before, after in zip(days, days[1:]):
        assert after.num_rows > before.num_rows
        assert after["ObjectId"].slice(0, before.num_rows).equals(before["ObjectId"])
        added = after["ObjectId"].slice(before.num_rows).to_numpy()
        assert added.min() == before["ObjectId"].to_numpy().max() + 1


def test_tiny_snapshots_update_daily_too():
    before, after = demo_snapshot(50, 3, 2), demo_snapshot(50, 3, 3)
    assert after.num_rows > before.num_rows > 50
    assert set(before["ObjectId"].to_pylist()) < set(after["ObjectId"].to_pylist())


def test_day_one_edits_some_existing_rows_at_its_publication_time(days):
    was, now = edited_rows(days[0], days[1])
    new_rows = days[1].num_rows - days[0].num_rows
    assert 1 <= len(now) <= max(3, new_rows // 4)
    assert (now["EditDate"] == demo_world.publication_ms(1)).all()
    assert (now["EditDate"] > days[0]["EditDate"].to_numpy().max()).all()
    fixed = ["UCR_Description", "Street_Address"]
    assert (now[fixed] != was[fixed]).any().any()


def test_new_rows_are_recent_reports_published_that_morning(days):
    new = days[1].slice(days[0].num_rows).to_pandas()
    assert (new["Reported_Datetime"] >= demo_world.publication_ms(0)).all()
    assert (new["EditDate"] <= demo_world.publication_ms(1)).all()
    lag_days = (new["Reported_Datetime"] - new["Offense_Datetime"]) / 86_400_000
    assert share(lag_days <= 3) > 0.8
    assert not new["Crime_ID"].dropna().isin(days[0]["Crime_ID"].to_pylist()).any()


def test_pull_since_the_day_zero_watermark_returns_the_new_and_edited_rows(days):
    src = DemoSource(load_preset("demo"), 50_000, 7, 1)
    watermark = src.watermark_of(days[0])
    pulled = pa.concat_tables(src.pull(watermark).tables).to_pandas()
    edited = set(edited_rows(days[0], days[1])[1]["ObjectId"])
    new = set(days[1]["ObjectId"].slice(days[0].num_rows).to_pylist())
    boundary = pulled[~pulled["ObjectId"].isin(edited | new)]
    assert set(pulled["ObjectId"]) - set(boundary["ObjectId"]) == edited | new
    assert boundary["Crime_ID"].nunique() <= 1  # only the rows of the incident edited last (>= overlap)
    assert (boundary["EditDate"] == demo_world.epoch_ms(parse_watermark(watermark))).all()


# --- the Source protocol ------------------------------------------------------------------------

def test_pull_pages_every_row_in_object_id_order_with_duplicates(monkeypatch):
    monkeypatch.setattr(demo, "PAGE_ROWS", 700)
    pages = list(source(rows=2_000).pull(None).tables)
    assert [p.num_rows for p in pages] == [700, 700, 600]
    table = pa.concat_tables(pages)
    assert table.equals(demo_snapshot(2_000, 1))
    assert pd.Series(table["ObjectId"].to_numpy()).is_monotonic_increasing
    assert table.num_rows - len(set(table["ObjectId"].to_pylist())) == 6  # 0.3 % exact duplicates


def test_count_is_what_pull_yields():
    src = source(rows=5_000, day=3)
    since = iso_utc(demo_world.publication_time(0))
    assert src.count(since) == sum(p.num_rows for p in src.pull(since).tables)
    assert src.count(None) == sum(p.num_rows for p in src.pull(None).tables) == demo_snapshot(5_000, 1, 3).num_rows
    assert 0 < src.count(since) < src.count(None)


def test_watermark_is_the_latest_edit_as_iso_utc():
    src, snapshot = source(day=1), demo_snapshot(2_000, 1, 1)
    assert src.watermark_of(snapshot) == iso_utc(demo_world.publication_time(1))
    assert src.watermark_of(snapshot.slice(0, 0)) is None


def test_describe_names_the_parameters():
    assert source(rows=250_000, seed=42, day=1).describe("2026-11-20T12:00:00.000Z") == (
        "synthetic demo: rows=250000 seed=42 day=1 since=2026-11-20T12:00:00.000Z"
    )


def test_the_layer_is_made_once_per_pull_and_never_to_count_it_whole(monkeypatch):
    calls = []
    made = demo.snapshot_blocks
    monkeypatch.setattr(demo, "snapshot_blocks", lambda *args: calls.append(args) or made(*args))
    src = source()
    assert src.count(None) == 2_000 and calls == []
    list(src.pull("2026-01-01T00:00:00.000Z").tables)
    list(src.pull(None).tables)
    assert [call[:3] for call in calls] == [(2_000, 1, 0)] * 2


def test_a_nightly_pull_makes_only_the_blocks_its_rows_are_in(monkeypatch):
    monkeypatch.setattr(demo, "BLOCK_ROWS", 500)
    made = []
    block = demo.DayZero.block
    monkeypatch.setattr(demo.DayZero, "block", lambda self, k: made.append(k) or block(self, k))
    src = DemoSource(load_preset("demo"), 10_000, 5, 2)
    since = src.watermark_of(demo_snapshot(10_000, 5, 1))
    pulled = pa.concat_tables(src.pull(since).tables)
    layer = demo_snapshot(10_000, 5, 2)
    assert pulled.equals(layer.filter(pc.greater_equal(layer["EditDate"], demo_world.epoch_ms(parse_watermark(since)))))
    zero = demo.DayZero.draw(10_000, 5)
    at_night = made[zero.blocks:-zero.blocks]  # the layer of day 1 was made whole before, of day 2 after
    assert 0 < len(at_night) < zero.blocks / 4 and at_night[-1] == zero.blocks - 1


# --- realistic structure ------------------------------------------------------------------------

def test_rows_per_incident_average_about_one_point_one(day0):
    distinct = day0.drop_duplicates()
    ratio = len(distinct) / distinct["Crime_ID"].nunique()
    assert 1.05 <= ratio <= 1.2


def test_rows_of_an_incident_share_its_time_place_and_coordinates(day0):
    shared = ["Offense_Datetime", "Reported_Datetime", "Street_Address", "Precinct", "Latitude", "Longitude"]
    per_incident = day0.dropna(subset=["Crime_ID"]).groupby("Crime_ID")[shared].nunique(dropna=False)
    assert (per_incident <= 1).all().all()
    assert (day0.groupby("Crime_ID").size() > 1).any()


def test_crime_ids_are_the_report_month_a_sequence_and_me(day0):
    ids = day0.dropna(subset=["Crime_ID"])
    assert ids["Crime_ID"].str.fullmatch(r"\d{10}ME").all()
    reported = pd.to_datetime(ids["Reported_Datetime"], unit="ms", utc=True).dt.tz_convert(MEMPHIS)
    assert (ids["Crime_ID"].str[:4] == reported.dt.strftime("%y%m")).all()


def test_located_coordinates_lie_in_memphis_around_their_station(day0):
    lat_min, lat_max, lon_min, lon_max = demo_rows.MEMPHIS_BOX
    placed = day0.dropna(subset=["Latitude"])
    placed = placed[(placed["Latitude"] != 0) & (placed["Longitude"] != 0)]
    inside = placed["Latitude"].between(lat_min, lat_max) & placed["Longitude"].between(lon_min, lon_max)
    assert 0.98 < share(inside) < 1
    centres = {name: area["centre"] for name, area in demo_world.vocabulary()["precincts"].items()}
    means = placed[inside].groupby("Precinct")[["Latitude", "Longitude"]].mean()
    for name, centre in centres.items():
        distance = {other: np.hypot(*(means.loc[name].to_numpy() - c)) for other, c in centres.items()}
        assert min(distance, key=distance.get) == name


def test_categories_are_dominated_by_theft_assault_and_vandalism(day0):
    shares = clean_categories(day0).value_counts(normalize=True)
    assert list(shares.index[:3]) == ["LARCENY/THEFT", "ASSAULT", "DEST/DAM/VAND OF PROPERTY"]
    next_five = {"MOTOR VEHICLE THEFT", "AGGRAVATED ASSAULT", "BURG/BREAK & ENTER", "FRAUD", "DRUG/NARCOTIC"}
    assert set(shares.index[3:8]) == next_five
    assert 0 < shares.get("HOMICIDE", 0) < 0.005


def test_offense_classification_is_consistent(day0):
    fields = ["UCR_Incident_Code", "UCR_Description", "NIBRS_Offense_Group", "NIBRS_Group"]
    classified = day0.assign(category=clean_categories(day0))
    per_description = classified.groupby("UCR_Description")[["category", *fields]].nunique()
    assert (per_description == 1).all().all()
    assert set(day0["NIBRS_Group"]) == {"A", "B"}


def nibrs_crime_against(code: str) -> str:
    """What NIBRS files an offense code under (FBI NIBRS User Manual), for the codes the demo draws."""
    if code[:2] in ("09", "10", "13"):
        return "CRIMES AGAINST PERSONS"
    if code[:2] in ("35", "39", "52", "72") or code in ("90C", "90D", "90E", "90F", "90G", "90J"):
        return "CRIMES AGAINST SOCIETY"
    return "PERSON, PROPERTY, OR SOCIETY" if code == "90Z" else "CRIMES AGAINST PROPERTY"


def test_crime_against_values_are_nibrs_s_for_each_offense_code():
    types = demo_world.offense_types().to_pandas()
    expected = types["UCR_Incident_Code"].map(nibrs_crime_against)
    assert (types["NIBRS_Offense_Group"] == expected).all(), types[types["NIBRS_Offense_Group"] != expected]
    family = types.loc[types["UCR_Category"] == "FAMILY OFFENSES, NONVIOLENT", "NIBRS_Offense_Group"]
    assert set(family) == {"CRIMES AGAINST SOCIETY"}  # NIBRS 90F; not persons


def test_no_sex_crimes_or_juvenile_specific_types_anywhere(day0):
    types = demo_world.offense_types().to_pandas()
    for column in ["Agency_Crime_Type", "UCR_Category", "UCR_Description"]:
        assert not types[column].str.contains(SEX_OR_JUVENILE).any(), column
        assert not day0[column].str.upper().str.contains(SEX_OR_JUVENILE).any(), column
    assert not set(types["UCR_Incident_Code"]) & SEX_OR_JUVENILE_CODES
    assert not set(day0["UCR_Incident_Code"]) & SEX_OR_JUVENILE_CODES


def test_offense_times_follow_a_memphis_day_and_season(day0):
    offense = pd.to_datetime(day0["Offense_Datetime"], unit="ms", utc=True)
    local = offense[offense.dt.year.between(2020, 2026)].dt.tz_convert(MEMPHIS)
    hours = local.dt.hour.value_counts()
    assert hours[5] < 0.5 * hours[18]
    full_years = local[local.dt.year < 2026]
    summer = full_years.dt.month.isin([6, 7, 8]).sum()
    winter = full_years.dt.month.isin([12, 1, 2]).sum()
    assert summer > 1.08 * winter
    assert local.min() >= pd.Timestamp("2020-01-01", tz=MEMPHIS)
    assert local.max() < pd.Timestamp(demo_world.DEMO_ANCHOR, tz=MEMPHIS)


def test_reports_follow_offenses_and_edits_stop_at_publication(day0):
    sane = day0[pd.to_datetime(day0["Offense_Datetime"], unit="ms").dt.year.between(2020, 2026)]
    lag = sane["Reported_Datetime"] - sane["Offense_Datetime"]
    assert (lag >= 0).all() and (lag <= 366 * 86_400_000).all()
    assert 0.5 < share(lag < 6 * 3_600_000) < 0.95
    assert (day0["EditDate"] >= day0["Reported_Datetime"]).all()
    assert day0["EditDate"].max() <= demo_world.publication_ms(0)


def test_publication_is_six_in_the_morning_in_memphis():
    assert demo_world.publication_time(0) == datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    assert demo_world.publication_time(-200).astimezone(MEMPHIS).hour == 6  # a summer (daylight time) day


def daylight_transitions_utc_ms(first_year: int, last_year: int) -> np.ndarray:
    """UTC epoch ms of every change of Memphis's UTC offset, found hour by hour with zoneinfo."""
    hours = np.arange(datetime(first_year, 1, 1, tzinfo=timezone.utc).timestamp(),
                      datetime(last_year + 1, 1, 1, tzinfo=timezone.utc).timestamp(), 3600)
    offsets = np.array([datetime.fromtimestamp(h, MEMPHIS).utcoffset().total_seconds() for h in hours])
    return (hours[1:][np.diff(offsets) != 0] * 1000).astype(np.int64)


def test_memphis_wall_clock_conversion_matches_zoneinfo():
    rng = np.random.default_rng(0)
    random_minutes = rng.integers(1_577_836_800_000, 1_830_297_600_000, 3_000) // 60_000 * 60_000
    bounds = daylight_transitions_utc_ms(2020, 2027)
    assert bounds.size == 16
    near_bounds = (bounds[:, None] + np.array([-61, -60, -1, 0, 1, 59, 60, 61]) * 60_000).ravel()
    utc = np.sort(np.concatenate([random_minutes, near_bounds]))
    local = [datetime.fromtimestamp(ms / 1000, MEMPHIS) for ms in utc.tolist()]
    expected = [int(t.replace(tzinfo=timezone.utc).timestamp() * 1000) for t in local]
    assert localtime.wall_clock_ms(utc).tolist() == expected
    ambiguous = np.array([t.replace(fold=0).utcoffset() != t.replace(fold=1).utcoffset() for t in local])
    assert ambiguous.any()
    assert (localtime.utc_ms(localtime.wall_clock_ms(utc))[~ambiguous] == utc[~ambiguous]).all()


def test_wall_clock_times_in_the_spring_forward_gap_move_forward_to_daylight_time():
    gap = np.array([np.datetime64("2026-03-08T02:30", "ms").astype(np.int64)])
    assert localtime.utc_ms(gap)[0] == np.datetime64("2026-03-08T08:00", "ms").astype(np.int64)


# --- dirt ---------------------------------------------------------------------------------------

def test_exact_duplicate_rows_share_every_field(day0):
    assert day0.duplicated().sum() == 60  # 0.3 % of 20,000
    assert day0.duplicated().sum() == day0["ObjectId"].duplicated().sum()


def test_coordinates_are_sometimes_zero_outside_the_city_or_missing(day0):
    lat_min, lat_max, lon_min, lon_max = demo_rows.MEMPHIS_BOX
    lat, lon = day0["Latitude"], day0["Longitude"]
    zero = (lat == 0) & (lon == 0)
    outside = lat.notna() & ~zero & ~(lat.between(lat_min, lat_max) & lon.between(lon_min, lon_max))
    assert 0.006 < share(zero) < 0.015
    assert 0.002 < share(outside) < 0.01
    assert 0.013 < lat.isna().mean() < 0.03
    assert (lat.isna() == lon.isna()).all()


def test_offense_dates_are_sometimes_far_future_before_1970_or_missing(day0):
    year = pd.to_datetime(day0["Offense_Datetime"], unit="ms").dt.year
    assert 1 <= (year >= 2099).sum() <= ROWS * 0.001
    assert 1 <= (year < 1970).sum() <= ROWS * 0.001
    assert 1 <= day0["Offense_Datetime"].isna().sum() <= ROWS * 0.002


def test_categories_sometimes_carry_trailing_spaces_or_odd_casing(day0):
    category = day0["UCR_Category"]
    assert 0.02 < share(category.str.endswith(" ")) < 0.04
    odd = category.str.strip() != category.str.upper().str.strip()
    assert 0.005 < share(odd) < 0.02
    assert "Larceny/Theft" in set(category)


def test_city_and_zip_come_in_their_real_spellings(day0):
    assert {"MEMPHIS", "Memphis", "M", "mphs", "MEMPHIS "} <= set(day0["City"].dropna())
    assert 0.005 < day0["City"].isna().mean() < 0.03
    zips = day0["ZIP_Code"].dropna()
    assert zips.str.fullmatch(r"38\d{3}(-|-\d{4})?").all()
    assert zips.str.fullmatch(r"\d{5}-").any() and zips.str.fullmatch(r"\d{5}-\d{4}").any()
    assert 0.003 < day0["ZIP_Code"].isna().mean() < 0.02


def test_a_few_rows_lack_a_crime_id_or_a_station(day0):
    assert 1 <= day0["Crime_ID"].isna().sum() <= ROWS * 0.001
    assert {"OCU"} <= set(day0["Precinct"].dropna()) - set(demo_world.vocabulary()["precincts"])
    assert day0["Precinct"].isna().any()


# --- a large layer, made block by block -----------------------------------------------------------

def test_a_layer_made_in_blocks_keeps_every_rule_of_one_made_whole(monkeypatch):
    monkeypatch.setattr(demo, "BLOCK_ROWS", 700)
    blocks = list(demo.snapshot_blocks(5_000, 3, 2))
    assert len(blocks) > 8 and all(block.schema == demo_rows.RAW_SCHEMA for block in blocks)
    day0, day2 = demo_snapshot(5_000, 3, 0), pa.concat_tables(blocks)
    assert day0.num_rows == 5_000 and day0.num_rows - len(set(day0["ObjectId"].to_pylist())) == 15
    ids = day2["ObjectId"].to_numpy()
    assert (np.diff(ids) >= 0).all() and sorted(set(ids)) == list(range(1, ids.max() + 1))
    frame = day2.to_pandas()
    per_crime = frame.dropna(subset=["Crime_ID"]).groupby("Crime_ID")["Reported_Datetime"].nunique()
    assert (per_crime == 1).all()  # a Crime_ID is one incident's, in whichever block it was made
    assert frame["Crime_ID"].dropna().str.fullmatch(r"\d{10}ME").all()
    assert (frame["EditDate"] == demo_world.publication_ms(2)).sum() > 0  # day 2 edited rows of day 0


def test_a_full_pull_of_a_layer_in_blocks_is_the_layer(monkeypatch):
    monkeypatch.setattr(demo, "BLOCK_ROWS", 700)
    monkeypatch.setattr(demo, "PAGE_ROWS", 1_000)
    pull = source(rows=5_000, day=1).pull(None)
    pages = list(pull.tables)
    assert [p.num_rows for p in pages[:-1]] == [1_000] * (len(pages) - 1)
    assert pa.concat_tables(pages).equals(demo_snapshot(5_000, 1, 1)) and pull.server_count == 5_000 + (
        demo_snapshot(5_000, 1, 1).num_rows - 5_000)
