"""Bad rows: property-based tests of the normaliser over dirty values, through the real path a row
takes (the source's page builder, the raw batch in the lake, the load into the warehouse).

Rows carry dates in every format and none, coordinates out of range or not numbers, empty, huge and
non-UTF-8-looking strings, missing and extra fields and wrong JSON types. Each row must end in
exactly one place: loaded, quarantined with a known reason, or counted as a duplicate; so
received = loaded + quarantined + duplicates, always; and a loaded row keeps its source row id.
"""
from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fake_sources.rows import arcgis_fields
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from memphis_incidents.config import RunParameters, load_preset
from memphis_incidents.ingest import unified_pages, with_ingest_metadata
from memphis_incidents.load import load_batch
from memphis_incidents.profiles import backends_for
from memphis_incidents.quality import split_batch
from memphis_incidents.schema import canonical_incidents
from memphis_incidents.sources import arcgis, socrata
from memphis_incidents.sources.base import iso_utc

from .conftest import Ledger

pytestmark = pytest.mark.fault("bad rows")
TAG = "fault_tag"  # an extra field naming each row, so it can be found wherever it ends
REASONS = {"missing_row_id", "missing_offense_date", "unparseable_offense_date", "offense_date_before_1970",
           "offense_date_in_future"}
INGESTED_AT = datetime(2026, 11, 28, 6, tzinfo=timezone.utc)
DATE_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d", "%Y-%m-%d %H:%M:%S%z",
                "%m/%d/%Y %I:%M:%S %p", "%m/%d/%y", "%d %b %Y", "%Y%m%d", "  %Y-%m-%dT%H:%M  "]
ODD_TEXT = ["", " ", "\x00", "Ã©tÃ©", "â€™", "\ufffd\ufffd", "\u202eevil", "\u200b", "東京", "🚓",
            "\\u00e9", "x" * 200_000, "NULL", "None", "NaN", "-", "0", "1e309"]

MISSING = object()  # a field left out of a row
LONE_SURROGATES = ["\udc80", "caf\ud800e"]  # what a JSON \\udXXX escape from a UTF-16 server gives
latin1 = st.binary(max_size=24).map(lambda raw: raw.decode("latin-1"))  # bytes read as if they were text
odd_text = st.sampled_from(ODD_TEXT + LONE_SURROGATES) | st.text(max_size=40) | latin1
wrong_json = (st.none() | st.booleans() | st.integers() | st.floats() | st.lists(st.integers(), max_size=2)
              | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2) | odd_text)
moments = st.datetimes(datetime(1800, 1, 1), datetime(2300, 1, 1))
date_text = st.builds(lambda moment, fmt: moment.strftime(fmt), moments, st.sampled_from(DATE_FORMATS))
recent = st.datetimes(datetime(2020, 1, 1), datetime(2025, 12, 31))
epoch_ms = recent.map(lambda m: int(m.replace(tzinfo=timezone.utc).timestamp() * 1000))
local_text = recent.map(lambda m: m.strftime("%Y-%m-%dT%H:%M:%S.000"))
in_city = st.floats(34.95, 35.35), st.floats(-90.3, -89.55)
labels = st.sampled_from(["ASSAULT", "LARCENY/THEFT", " burglary  ", "CRUMP", "38118-", "Memphis"])


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy, percent_good: int = 80) -> st.SearchStrategy:
    """`good` most of the time, else `bad`, a field left out, or a value of a wrong JSON type."""
    worse = bad | st.just(MISSING) | wrong_json
    return st.integers(0, 99).flatmap(lambda n: good if n < percent_good else worse)


def arcgis_values(preset) -> dict[str, st.SearchStrategy]:
    """What each ArcGIS field holds: its proper type mostly (epoch ms dates), anything at times."""
    dates = mostly(epoch_ms, st.integers() | st.floats() | epoch_ms.map(str) | date_text)
    kinds = {"row_id": mostly(st.integers(1, 40), st.integers() | st.floats()), "offense_ts": dates,
             "reported_ts": dates, "source_updated_ts": dates,
             "latitude": mostly(in_city[0], st.floats() | in_city[0].map(str) | odd_text),
             "longitude": mostly(in_city[1], st.floats() | st.integers(-1000, 1000) | odd_text)}
    return {preset.fields[name]: kinds.get(name, mostly(labels, odd_text)) for name in preset.fields}


