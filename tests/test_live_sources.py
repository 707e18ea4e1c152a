"""Live runs that survive the real publications, against the compatible test server on 127.0.0.1:
layers named as public code shows the real ones, optional fields that degrade, required ones that
stop the run, incremental modes read from the metadata, paging that mends itself, --check-source."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fake_sources import FakeServer
from fake_sources.rows import (
    arcgis_attributes,
    arcgis_fields,
    faithful_arcgis_layer,
    socrata_columns,
    socrata_rows,
    socrata_types,
)

from memphis_incidents.config import RunParameters, load_preset
from memphis_incidents.errors import ExitCode, ReconciliationError, SchemaDriftError
from memphis_incidents.ingest import pull_start, run_ingest
from memphis_incidents.load import run_load
from memphis_incidents.profiles import backends_for
from memphis_incidents.runner import main
from memphis_incidents.sources import make_source
from memphis_incidents.sources.arcgis import ArcGISSource
from memphis_incidents.sources.fields import Incremental
from memphis_incidents.sources.socrata import SocrataSource

REPO = Path(__file__).resolve().parents[1]
FAST = {"timeout": (1.0, 1.0), "retries": 1, "backoff_factor": 0.0, "progress": False}
LEGACY_COLUMNS = ["crime_id", "offense_date", "agency_crimetype_id", "category", "city", "state",
                  "masked_address", "coord1", "coord2", "location"]


@pytest.fixture
def server():
    with FakeServer() as running:
        yield running


def night(data_dir: Path, source: str, url: str, run_id: str, **params: Any) -> dict:
    """One run's ingest and load, as the notebooks call them."""
    run = RunParameters(data_dir=str(data_dir), source=source, base_url=url, run_id=run_id,
                        http_retries=1, http_backoff=0, **params)
    stores = backends_for(run)
    return run_ingest(run, stores) | {"load": run_load(run, stores)}


def warehouse(data_dir: Path, source: str) -> pa.Table:
    return backends_for(RunParameters(data_dir=str(data_dir), source=source)).warehouse.read_incidents()


def faithful_url(server: FakeServer, count: int | None = None) -> str:
    rows, fields = faithful_arcgis_layer(count)
    return server.add_arcgis(rows, fields, edit_field=None)


def pulled_ids(source: Any, key: str, since: str | None = None) -> list:
    return sorted(row[key] for table in source.pull(since).tables for row in table.to_pylist())


# Fields: required, optional, other case, type


def test_a_layer_named_as_public_code_shows_loads_fully_with_warnings_and_an_overlap_window(tmp_path, server):
    url = faithful_url(server)
    first = night(tmp_path, "memphis-arcgis", url, "n1")
    assert first["rows"] == first["server_count"] == 312
    assert first["load"]["rows"]["loaded"] + first["load"]["rows"]["quarantined"] == 312
    assert first["incremental"]["mode"] == "overlap window" and first["incremental"]["field"] == "Offense_Datetime"
    warnings = " | ".join(first["source_warnings"])
    for name in ("Reported_Datetime", "Agency_Crime_Type", "EditDate"):
        assert f"the source has no {name} field" in warnings
    assert "UCR_Incident_Code" not in warnings and "ZIP_Code" not in warnings
    table = warehouse(tmp_path, "memphis-arcgis")
    assert table.column("reported_ts_utc").null_count == table.num_rows
    assert table.column("category").null_count == 0 and table.column("incident_id").null_count == 0

    second = night(tmp_path, "memphis-arcgis", url, "n2")
    assert second["mode"] == "incremental" and second["mode_reason"].startswith("incremental: the source has no EditDate")
    assert "Offense_Datetime >= TIMESTAMP" in server.requests_of("page")[-1].params["where"]
    assert second["load"]["rows"]["inserted"] == 0 and warehouse(tmp_path, "memphis-arcgis").num_rows == table.num_rows


