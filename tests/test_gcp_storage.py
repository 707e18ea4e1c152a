"""The GCP profile's storage side against the GCS emulator: lake, state, report archive, settings."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pytest

from memphis_incidents import gcp
from memphis_incidents.config import RunParameters
from memphis_incidents.errors import ConfigError
from memphis_incidents.gcp import GCPSettings, GCSStorage, gcp_backends, load_settings, settings_toml
from memphis_incidents.lake import Lake
from memphis_incidents.reports import archive_run
from memphis_incidents.state import State
from memphis_incidents.storage import read_json, write_json
from tests.gcs_emulator import BUCKET, gcs_bucket, gcs_server  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"project": "memphis-test", "location": "us-central1", "bucket": BUCKET,
            "dataset": "memphis_incidents", "prefix": "lake", "spark_bigquery_package": ""}


@pytest.fixture
def store(gcs_bucket) -> GCSStorage:
    return GCSStorage(gcs_bucket, "lake/demo")


# ---- storage -------------------------------------------------------------------------------------
def test_objects_round_trip_under_the_prefix(store, gcs_bucket):
    store.write_bytes("raw/batch_id=r1/_batch.json", b'{"a": 1}')
    store.write_bytes("rawx/other.json", b"{}")
    store.write_bytes("runs/r1/load.json", b"{}")
    assert store.read_bytes("raw/batch_id=r1/_batch.json") == b'{"a": 1}'
    assert store.list("raw") == ["raw/batch_id=r1/_batch.json"]  # a folder, not a name prefix
    assert store.list("") == ["raw/batch_id=r1/_batch.json", "rawx/other.json", "runs/r1/load.json"]
    assert store.exists("runs/r1/load.json") and not store.exists("runs/r2/load.json")
    assert gcs_bucket.get_blob("lake/demo/raw/batch_id=r1/_batch.json").content_type == "application/json"
    assert store.uri("raw/x.parquet") == f"gs://{BUCKET}/lake/demo/raw/x.parquet"


def test_delete_is_idempotent_and_missing_objects_read_as_file_not_found(store):
    store.write_bytes("state/state.json", b"{}")
    store.delete("state/state.json")
    store.delete("state/state.json")
    assert store.list("state") == []
    with pytest.raises(FileNotFoundError, match="gs://"):
        store.read_bytes("state/state.json")
    assert read_json(store, "state/state.json", {"watermark": None}) == {"watermark": None}


def test_the_lake_keeps_immutable_batches_in_the_bucket(store):
    lake = Lake(store)
    table = pa.table({"Crime_ID": ["a", "b"], "EditDate": [1, 2]})
    meta = lake.write_batch("r1", table, {"ingested_at": "2026-11-20T12:00:00Z", "mode": "full"})
    assert meta["data"] == f"gs://{BUCKET}/lake/demo/raw/batch_id=r1/part-00000.parquet"
    assert lake.read_batch("r1").equals(table)
    assert [m["batch_id"] for m in lake.batches()] == ["r1"]
    with pytest.raises(FileExistsError):
        lake.write_batch("r1", table, {"ingested_at": "2026-11-21T12:00:00Z", "mode": "full"})


def test_the_watermark_and_load_history_live_in_the_bucket(store):
    state = State(store)
    state.commit_load("r1", "2026-11-20T06:00:00Z", {"loaded": 3})
    state.commit_load("r2", "2026-11-19T06:00:00Z", {"loaded": 0})
    again = State(GCSStorage(store.bucket, "lake/demo"))  # a later run, a new client view
    assert again.watermark == "2026-11-20T06:00:00Z"
    assert again.loaded_batches == ["r1", "r2"]
    assert again.load_record("r1") == {"loaded": 3}


def test_a_run_folder_is_archived_to_reports_run_id(gcs_bucket, tmp_path):
    folder = tmp_path / "20261128T031500Z-3f9a"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"status": "succeeded"}))
    (folder / "report.html").write_text("<html></html>")
    (folder / ".run.json.tmp").write_text("partial")
    archive_run(folder, GCSStorage(gcs_bucket, "reports"))
    names = sorted(blob.name for blob in gcs_bucket.client.list_blobs(gcs_bucket))
    assert names == ["reports/20261128T031500Z-3f9a/report.html", "reports/20261128T031500Z-3f9a/run.json"]
    assert gcs_bucket.get_blob(names[0]).content_type == "text/html"


def test_backends_put_lake_and_state_under_prefix_and_source_and_reports_apart(gcs_bucket):
    settings = GCPSettings(**SETTINGS)
    backends = gcp_backends(RunParameters(profile="gcp", source="memphis-arcgis"), settings,
                          (gcs_bucket.client, object()))
    assert backends.data_root == f"gs://{BUCKET}/lake/memphis-arcgis"
    write_json(backends.storage, "runs/r1/load.json", {"rows": 1})
    assert backends.reports.uri("r1/run.json") == f"gs://{BUCKET}/reports/r1/run.json"
    assert backends.warehouse.table_id("incidents") == "memphis-test.memphis_incidents.incidents"
    assert backends.lake.storage is backends.state.storage is backends.storage


# ---- settings ------------------------------------------------------------------------------------
def write_config(tmp_path: Path, values: dict) -> dict[str, str]:
    path = tmp_path / "gcp.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return {gcp.CONFIG_ENV: str(path)}


def test_settings_come_from_the_file_and_the_environment_overrides_them(tmp_path):
    environ = write_config(tmp_path, SETTINGS) | {"MEMPHIS_GCP_DATASET": "other_dataset"}
    assert load_settings(environ) == GCPSettings(**{**SETTINGS, "dataset": "other_dataset"})


def test_environment_alone_is_enough_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environ = {f"MEMPHIS_GCP_{k.upper()}": v for k, v in SETTINGS.items() if k != "prefix"}
    assert load_settings(environ).prefix == "lake"


@pytest.mark.parametrize("values, message", [
    ({k: v for k, v in SETTINGS.items() if k != "bucket"}, "bucket is missing.*MEMPHIS_GCP_BUCKET"),
    ({**SETTINGS, "bucket": "gs://bucket"}, "bucket='gs://bucket' is not a bucket name"),
    ({**SETTINGS, "project": "REPLACE-ME-project-id"}, "placeholder.*terraform output"),
    ({**SETTINGS, "key_file": "sa.json"}, "unknown GCP setting.*key_file"),
    ({**SETTINGS, "prefix": "/lake/"}, "prefix='/lake/' is not a folder path"),
])
def test_bad_settings_say_which_key_to_set(tmp_path, values, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(write_config(tmp_path, values))


def test_a_named_config_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({gcp.CONFIG_ENV: str(tmp_path / "missing.toml")})


def test_the_shipped_config_files_hold_every_key_and_placeholders_only():
    for name in ("gcp.toml", "gcp.example.toml"):
        path = REPO / "config" / name
        values = gcp.tomllib.loads(path.read_text())
        assert sorted(values) == sorted(SETTINGS), name
        with pytest.raises(ConfigError, match="placeholder"):
            load_settings({gcp.CONFIG_ENV: str(path)})


def test_terraform_outputs_become_the_config_file(tmp_path, monkeypatch, capsys):
    outputs = {"pipeline_config": {"sensitive": False, "type": ["object", {}], "value": SETTINGS}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(outputs)))
    assert gcp.main() == 0
    path = tmp_path / "gcp.toml"
    path.write_text(capsys.readouterr().out)
    assert load_settings({gcp.CONFIG_ENV: str(path)}) == GCPSettings(**SETTINGS)
    assert settings_toml(SETTINGS) == path.read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({**SETTINGS, "bucket": ""})))
    assert gcp.main() == 2
    assert "bucket" in capsys.readouterr().err


def test_without_application_default_credentials_the_error_says_how_to_log_in(tmp_path, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))
    with pytest.raises(ConfigError, match="gcloud auth application-default login"):
        gcp_backends(RunParameters(profile="gcp"), GCPSettings(**SETTINGS))
