"""The GCS emulator for tests: gcp-storage-emulator in this process, on 127.0.0.1 and a free port.

Import the fixtures into a test module: `from tests.gcs_emulator import gcs_server, gcs_bucket`.
Every test gets an empty bucket and a real google-cloud-storage client pointed at the emulator
(STORAGE_EMULATOR_HOST, anonymous credentials).
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterator

import pytest
from gcp_storage_emulator.server import Server, create_server
from google.cloud import storage

BUCKET = "memphis-test-bucket"
PROJECT = "memphis-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gcs_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's emulator keeps objects (`.cloudstorage/<bucket>/<name>`): on disk, so
    that the BigQuery emulator's load jobs read the same gs:// objects (tests/bq_emulator.py)."""
    folder = tmp_path_factory.getbasetemp() / "gcs-emulator"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory) -> Iterator[tuple[Server, str]]:
    """The emulator and its endpoint, for the whole test session."""
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=False, default_bucket=BUCKET,
                           data_dir=str(gcs_data_dir(tmp_path_factory)))
    server.start()
    yield server, f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def gcs_bucket(gcs_server, monkeypatch) -> storage.Bucket:
    """An empty bucket in the emulator, through a client that talks to nothing else."""
    server, endpoint = gcs_server
    server.wipe(keep_buckets=True)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
    return storage.Client(project=PROJECT).bucket(BUCKET)