def test_a_layer_with_editor_tracking_uses_its_own_edit_date_field(tmp_path, server):
    rows, fields = faithful_arcgis_layer(40)
    for n, row in enumerate(rows):
        row["last_edited_date"] = 1_731_218_400_000 + n * 1000
    fields.append({"name": "last_edited_date", "type": "esriFieldTypeDate", "alias": "last_edited_date"})
    url = server.add_arcgis(rows, fields, edit_field="last_edited_date")
    first = night(tmp_path, "memphis-arcgis", url, "n1")
    assert first["incremental"] == {"mode": "edit date", "field": "last_edited_date", "reason":
                                    "the source has no EditDate field; the layer's own edit-date field "
                                    "last_edited_date (editFieldsInfo.editDateField)"}
    assert first["fields"]["source_updated_ts"] == "last_edited_date"
    assert any("source_updated_ts comes from last_edited_date" in w for w in first["source_warnings"])
    assert first["watermark"] == "2024-11-10T06:00:39.000Z"
    night(tmp_path, "memphis-arcgis", url, "n2")
    assert server.requests_of("page")[-1].params["where"].startswith("last_edited_date >= TIMESTAMP '2024-11-10 06:00:39'")


def test_a_required_field_renamed_stops_before_paging_and_leaves_the_warehouse_alone(tmp_path, server):
    url = faithful_url(server, 60)
    night(tmp_path, "memphis-arcgis", url, "n1")
    before = warehouse(tmp_path, "memphis-arcgis")
    next(iter(server.arcgis.values())).rename("Crime_ID", "CrimeID")
    pages = len(server.requests_of("page"))
    with pytest.raises(SchemaDriftError, match=r"no field Crime_ID \(incident_id\); did it become CrimeID") as drift:
        night(tmp_path, "memphis-arcgis", url, "n2")
    assert drift.value.exit_code == ExitCode.SOURCE_ERROR == 7
    assert len(server.requests_of("page")) == pages
    stores = backends_for(RunParameters(data_dir=str(tmp_path), source="memphis-arcgis"))
    assert [b["batch_id"] for b in stores.lake.batches()] == ["n1"]
    assert warehouse(tmp_path, "memphis-arcgis").equals(before)


def test_an_optional_field_renamed_between_two_nights_costs_no_rows(tmp_path, server):
    preset = load_preset("memphis-arcgis")
    url = server.add_arcgis(arcgis_attributes(preset, 50), arcgis_fields(preset))
    night(tmp_path, "memphis-arcgis", url, "n1")
    layer = next(iter(server.arcgis.values()))
    layer.rename("Precinct", "Precinct_Name")
    layer.update(3, {"UCR_Category": "ROBBERY"})
    second = night(tmp_path, "memphis-arcgis", url, "n2")
    assert second["source_warnings"] == ["the source has no Precinct field: precinct is empty"]
    rows = second["load"]["rows"]  # the edited row and the one at the watermark, both now without precinct
    assert (rows["received"], rows["updated"], rows["inserted"], rows["quarantined"]) == (2, 2, 0, 0)
    table = warehouse(tmp_path, "memphis-arcgis").to_pylist()
    assert len(table) == 50
    changed = [row for row in table if row["category"] == "ROBBERY" and row["row_id"] == "4"]
    assert changed and changed[0]["precinct"] is None


def test_a_field_in_another_letter_case_is_used_and_reported(tmp_path, server):
    preset = load_preset("memphis-arcgis")
    rows = [{**row, "ZIP_Code": "38106"} for row in arcgis_attributes(preset, 20)]
    url = server.add_arcgis(rows, arcgis_fields(preset))
    next(iter(server.arcgis.values())).rename("ZIP_Code", "Zip_Code")
    batch = night(tmp_path, "memphis-arcgis", url, "n1")
    assert batch["source_warnings"] == ["the source spells ZIP_Code as Zip_Code: used as zip"]
    assert set(warehouse(tmp_path, "memphis-arcgis").column("zip").to_pylist()) == {"38106"}


def test_a_required_field_of_a_type_that_cannot_be_read_stops_the_run(server):
    rows, fields = faithful_arcgis_layer(10)
    fields = [{**f, "type": "esriFieldTypeString"} if f["name"] == "Offense_Datetime" else f for f in fields]
    source = ArcGISSource(dataclasses.replace(load_preset("memphis-arcgis"), url=server.add_arcgis(rows, fields)), **FAST)
    with pytest.raises(SchemaDriftError, match=r"Offense_Datetime \(offense_ts\) is of type esriFieldTypeString"):
        source.pull(None)


def test_socrata_fields_come_from_the_dataset_metadata_and_degrade(tmp_path, server):
    preset = load_preset("memphis-2024")
    rows = [{("latitude" if k == "lat" else k): v for k, v in row.items()} for row in socrata_rows(preset, 12)]
    columns = [("latitude" if c == "lat" else c) for c in socrata_columns(preset)]
    url = server.add_socrata("puh4-eea4", rows, columns, socrata_types(preset))
    batch = night(tmp_path, "memphis-2024", url, "n1")
    assert batch["rows"] == 12 and batch["source_warnings"] == ["the source has no lat field: latitude is empty"]
    assert server.requests_of("meta") and not server.requests_of("probe")


