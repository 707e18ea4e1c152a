"""The Socrata and ArcGIS clients against the compatible test server on 127.0.0.1: full and
incremental pulls, paging, counts, the app token, and one test per fault the sources show."""
from __future__ import annotations

import dataclasses
import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import pyarrow as pa
import pytest
from fake_sources import FakeServer
from fake_sources.rows import (
    arcgis_attributes,
    arcgis_fields,
    socrata_columns,
    socrata_rows,
)

from memphis_incidents.config import load_preset, preset_names
from memphis_incidents.errors import ConfigError, MalformedResponse, SchemaDriftError, SourceError, SourceUnreachable
from memphis_incidents.sources.arcgis import ArcGISSource
from memphis_incidents.sources.socrata import SocrataSource

FAST = {"timeout": (1.0, 1.0), "retries": 2, "backoff_factor": 0.0, "progress": False}
TOKEN = "test-app-token-8f3a"


@dataclass
class Client:
    """One source client wired to the test server, and what the server holds."""

    make: Callable[..., Any]
    served: Callable[[], list[dict[str, Any]]]
    key: str
    field: str  # a mapped field, for drift


@pytest.fixture(autouse=True)
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCRATA_APP_TOKEN", raising=False)


@pytest.fixture
def server():
    with FakeServer() as running:
        yield running


def socrata_client(server: FakeServer, count: int = 25, rows_per_update: int = 3) -> Client:
    preset = load_preset("memphis-2024")
    rows = socrata_rows(preset, count, rows_per_update)
    live = load_preset("memphis-2024", server.add_socrata("puh4-eea4", rows, socrata_columns(preset)))
    return Client(lambda **options: SocrataSource(live, **{**FAST, "page_size": 4, **options}),
                  lambda: server.socrata["puh4-eea4"].rows, ":id", "ucr_category")


def arcgis_client(server: FakeServer, count: int | None = 40) -> Client:
    preset = load_preset("memphis-arcgis")
    url = server.add_arcgis(arcgis_attributes(preset, count), arcgis_fields(preset))
    live = dataclasses.replace(preset, url=url)
    layer = next(iter(server.arcgis.values()))
    return Client(lambda **options: ArcGISSource(live, **{**FAST, "page_size": 8, **options}),
                  lambda: layer.rows, "ObjectId", "UCR_Category")


@pytest.fixture(params=["socrata", "arcgis"])
def client(request: pytest.FixtureRequest, server: FakeServer) -> Client:
    return socrata_client(server) if request.param == "socrata" else arcgis_client(server)


