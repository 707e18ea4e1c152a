"""The live presets through the pipeline, against the compatible test server on 127.0.0.1.

The same rows served as the demo, as a Socrata dataset (memphis-2024 field names, all strings,
floating local times) and as an ArcGIS layer (memphis-arcgis) must give the same canonical table.
Source failures end with their own exit code, one readable message and an unchanged warehouse.
"""
from __future__ import annotations

import dataclasses
import json
import socket
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fake_sources import FakeServer
from fake_sources.rows import arcgis_fields, socrata_columns

from memphis_incidents.config import RunParameters, load_preset
from memphis_incidents.errors import ExitCode
from memphis_incidents.ingest import run_ingest
from memphis_incidents.load import run_load
from memphis_incidents.profiles import backends_for as backends
from memphis_incidents.runner import main
from memphis_incidents.sources.demo import demo_snapshot

REPO = Path(__file__).resolve().parents[1]
MEMPHIS = ZoneInfo("America/Chicago")
ROWS = 1500
FAST = ["-p", "http_retries", "1", "-p", "http_backoff", "0"]


def unambiguous(table: pa.Table) -> pa.Table:
    """Demo rows a real layer could hold: one row per ObjectId, and no times in the repeated
    fall-back hour (a floating local timestamp cannot say which of the two it was)."""
    rows, seen = [], set()
    for row in table.to_pylist():
        times = [row[f] for f in ("Offense_Datetime", "Reported_Datetime") if row[f] is not None]
        if row["ObjectId"] in seen or any(_repeated_hour(ms) for ms in times):
            continue
        seen.add(row["ObjectId"])
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=table.schema)


def _repeated_hour(ms: int) -> bool:
    if not -2e12 < ms < 4e12:
        return False
    local = datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(MEMPHIS)
    return local.month == 11 and local.hour == 1 and local.day <= 7 and local.weekday() == 6


def floating(ms: int | None) -> str | None:
    """Epoch ms as a SODA floating timestamp in Memphis local time."""
    if ms is None or not -2e12 < ms < 4e12:
        return None if ms is None else str(ms)
    local = datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(MEMPHIS)
    return local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def as_socrata(rows: pa.Table) -> list[dict]:
    """Demo rows as puh4-eea4 would serve them: strings only, nulls omitted."""
    arcgis, socrata = load_preset("memphis-arcgis").fields, load_preset("memphis-2024").fields
    served = []
    for row in rows.to_pylist():
        out = {":id": str(row["ObjectId"]),
               ":updated_at": datetime.fromtimestamp(row["EditDate"] / 1000, timezone.utc)
               .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
        for canonical, field in socrata.items():
            value = row.get(arcgis.get(canonical, ""))
            if canonical in ("offense_ts", "reported_ts"):
                value = floating(value)
            if value is not None and not field.startswith(":"):
                out[field] = repr(value) if isinstance(value, float) else str(value)
        served.append(out)
    return served


def canonical(data_dir: Path, source: str) -> list[dict]:
    table = backends(RunParameters(data_dir=str(data_dir), source=source)).warehouse.read_incidents()
    return table.drop_columns(["batch_id", "row_hash"]).sort_by("row_id").to_pylist()


def load_through(data_dir: Path, source: str, base_url: str = "", **params) -> dict:
    run = RunParameters(data_dir=str(data_dir), source=source, base_url=base_url, run_id="r1",
                        http_retries=1, http_backoff=0, **params)
    stores = backends(run)
    return run_ingest(run, stores) | {"load": run_load(run, stores)}


@pytest.fixture(scope="module")
def demo_rows() -> pa.Table:
    return unambiguous(demo_snapshot(ROWS, 42, 0))


@pytest.fixture
def server():
    with FakeServer() as running:
        yield running


def test_every_preset_gives_the_demo_warehouse_for_the_same_rows(tmp_path, server, demo_rows):
    load_through(tmp_path / "demo", "demo", demo_rows=ROWS)
    served_ids = set(map(str, demo_rows.column("ObjectId").to_pylist()))
    expected = [r for r in canonical(tmp_path / "demo", "demo") if r["row_id"] in served_ids]

    socrata_url = server.add_socrata("puh4-eea4", as_socrata(demo_rows), socrata_columns(load_preset("memphis-2024")))
    arcgis_url = server.add_arcgis(demo_rows.to_pylist(), arcgis_fields(load_preset("memphis-arcgis")))
    for source, url in (("memphis-2024", socrata_url), ("memphis-arcgis", arcgis_url)):
        batch = load_through(tmp_path / source, source, url)
        assert batch["server_count"] == batch["rows"] == demo_rows.num_rows
        got = canonical(tmp_path / source, source)
        assert len(got) == len(expected), source
        assert got == expected, source


def test_incremental_pull_and_full_refresh_detect_changes_and_deletions(tmp_path, server, demo_rows):
    url = server.add_arcgis(demo_rows.to_pylist(), arcgis_fields(load_preset("memphis-arcgis")))
    first = load_through(tmp_path, "memphis-arcgis", url)
    layer = next(iter(server.arcgis.values()))
    layer.update(0, {"UCR_Category": "ROBBERY"})
    del layer.rows[5]
    run = RunParameters(data_dir=str(tmp_path), source="memphis-arcgis", base_url=url, run_id="r2",
                        http_retries=1, http_backoff=0)
    stores = backends(run)
    incremental = run_ingest(run, stores)
    rows = run_load(run, stores)["rows"]
    assert incremental["mode"] == "incremental" and incremental["rows"] >= 1
    assert rows["updated"] == 1 and rows["deleted_at_source"] == 0
    full = dataclasses.replace(run, run_id="r3", full_refresh=True)
    run_ingest(full, stores)
    rows = run_load(full, stores)["rows"]
    assert rows["deleted_at_source"] == 1 and rows["inserted"] == rows["updated"] == 0
    assert stores.warehouse.read_incidents().num_rows == first["load"]["rows"]["loaded"] - 1


def run_cli(tmp_path: Path, *args: str) -> int:
    return main(["-p", "data_dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports"),
                 "--until", "load", *FAST, *args], REPO)