def test_socrata_without_readable_metadata_probes_each_field(server):
    preset = load_preset("memphis-2024")
    url = server.add_socrata("puh4-eea4", socrata_rows(preset, 5), socrata_columns(preset))
    server.faults.add("status", on="meta", status=404)
    server.socrata["puh4-eea4"].rename("precinct", "mpd_precinct")
    source = SocrataSource(dataclasses.replace(preset, url=url), **FAST)
    assert source.schema.warnings == ["the source has no precinct field: precinct is empty"]
    assert source.schema.metadata.startswith("probing each field")
    assert len(pulled_ids(source, ":id")) == 5


# Incremental mode and the periodic reconcile


def test_overlap_window_runs_a_full_reconcile_every_reconcile_days(tmp_path):
    stores = backends_for(RunParameters(data_dir=str(tmp_path)))
    overlap = Incremental("overlap window", "Offense_Datetime", "no edit-date field")
    stores.state.commit_load("b1", "2026-11-20T00:00:00.000Z", {},
                             {"incremental": dataclasses.asdict(overlap), "last_full_at": "2026-11-20T06:00:00.000Z"})
    params = RunParameters(data_dir=str(tmp_path))
    now = datetime(2026, 11, 26, 6, tzinfo=timezone.utc)
    assert pull_start(params, stores.state, overlap, now)[0] == "2026-11-20T00:00:00.000Z"
    since, why = pull_start(params, stores.state, overlap, now + timedelta(days=1))
    assert since is None and "periodic reconcile (every 7 days; the last full pull was 7 days ago)" in why
    assert pull_start(dataclasses.replace(params, reconcile_days=0), stores.state, overlap, now + timedelta(days=30))[0]
    edits = Incremental("edit date", "EditDate", "the layer's edit date")
    since, why = pull_start(params, stores.state, edits, now)
    assert since is None and "changed from overlap window on Offense_Datetime to edit date on EditDate" in why


# Paging that mends itself


def arcgis_source(server: FakeServer, count: int = 40) -> tuple[ArcGISSource, Any]:
    preset = load_preset("memphis-arcgis")
    url = server.add_arcgis(arcgis_attributes(preset, count), arcgis_fields(preset))
    return ArcGISSource(dataclasses.replace(preset, url=url), **FAST, page_size=8), next(iter(server.arcgis.values()))


def socrata_source(server: FakeServer, count: int = 25) -> tuple[SocrataSource, Any]:
    preset = load_preset("memphis-2024")
    url = server.add_socrata("puh4-eea4", socrata_rows(preset, count), socrata_columns(preset), socrata_types(preset))
    return SocrataSource(dataclasses.replace(preset, url=url), **FAST, page_size=4), server.socrata["puh4-eea4"]


@pytest.mark.fault("source")
@pytest.mark.parametrize("api", ["arcgis", "socrata"])
@pytest.mark.parametrize("fault", ["repeat", "skip", "delete"])
def test_repeated_skipped_and_shifted_pages_end_with_exactly_the_sources_rows(server, api, fault):
    source, dataset = arcgis_source(server) if api == "arcgis" else socrata_source(server)
    key = "ObjectId" if api == "arcgis" else ":id"
    server.faults.add(fault, on="page", after=2, rows=5)
    pull = source.pull(None)
    assert sorted(row[key] for t in pull.tables for row in t.to_pylist()) == sorted(row[key] for row in dataset.rows)
    served = 40 if api == "arcgis" else 25
    assert pull.server_count == len(dataset.rows) == served - (5 if fault == "delete" else 0)


@pytest.mark.fault("source")
def test_arcgis_fetches_the_rows_a_skipped_page_lost_by_id(server):
    source, layer = arcgis_source(server)
    server.faults.add("skip", on="page", after=1)
    pull = source.pull(None)
    assert sum(t.num_rows for t in pull.tables) == 40
    assert pull.repairs == ["the server counted 40 rows, the pages brought 32: 8 missing rows fetched by id"]
    assert server.requests_of("ids") and server.requests_of("page")[-1].params["objectIds"] == "9,10,11,12,13,14,15,16"