def by_key(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    """Rows by key without their nulls (SODA omits them); a key seen twice fails the test."""
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        assert row[key] not in out, f"row {row[key]} landed twice"
        out[row[key]] = {name: value for name, value in row.items() if value is not None}
    return out


def pulled(source: Any, since: str | None = None) -> list[dict[str, Any]]:
    return [row for table in source.pull(since).tables for row in table.to_pylist()]


def assert_pulls_served(client: Client, **options: Any) -> None:
    assert by_key(pulled(client.make(**options)), client.key) == by_key(client.served(), client.key)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Socrata: pulls, paging, increments, token


def test_socrata_full_pull_equals_served_rows_over_several_pages(server: FakeServer) -> None:
    client = socrata_client(server)
    source = client.make()
    assert_pulls_served(client)
    pages = server.requests_of("page")
    assert len(pages) >= 7
    assert {(r.params["$select"], r.params["$order"], r.params["$limit"]) for r in pages} == {
        (":*,*", ":updated_at,:id", "4")}
    assert source.count(None) == 25


def test_socrata_pages_are_strings_with_every_mapped_field(server: FakeServer) -> None:
    client = socrata_client(server, count=10)
    tables = list(client.make().pull(None).tables)
    mapped = set(load_preset("memphis-2024").fields.values())
    for table in tables:
        assert mapped <= set(table.column_names)
        assert all(pa.types.is_string(column.type) for column in table.schema)
    assert tables[0].column("lat").null_count == tables[0].num_rows  # not in the sample: null


def test_socrata_incremental_pull_returns_rows_updated_at_or_after_the_watermark(server: FakeServer) -> None:
    client = socrata_client(server)
    source = client.make()
    since = "2024-11-10T06:00:03.000Z"
    expected = [row for row in client.served() if row[":updated_at"] >= since]
    assert by_key(pulled(source, since), ":id") == by_key(expected, ":id")
    assert source.count(since) == len(expected) == 16
    assert server.requests_of("page")[0].params["$where"] == ":updated_at >= '2024-11-10T06:00:03.000'"


def test_socrata_watermark_is_the_latest_update_in_utc(server: FakeServer) -> None:
    source = socrata_client(server).make()
    table = pa.concat_tables(source.pull(None).tables)
    assert source.watermark_of(table) == "2024-11-10T06:00:08.000Z"


@pytest.mark.fault("secrets")
def test_socrata_sends_the_app_token_and_never_shows_it(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    source = socrata_client(server).make()
    pulled(source, "2024-11-10T06:00:03.000Z")
    assert {request.app_token for request in server.requests} == {TOKEN}
    assert server.requests[0].user_agent.startswith("memphis-incidents/")
    server.faults.add("status", status=403, times=None)
    with pytest.raises(SourceError) as refused:
        pulled(source)
    assert "SOCRATA_APP_TOKEN" in str(refused.value)
    shown = [source.describe(None), source.describe("2024-11-10T06:00:03.000Z"), str(refused.value)]
    assert not any(TOKEN in text for text in [*shown, caplog.text])


def test_socrata_without_a_token_sends_no_token_header(server: FakeServer) -> None:
    pulled(socrata_client(server, count=5).make())
    assert {request.app_token for request in server.requests} == {None}


def test_socrata_page_size_below_two_is_refused(server: FakeServer) -> None:
    with pytest.raises(ConfigError):
        socrata_client(server).make(page_size=1)


# ArcGIS: pulls, paging, types, increments


def test_arcgis_full_pull_equals_served_rows_over_several_pages(server: FakeServer) -> None:
    client = arcgis_client(server, count=None)
    source = client.make(page_size=50)
    assert_pulls_served(client, page_size=50)
    pages = server.requests_of("page")
    assert len(pages) == 7
    assert {(r.params["outFields"], r.params["orderByFields"], r.params["returnGeometry"], r.params["f"])
            for r in pages} == {("*", "ObjectId", "false", "json")}
    assert [r.params["where"] for r in pages] == ["1=1", *(f"(1=1) AND ObjectId > {50 * n}" for n in range(1, 7))]
    assert not any("resultOffset" in r.params for r in pages)  # paged by key: a shifted page cannot lose rows
    assert source.count(None) == 312


def test_arcgis_keeps_types_as_received(server: FakeServer) -> None:
    client = arcgis_client(server, count=10)
    rows = client.served()
    rows[0]["Latitude"], rows[1]["Latitude"] = 0, 35.1  # a double field sends 0 as a whole number
    schema = pa.concat_tables(client.make().pull(None).tables).schema
    assert schema.field("ObjectId").type == pa.int64()
    assert schema.field("Offense_Datetime").type == pa.int64()
    assert schema.field("EditDate").type == pa.int64()
    assert schema.field("Latitude").type == pa.float64()
    assert schema.field("Longitude").type == pa.float64()  # all null: the layer's type
    assert schema.field("UCR_Category").type == pa.string()
    assert schema.field("NIBRS_Group").type == pa.string()  # all null: the layer's type


def test_arcgis_conflicting_column_becomes_text(server: FakeServer) -> None:
    client = arcgis_client(server, count=8)
    client.served()[0]["Precinct"] = 7
    table = pa.concat_tables(client.make().pull(None).tables)
    assert table.schema.field("Precinct").type == pa.string()
    assert table.column("Precinct").to_pylist()[:2] == ["7", "CRUMP"]


def test_arcgis_incremental_pull_returns_rows_edited_at_or_after_the_watermark(server: FakeServer) -> None:
    client = arcgis_client(server)
    source = client.make()
    since = "2024-11-10T06:00:25.000Z"
    expected = [row for row in client.served() if row["EditDate"] >= client.served()[25]["EditDate"]]
    assert by_key(pulled(source, since), "ObjectId") == by_key(expected, "ObjectId")
    assert source.count(since) == len(expected) == 15
    assert server.requests_of("page")[0].params["where"] == "EditDate >= TIMESTAMP '2024-11-10 06:00:25'"
    assert source.watermark_of(pa.concat_tables(source.pull(since).tables)) == "2024-11-10T06:00:39.000Z"


def test_arcgis_without_an_edit_date_repulls_an_overlap_window(server: FakeServer) -> None:
    client = arcgis_client(server, count=None)
    next(iter(server.arcgis.values())).edit_field = None  # no editor tracking on the layer
    preset = dataclasses.replace(client.make().preset, updated_field="")
    source = ArcGISSource(preset, **{**FAST, "page_size": 50})
    assert source.schema.incremental.mode == "overlap window"
    since = "2021-06-01T05:00:00.000Z"
    window_start = int(datetime(2021, 5, 25, 5, tzinfo=timezone.utc).timestamp() * 1000)
    expected = [row for row in client.served() if row["Offense_Datetime"] >= window_start]
    assert by_key(pulled(source, since), "ObjectId") == by_key(expected, "ObjectId")
    where = server.requests_of("page")[0].params["where"]
    assert where == "Offense_Datetime >= TIMESTAMP '2021-05-25 05:00:00'"
    assert source.watermark_of(pa.concat_tables(source.pull(None).tables)) == "2026-06-23T05:00:00.000Z"


def test_progress_callback_gets_rows_pages_and_the_expected_total(server: FakeServer) -> None:
    calls: list[tuple[int, int, int | None]] = []
    pulled(socrata_client(server).make(progress=lambda *report: calls.append(report)))
    assert calls[-1][0] == 25
    assert calls[-1][2] == 25
    assert [pages for _, pages, _ in calls] == list(range(1, len(calls) + 1))


def test_progress_bar_runs_without_a_callback(server: FakeServer) -> None:
    assert len(pulled(arcgis_client(server).make(progress=True))) == 40


# Faults, for both clients


@pytest.mark.fault("source")
def test_429_is_retried_after_waiting_retry_after(client: Client, server: FakeServer) -> None:
    server.faults.add("status", on="page", status=429, retry_after=1)
    started = time.monotonic()
    assert_pulls_served(client)
    assert time.monotonic() - started >= 1.0
    refused, retried = server.requests_of("page")[:2]
    assert refused.params == retried.params


@pytest.mark.fault("source")
def test_500_then_success(client: Client, server: FakeServer) -> None:
    server.faults.add("status", on="page", after=1, status=500)
    assert_pulls_served(client)


@pytest.mark.fault("source")
def test_hang_past_the_read_timeout_is_retried(client: Client, server: FakeServer) -> None:
    server.faults.add("hang", on="page", after=1, seconds=3)
    started = time.monotonic()
    assert_pulls_served(client, timeout=(1.0, 0.3))
    assert time.monotonic() - started < 2.5


@pytest.mark.fault("source")
def test_permanent_hang_is_unreachable_naming_host_and_tries(client: Client, server: FakeServer) -> None:
    server.faults.add("hang", on="page", seconds=3, times=None)
    with pytest.raises(SourceUnreachable) as unreachable:
        pulled(client.make(timeout=(1.0, 0.3), retries=1))
    assert server.url.removeprefix("http://") in str(unreachable.value)
    assert "timed out on all 2 tries" in str(unreachable.value)


@pytest.mark.fault("source")
@pytest.mark.parametrize("mode", ["cut", "short"])
def test_truncated_page_is_fetched_again(client: Client, server: FakeServer, mode: str) -> None:
    server.faults.add("truncate", on="page", after=1, times=2, mode=mode)
    assert_pulls_served(client)


@pytest.mark.fault("source")
def test_page_truncated_every_time_is_a_malformed_page_error(client: Client, server: FakeServer) -> None:
    server.faults.add("truncate", on="page", times=None)
    with pytest.raises(SourceError, match="malformed page") as malformed:
        pulled(client.make())
    assert type(malformed.value) is MalformedResponse  # exit code 7, not "unreachable"
    assert len(server.requests_of("page")) == 3


@pytest.mark.fault("source")
def test_page_repeating_rows_of_the_previous_page_lands_each_row_once(
    client: Client, server: FakeServer
) -> None:
    server.faults.add("shift", on="page", after=1, rows=3)
    assert_pulls_served(client)


@pytest.mark.fault("source")
def test_renamed_field_is_schema_drift_naming_it(client: Client, server: FakeServer) -> None:
    server.faults.add("rename", field=client.field, to=client.field + "_v2")
    with pytest.raises(SchemaDriftError, match=client.field) as drift:
        pulled(client.make())
    assert "presets.toml" in str(drift.value)
    assert not server.requests_of("page")


@pytest.mark.fault("source")
def test_404_names_the_preset_and_the_alternatives(client: Client, server: FakeServer) -> None:
    server.faults.add("status", status=404, times=None)
    with pytest.raises(SourceError, match="retired") as retired:
        pulled(client.make())
    assert not isinstance(retired.value, SourceUnreachable)
    name = client.make().preset.name
    assert name in str(retired.value)
    assert all(other in str(retired.value) for other in preset_names() if other != name)


@pytest.mark.fault("source")
@pytest.mark.parametrize("status", [401, 403])
def test_refused_access_is_a_source_error(client: Client, server: FakeServer, status: int) -> None:
    server.faults.add("status", status=status, times=None)
    with pytest.raises(SourceError, match=f"refused access \\(HTTP {status}\\)") as refused:
        pulled(client.make())
    assert not isinstance(refused.value, SourceUnreachable)
    assert len(server.requests) == 1  # not retried


@pytest.mark.fault("source")
def test_5xx_on_every_try_is_unreachable(client: Client, server: FakeServer) -> None:
    server.faults.add("status", status=503, times=None)
    with pytest.raises(SourceUnreachable, match="still answered HTTP 503 after 3 tries"):
        pulled(client.make())


@pytest.mark.fault("source")
def test_closed_port_is_unreachable_naming_host_and_tries(client: Client) -> None:
    source = client.make()
    host = f"127.0.0.1:{closed_port()}"
    url = source.preset.url.replace(source.preset.url.split("/")[2], host)
    moved = type(source)(dataclasses.replace(source.preset, url=url), **FAST)
    refused = f"cannot reach {host} \\(connection refused on all 3 tries\\)"
    with pytest.raises(SourceUnreachable, match=refused):
        pulled(moved)


# Faults specific to one API


@pytest.mark.fault("source")
@pytest.mark.parametrize("rows_per_update,row", [(3, 0), (25, 1)])
def test_socrata_row_updated_between_pages_lands_once_in_its_newest_version(
    server: FakeServer, rows_per_update: int, row: int
) -> None:
    client = socrata_client(server, rows_per_update=rows_per_update)
    server.faults.add("update", on="page", after=1, row=row, changes={"ucr_category": "CHANGED"})
    assert_pulls_served(client)
    assert sum(r.get("ucr_category") == "CHANGED" for r in client.served()) == 1


@pytest.mark.fault("source")
def test_arcgis_row_updated_between_pages_lands_once_and_next_pull_has_it(server: FakeServer) -> None:
    client = arcgis_client(server)
    source = client.make()
    server.faults.add("update", on="page", after=1, row=0, changes={"UCR_Category": "CHANGED"})
    first = pa.concat_tables(source.pull(None).tables)
    assert by_key(first.to_pylist(), "ObjectId").keys() == by_key(client.served(), "ObjectId").keys()
    later = pulled(source, source.watermark_of(first))
    assert [row["UCR_Category"] for row in later if row["ObjectId"] == 1] == ["CHANGED"]


@pytest.mark.fault("source")
def test_socrata_drift_names_every_missing_field(server: FakeServer) -> None:
    client = socrata_client(server)
    server.faults.add("rename", field="ucr_category", to="ucr_cat")
    server.faults.add("rename", field="offense_date", to="offense_datetime")
    with pytest.raises(SchemaDriftError, match="no field offense_date .offense_ts.; did it become offense_datetime.*"
                                               "no field ucr_category .category.; did it become ucr_cat"):
        pulled(client.make())
    assert not server.requests_of("page")


@pytest.mark.fault("source")
def test_socrata_no_such_column_mid_pull_is_schema_drift(server: FakeServer) -> None:
    client = socrata_client(server)
    body = {"message": "Query coordinator error: query.soql.no-such-column; No such column: offense_date",
            "errorCode": "query.soql.no-such-column", "data": {"column": "offense_date"}}
    server.faults.add("status", on="page", after=1, status=400, body=body)
    with pytest.raises(SchemaDriftError, match="no field offense_date"):
        pulled(client.make())


@pytest.mark.fault("source")
def test_socrata_other_400_is_a_source_error_with_the_server_message(server: FakeServer) -> None:
    client = socrata_client(server)
    body = {"message": "Type mismatch for >=, is floating_timestamp", "errorCode": "query.soql.type-mismatch"}
    server.faults.add("status", on="page", status=400, body=body)
    with pytest.raises(SourceError, match="HTTP 400 query.soql.type-mismatch.*Type mismatch") as rejected:
        pulled(client.make())
    assert not isinstance(rejected.value, SchemaDriftError)


@pytest.mark.fault("source")
def test_arcgis_error_inside_http_200_is_a_source_error(server: FakeServer) -> None:
    client = arcgis_client(server)
    server.faults.add("error", on="page", code=400, message="Unable to complete operation.",
                      details=["Unable to perform query. Please check your parameters."], times=None)
    with pytest.raises(SourceError, match="error 400: Unable to complete operation.; Unable to perform"):
        pulled(client.make())


@pytest.mark.fault("source")
def test_arcgis_invalid_field_inside_http_200_is_schema_drift(server: FakeServer) -> None:
    client = arcgis_client(server)
    server.faults.add("error", on="page", code=400, message="Unable to complete operation.",
                      details=["'Invalid field: Offense_Datetime' parameter is invalid"])
    with pytest.raises(SchemaDriftError, match="no field Offense_Datetime"):
        pulled(client.make())


@pytest.mark.fault("source")
def test_arcgis_server_error_inside_http_200_is_retried(server: FakeServer) -> None:
    client = arcgis_client(server)
    server.faults.add("error", on="page", after=1, code=500, message="Error performing query operation")
    assert_pulls_served(client)


@pytest.mark.fault("source")
def test_arcgis_renamed_field_suggests_the_new_name(server: FakeServer) -> None:
    client = arcgis_client(server)
    server.faults.add("rename", field="Offense_Datetime", to="OffenseDateTime")
    with pytest.raises(SchemaDriftError, match="no field Offense_Datetime .offense_ts.; did it become OffenseDateTime"):
        pulled(client.make())


@pytest.mark.fault("source")
def test_arcgis_missing_layer_is_retired(server: FakeServer) -> None:
    source = arcgis_client(server).make()
    gone = dataclasses.replace(source.preset, url=source.preset.url.replace("MPD_Public", "Old_MPD_Public"))
    with pytest.raises(SourceError, match="the dataset is retired or its id is wrong"):
        pulled(ArcGISSource(gone, **FAST))


@pytest.mark.fault("source")
def test_page_of_the_wrong_shape_is_fetched_again(client: Client, server: FakeServer) -> None:
    server.faults.add("status", on="page", after=1, status=200, body={"rows": "not a page"})
    assert_pulls_served(client)
