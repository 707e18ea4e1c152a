"""The BigQuery emulator for tests and `make demo-gcp`: `bqemulator` on 127.0.0.1 and a free port.

The emulator runs as a server process from its own venv (`.venv-bqemu`, made by `make`): it pins
sqlglot and protobuf versions of its own and adds google-cloud-bigquery-storage, none of which may
reach the project's venv. Tests talk to it over HTTP with the project's google-cloud-bigquery.
It reads `gs://bucket/key` from `<gcs_root>/bucket/key`: point it at the folder a file-backed
gcp-storage-emulator keeps its objects in, and load jobs read what the lake wrote.

Every workaround for a gap of the emulator lives in this file, naming the gap it covers; one is
left: `LAUNCHER` (its start-up downloads a DuckDB extension). The project's SQL needs none: it
names tables in full (scripts with a default dataset fail here), replaces its temp table (temp
tables outlive their script here), binds parameters only in single statements (not bound inside
scripts here) and reads version tokens from rows (`lastModifiedTime` never moves here).
"""
from __future__ import annotations

import copy
import os
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from tests.gcs_emulator import free_port, gcs_data_dir
from tests.server_process import ServerProcess

REPO = Path(__file__).resolve().parents[1]
EMULATOR_PYTHON = REPO / ".venv-bqemu" / "bin" / "python"
PROJECT = "memphis-test"
DATASET = "memphis_incidents"
STARTUP_SECONDS = 60
# Gap: at start-up the emulator runs `INSTALL spatial`, which downloads DuckDB's spatial extension
# (for GEOGRAPHY, which this project never uses); offline that fails and the server exits. So the
# server is started with that step replaced by a no-op.
LAUNCHER = """
import sys
from bqemulator.storage.engine import DuckDBEngine
DuckDBEngine._load_spatial = lambda self: None
from bqemulator.cli import main
sys.exit(main())
"""


class BigQueryEmulator(ServerProcess):
    """`bqemulator start` from .venv-bqemu, in memory, REST on 127.0.0.1:<free port>."""

    name = "BigQuery emulator"
    startup_seconds = STARTUP_SECONDS

    def __init__(self, gcs_root: Path, log: Path):
        if not EMULATOR_PYTHON.exists():
            raise RuntimeError(f"{EMULATOR_PYTHON} is missing: `make test` (or `make bqemu`) creates it")
        self.port = free_port()
        env = {**os.environ, "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false", "BQEMU_GCS_LOCAL_ROOT": str(gcs_root)}
        self.start([str(EMULATOR_PYTHON), "-c", LAUNCHER, "start", "--rest-host", "127.0.0.1",
                    "--rest-port", str(self.port), "--grpc-host", "127.0.0.1", "--grpc-port", "0",
                    "--project", PROJECT, "--log-level", "warning"], env, log)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> float:
        """Seconds until `GET /healthz` answers."""
        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=1):
                return True
        return self.wait_until(healthy)

    def client(self, project: str = PROJECT) -> bigquery.Client:
        """A real google-cloud-bigquery client that talks to this emulator only."""
        return bigquery.Client(project=project, credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=self.endpoint))


class EmulatorClient:
    """A bigquery.Client on the emulator that records calls as the DuckDB stand-in does, so a test
    asserts the same things against both; everything else passes through to the real client."""

    def __init__(self, client: bigquery.Client, dataset: str = DATASET):
        self.client = client
        self.dataset = f"{client.project}.{dataset}"
        self.calls: list[tuple] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @property
    def tables(self) -> set[str]:
        return {f"{self.dataset}.{table.table_id}" for table in self.client.list_tables(self.dataset)}

    def create_table(self, table: bigquery.Table, exists_ok: bool = False) -> bigquery.Table:
        self.calls.append(("create_table", copy.deepcopy(table)))
        return self.client.create_table(table, exists_ok=exists_ok)

    def delete_table(self, table_id: str, not_found_ok: bool = False) -> None:
        self.calls.append(("delete_table", table_id))
        self.client.delete_table(table_id, not_found_ok=not_found_ok)

    def load_table_from_uri(self, uri: str, destination: str, job_config: bigquery.LoadJobConfig) -> Any:
        self.calls.append(("load_table_from_uri", uri, destination, job_config.to_api_repr()))
        return self.client.load_table_from_uri(uri, destination, job_config=job_config)

    def load_table_from_file(self, file_obj, destination: str, job_config: bigquery.LoadJobConfig) -> Any:
        self.calls.append(("load_table_from_file", destination, job_config.to_api_repr()))
        return self.client.load_table_from_file(file_obj, destination, job_config=job_config)

    def query(self, sql: str, job_config: bigquery.QueryJobConfig | None = None) -> Any:
        self.calls.append(("query", sql, job_config))
        return self.client.query(sql, job_config=job_config)

    def queries(self) -> list[str]:
        return [call[1] for call in self.calls if call[0] == "query"]


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory) -> Iterator[BigQueryEmulator]:
    """The emulator for the whole session; it reads gs:// from the GCS emulator's folder."""
    server = BigQueryEmulator(gcs_data_dir(tmp_path_factory) / ".cloudstorage",
                              tmp_path_factory.mktemp("bqemu") / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def bq_client(bq_emulator) -> EmulatorClient:
    """A recording client on an empty dataset of the emulator."""
    client = bq_emulator.client()
    client.delete_dataset(f"{PROJECT}.{DATASET}", delete_contents=True, not_found_ok=True)
    client.create_dataset(f"{PROJECT}.{DATASET}")
    return EmulatorClient(client)