@pytest.mark.fault("source")
def test_socrata_pulls_again_only_the_updated_at_ranges_whose_counts_differ(server):
    source, dataset = socrata_source(server, count=40)
    server.faults.add("delete", on="page", after=6, rows=2)  # two rows already received are deleted
    pull = source.pull(None)
    assert sorted(r[":id"] for t in pull.tables for r in t.to_pylist()) == sorted(r[":id"] for r in dataset.rows)
    assert len(pull.repairs) == 1 and pull.repairs[0].startswith("the server counted 38 rows, the pages brought 40: 1 of")


@pytest.mark.fault("source")
def test_a_count_that_no_repair_can_meet_fails_the_pull(server):
    source, _ = arcgis_source(server)
    server.faults.add("status", on="count", status=200, body={"count": 45}, times=None)
    with pytest.raises(ReconciliationError, match="reports 45 rows for this pull but 40 were received, even after"):
        source.pull(None)


def test_http_timeout_reaches_the_client(tmp_path):
    source = make_source(load_preset("memphis-arcgis"), RunParameters(http_timeout=2.5), progress=False)
    assert source.http.timeout == (2.5, 2.5) and source.http.read_timeout == 2.5


# --check-source


def check(tmp_path: Path, capsys: pytest.CaptureFixture, source: str, url: str) -> tuple[int, str]:
    code = main(["--check-source", "--source", source, "-p", "base_url", url, "-p", "http_retries", "0",
                 "-p", "data_dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports")], REPO)
    out = capsys.readouterr()
    assert "Traceback" not in out.err and not (tmp_path / "data").exists() and not (tmp_path / "reports").exists()
    return code, out.out + out.err


def legacy_url(server: FakeServer) -> str:
    rows = [{":id": f"row-{n}", ":updated_at": "2022-01-01T00:00:00.000Z", "crime_id": f"{n}",
             "offense_date": "2021-12-31T23:00:00.000", "category": "THEFT"} for n in range(3)]
    return server.add_socrata("ybsi-jur4", rows, LEGACY_COLUMNS, {"offense_date": "calendar_date"})


def test_check_source_passes_for_every_preset_against_faithful_services(tmp_path, server, capsys):
    preset = load_preset("memphis-2024")
    socrata = server.add_socrata("puh4-eea4", socrata_rows(preset, 10), socrata_columns(preset), socrata_types(preset))
    for name, url, rows in (("memphis-arcgis", faithful_url(server), "312"), ("memphis-2024", socrata, "10"),
                            ("memphis-legacy", legacy_url(server), "3")):
        code, text = check(tmp_path, capsys, name, url)
        assert code == 0, text
        assert f"rows: {rows} (the server's count)" in text and "A run would work" in text
    code, text = check(tmp_path, capsys, "memphis-arcgis", faithful_url(server))
    assert "reported_ts          Reported_Datetime    missing" in text
    assert "incidents_id" not in text and "incremental: overlap window on Offense_Datetime" in text
    assert "these columns would be empty: reported_ts, agency_crime_type, source_updated_ts" in text


def test_check_source_fails_with_exit_7_for_a_drifted_and_a_retired_source(tmp_path, server, capsys):
    url = faithful_url(server, 10)
    next(iter(server.arcgis.values())).rename("UCR_Category", "UCR_Cat")
    code, text = check(tmp_path, capsys, "memphis-arcgis", url)
    assert code == ExitCode.SOURCE_ERROR
    assert "category             UCR_Category         missing" in text
    assert "A run would FAIL: the source cannot give category (UCR_Category)" in text
    code, text = check(tmp_path, capsys, "memphis-legacy", server.url + "/resource/ybsi-jur4.json")
    assert code == ExitCode.SOURCE_ERROR and "was not found (404): the dataset is retired" in text


@pytest.mark.slow
def test_a_whole_run_on_the_faithful_layer_reports_its_missing_fields(tmp_path, server):
    url = faithful_url(server, 400)
    code = main(["--source", "memphis-arcgis", "-p", "base_url", url, "-p", "http_retries", "0", "--run-id", "live",
                 "-p", "data_dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports")], REPO)
    assert code == 0
    doc = json.loads((tmp_path / "reports" / "live" / "run.json").read_text())
    assert doc["source_warnings"][0] == "the source has no Reported_Datetime field: reported_ts is empty"
    assert doc["batch"]["incremental"]["mode"] == "overlap window" and doc["rows"]["loaded"] == 400
    report = (tmp_path / "reports" / "live" / "report.html").read_text()
    assert "The source has no Agency_Crime_Type field: agency_crime_type is empty." in report