def socrata_values(preset) -> dict[str, st.SearchStrategy]:
    """What each SODA field holds: text mostly (floating local times), anything at times."""
    dates = mostly(local_text, date_text | odd_text)
    kinds = {"row_id": mostly(st.integers(1, 40).map(lambda n: f"row-{n}"), odd_text), "offense_ts": dates,
             "reported_ts": dates, "source_updated_ts": mostly(local_text.map(lambda t: t + "Z"), date_text),
             "latitude": mostly(in_city[0].map(str), st.floats().map(str) | odd_text),
             "longitude": mostly(in_city[1].map(str), st.floats().map(str) | odd_text)}
    return {field: kinds.get(name, mostly(labels, odd_text)) for name, field in preset.fields.items()}


def rows_like(values: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Rows drawn field by field as above, with extra fields of any type now and then."""
    extra = st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k not in values), wrong_json,
                            max_size=2)
    row = st.tuples(st.fixed_dictionaries(values), extra).map(
        lambda pair: {**pair[1], **{k: v for k, v in pair[0].items() if v is not MISSING}})
    return st.lists(row, min_size=1, max_size=25)


@dataclass
class Source:
    """How one publication's page builder turns JSON rows into a raw page."""

    preset_name: str
    values: Any
    page: Any
    id_text: Any  # the row id text a raw id of the proper type must give
    valid_row: Any  # a row that loads, numbered n
    preset: Any = field(init=False)

    def __post_init__(self) -> None:
        self.preset = load_preset(self.preset_name)


def arcgis_page(rows: list[dict], preset) -> Any:
    fields = arcgis_fields(preset)
    declared = {f["name"]: arcgis.ESRI_TYPES.get(f["type"]) for f in fields}
    return arcgis.page_table(rows, list(preset.fields.values()), declared)


def socrata_page(rows: list[dict], preset) -> Any:
    return socrata.page_table(rows, list(dict.fromkeys([":id", ":updated_at", *preset.fields.values()])))


def plain_text(raw: Any) -> str | None:
    """The id a Socrata id must give: as sent, up to surrounding whitespace, a lone surrogate as
    U+FFFD as in any text (test_a_lone_surrogate_is_loaded_as_a_replacement_character); None: not checked."""
    return re.sub("[\ud800-\udfff]", "\ufffd", raw) if isinstance(raw, str) and raw.strip() else None


SOURCES = {
    "arcgis": Source("memphis-arcgis", arcgis_values, arcgis_page,
                     lambda raw: str(raw) if type(raw) is int else None,
                     lambda n: {"ObjectId": n, "Offense_Datetime": 1_700_000_000_000}),
    "socrata": Source("memphis-2024", socrata_values, socrata_page, plain_text,
                      lambda n: {":id": f"row-{n}", ":updated_at": "2023-11-15T00:00:00.000Z",
                                 "offense_date": "2023-11-14T16:13:20.000"}),
}


def landed(rows: list[dict], cut: int, source: Source, folder: Path) -> tuple[Any, dict]:
    """The rows through the page builder (two pages), ingest and the lake, as load reads them."""
    tagged = [{**row, TAG: str(n)} for n, row in enumerate(rows)]
    pages = [source.page(part, source.preset) for part in (tagged[:cut], tagged[cut:]) if part]
    backends = backends_for(RunParameters(data_dir=str(folder), source=source.preset_name))
    meta = {"ingested_at": iso_utc(INGESTED_AT), "mode": "incremental", "watermark": None}
    written = (with_ingest_metadata(page, "b1", INGESTED_AT) for page in unified_pages(pages))
    meta = backends.lake.write_batch("b1", written, meta)
    return backends, meta


@dataclass
class Outcome:
    """What became of a batch of rows: the split, the rows kept and quarantined (by tag), the
    records of loading it and of loading it again (as a full refresh), and the table after."""

    rows: list[dict]
    split: Any
    kept: list[str]
    rejected: list[str]
    record: dict
    again: dict
    table: Any
    quarantined: int

    def record_in(self, ledger: Ledger) -> None:
        """One dirty batch tried; rows in no place are lost, rows in two places (or twice in the
        table) duplicated."""
        placed = self.kept + self.rejected
        ledger.injected()
        ledger.rows(len(self.rows), max(len(self.rows) - len(set(placed)) - self.split.duplicates, 0),
                    len(placed) - len(set(placed)) + max(self.table.num_rows - len(self.kept), 0))


def outcome(rows: list[dict], cut: int, source: Source, folder: Path) -> Outcome:
    backends, meta = landed(rows, cut, source, folder)
    raw = backends.lake.read_batch("b1").to_pandas()
    split = split_batch(raw, source.preset, "b1", INGESTED_AT)
    record = load_batch(meta, source.preset, backends, max_reject_share=1.0)
    again = load_batch({**meta, "mode": "full"}, source.preset, backends, max_reject_share=1.0)
    assert_hash_is_the_rows_own(raw, source)
    return Outcome(rows, split, raw.loc[split.valid.index, TAG].tolist(),
                   [json.loads(text)[TAG] for text in split.rejected.column("raw_json").to_pylist()],
                   record, again, backends.warehouse.read_incidents(),
                   sum(r["rows"] for r in backends.warehouse.quarantine_counts().to_pylist()))


def assert_hash_is_the_rows_own(raw: pd.DataFrame, source: Source) -> None:
    """A row's content hash depends on the row alone, not on the batch it came in."""
    together = canonical_incidents(raw, source.preset, "b1")["row_hash"]
    for n in range(min(len(raw), 3)):
        alone = canonical_incidents(raw.iloc[[n]], source.preset, "b1")["row_hash"]
        assert alone.iloc[0] == together.iloc[n], f"row {n} hashes differently alone"


def assert_each_row_in_one_place(done: Outcome) -> None:
    record, placed = done.record, done.kept + done.rejected
    assert record["received"] == len(done.rows)
    assert record["received"] == record["loaded"] + record["quarantined"] + record["duplicates"]
    assert (record["loaded"], record["quarantined"], record["duplicates"]) == \
        (len(done.kept), len(done.rejected), done.split.duplicates)
    assert len(set(placed)) == len(placed) and set(placed) <= {str(n) for n in range(len(done.rows))}
    assert set(done.split.rejected.column("reason").to_pylist()) <= REASONS
    assert done.quarantined == len(done.rejected)


def assert_loaded_rows_keep_their_ids_and_dates(done: Outcome, source: Source) -> None:
    ids = done.table.column("row_id").to_pylist()
    assert sorted(ids) == sorted(done.split.valid["row_id"].tolist()) and len(set(ids)) == len(ids)
    for tag, row_id in zip(done.kept, done.split.valid["row_id"]):
        expected = source.id_text(done.rows[int(tag)].get(source.preset.fields["row_id"]))
        assert expected is None or row_id.strip() == expected.strip(), f"row id {row_id!r}, sent {expected!r}"
    offense = done.split.valid["offense_ts_utc"]
    assert offense.notna().all() and (offense >= pd.Timestamp("1970-01-01", tz="UTC")).all()
    assert (offense <= pd.Timestamp(INGESTED_AT + timedelta(days=1))).all()


def assert_loading_again_changes_nothing(done: Outcome) -> None:
    changes = {key: done.again[key] for key in ("inserted", "updated", "deleted_at_source", "withdrawn")}
    assert changes == dict.fromkeys(changes, 0) and done.again["unchanged"] == len(done.kept)


@pytest.mark.parametrize("name", SOURCES)
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: each example loads twice
@given(data=st.data())
def test_every_row_is_loaded_quarantined_with_a_reason_or_a_counted_duplicate(
        name: str, ledger: Ledger, data: st.DataObject) -> None:
    source = SOURCES[name]
    rows = data.draw(rows_like(source.values(source.preset)), label="rows")
    with tempfile.TemporaryDirectory() as folder:
        done = outcome(rows, data.draw(st.integers(0, len(rows)), label="page cut"), source, Path(folder))
    done.record_in(ledger)
    assert_each_row_in_one_place(done)
    assert_loaded_rows_keep_their_ids_and_dates(done, source)
    assert_loading_again_changes_nothing(done)


def without(row: dict, field: str) -> dict:
    return {k: v for k, v in row.items() if k != field}


ARCGIS_ROW, SOCRATA_ROW = SOURCES["arcgis"].valid_row, SOURCES["socrata"].valid_row
KNOWN_DIRTY_BATCHES = [  # pages found to break a load, each as small as it gets
    pytest.param("arcgis", [ARCGIS_ROW(1), without(ARCGIS_ROW(2), "ObjectId")],
                 id="an id missing: ids as floats"),
    pytest.param("arcgis", [ARCGIS_ROW(1), {**ARCGIS_ROW(2), "ObjectId": 2.0}], id="an id sent as a float"),
    pytest.param("arcgis", [{**ARCGIS_ROW(1), "Offense_Datetime": 1_700_000_000_000.0007}],
                 id="an epoch finer than a microsecond"),
    pytest.param("socrata", [{**SOCRATA_ROW(1), "offense_date": "2023-11-14T16:13:20.123456789"}],
                 id="a time in nanoseconds"),
    pytest.param("arcgis", [{**ARCGIS_ROW(1), "Offense_Datetime": 10**15}], id="an epoch after 2262"),
    pytest.param("arcgis", [ARCGIS_ROW(1), {**ARCGIS_ROW(2), "EditDate": 1_700_000_000_123}],
                 id="a neighbour's milliseconds"),
    pytest.param("arcgis", [{**ARCGIS_ROW(1), "_ingest_at": "(!Aq", "_ingest_batch_id": 7}, ARCGIS_ROW(2)],
                 id="a source field named like the ingest's own"),
]


@pytest.mark.parametrize("name, rows", KNOWN_DIRTY_BATCHES)
def test_known_dirty_batches(name: str, rows: list[dict], ledger: Ledger, tmp_path: Path) -> None:
    done = outcome(rows, 1, SOURCES[name], tmp_path)
    done.record_in(ledger)
    assert_each_row_in_one_place(done)
    assert_loaded_rows_keep_their_ids_and_dates(done, SOURCES[name])
    assert_loading_again_changes_nothing(done)


def test_a_source_field_named_like_the_ingests_own_is_kept_under_another_name(tmp_path: Path) -> None:
    rows = [{**ARCGIS_ROW(1), "_ingest_at": "sent by the source", "_source_ingest_at": "also sent"}]
    backends, _ = landed(rows, 1, SOURCES["arcgis"], tmp_path)
    raw = backends.lake.read_batch("b1")
    assert raw.column("_source_source_ingest_at").to_pylist() == ["sent by the source"]
    assert raw.column("_source_ingest_at").to_pylist() == ["also sent"]
    assert raw.column("_ingest_at").to_pylist() == [INGESTED_AT]


@pytest.mark.parametrize("name", SOURCES)
def test_a_lone_surrogate_is_loaded_as_a_replacement_character(
        name: str, ledger: Ledger, tmp_path: Path) -> None:
    source = SOURCES[name]
    category = source.preset.fields["category"]
    rows = [{**source.valid_row(n), category: text} for n, text in enumerate(LONE_SURROGATES)]
    done = outcome(rows, 1, source, tmp_path)
    done.record_in(ledger)
    assert_each_row_in_one_place(done)
    assert sorted(done.table.column("category").to_pylist()) == ["CAF\ufffdE", "\ufffd"]