@pytest.mark.slow
def test_the_runner_pulls_a_live_preset_through_the_notebooks(tmp_path, server, demo_rows, capsys):
    url = server.add_socrata("puh4-eea4", as_socrata(demo_rows), socrata_columns(load_preset("memphis-2024")))
    assert run_cli(tmp_path, "--source", "memphis-2024", "-p", "base_url", url, "--run-id", "live") == 0
    doc = json.loads((tmp_path / "reports" / "live" / "run.json").read_text())
    assert doc["rows"]["received"] == demo_rows.num_rows and doc["synthetic"] is False
    assert doc["batch"]["server_count"] == demo_rows.num_rows


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/resource/puh4-eea4.json"


@pytest.mark.slow
@pytest.mark.parametrize("fault, code, words", [
    ("404", ExitCode.SOURCE_ERROR, "memphis-2024"),
    ("unreachable", ExitCode.SOURCE_UNREACHABLE, "127.0.0.1"),
    ("drift", ExitCode.SOURCE_ERROR, "ucr_category"),
])
@pytest.mark.fault("source")
def test_source_failures_exit_with_their_code_and_leave_the_warehouse_alone(
        tmp_path, server, demo_rows, capsys, fault, code, words):
    url = server.add_socrata("puh4-eea4", as_socrata(demo_rows[:50]), socrata_columns(load_preset("memphis-2024")))
    if fault == "404":
        url = url.replace("puh4-eea4", "ybsi-jur4")
    elif fault == "unreachable":
        url = closed_port()
    else:
        server.socrata["puh4-eea4"].rename("ucr_category", "ucr_category_name")
    assert run_cli(tmp_path, "--source", "memphis-2024", "-p", "base_url", url, "--run-id", "x") == code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    stores = backends(RunParameters(data_dir=str(tmp_path / "data"), source="memphis-2024"))
    assert stores.lake.batches() == [] and stores.warehouse.incidents_path() is None


@pytest.mark.fault("source")
def test_a_pull_that_fails_midway_loses_nothing_and_the_rerun_lands_every_row_once(tmp_path, server, demo_rows):
    from memphis_incidents.errors import SourceUnreachable

    url = server.add_arcgis(demo_rows.to_pylist(), arcgis_fields(load_preset("memphis-arcgis")))
    server.faults.add("status", on="page", after=1, times=None, status=503)  # page 2 onwards fails
    with pytest.raises(SourceUnreachable):
        load_through(tmp_path, "memphis-arcgis", url)
    stores = backends(RunParameters(data_dir=str(tmp_path), source="memphis-arcgis"))
    assert stores.lake.batches() == [] and stores.state.watermark is None
    server.faults = type(server.faults)()  # the source recovers
    batch = load_through(tmp_path, "memphis-arcgis", url)
    table = stores.warehouse.read_incidents()
    assert batch["rows"] == demo_rows.num_rows
    assert table.num_rows == batch["load"]["rows"]["loaded"]
    assert len(set(table.column("row_id").to_pylist())) == table.num_rows


def test_a_user_preset_from_configuration_alone(tmp_path, server, demo_rows, monkeypatch):
    url = server.add_arcgis(demo_rows.to_pylist(), arcgis_fields(load_preset("memphis-arcgis")),
                            name="Other_City_Incidents")
    presets = tmp_path / "presets.toml"
    presets.write_text(f'''
[other-city]
kind = "arcgis"
title = "Another city's incident layer"
url = "{url}"
timestamps = "epoch_ms_utc"
updated_field = "EditDate"
omissions = ""
fields = "memphis-arcgis"
''')
    monkeypatch.setenv("MEMPHIS_INCIDENTS_PRESETS", str(presets))
    batch = load_through(tmp_path, "other-city")
    assert batch["rows"] == demo_rows.num_rows and batch["source"] == "other-city"
