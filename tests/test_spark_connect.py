"""The Spark aggregation through Spark Connect, as on a cluster: a real Spark Connect server on
127.0.0.1, started from the jar pyspark ships (no downloads), must give the marts local mode gives.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyspark
import pytest
from google.cloud import bigquery

from memphis_incidents.config import RunParameters
from memphis_incidents.errors import ConfigError
from memphis_incidents.ingest import run_ingest
from memphis_incidents.load import run_load
from memphis_incidents.profiles import backends_for
from memphis_incidents.sources.demo_world import publication_time
from memphis_incidents.aggregate import run_aggregate
from memphis_incidents.marts import MARTS
from memphis_incidents.spark_session import spark_session
from memphis_incidents.warehouse.bigquery import BigQueryWarehouse
from tests.gcs_emulator import free_port
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow
CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"
STARTUP_SECONDS = 120


class ConnectServer(ServerProcess):
    """`spark-submit --class SparkConnectServer` in local mode, listening on 127.0.0.1 only."""

    name = "Spark Connect server"
    startup_seconds = STARTUP_SECONDS

    def __init__(self, log: Path):
        self.port = free_port()
        spark_home = Path(pyspark.__file__).parent
        command = [str(spark_home / "bin" / "spark-submit"), "--class", CONNECT_SERVER, "--master", "local[2]",
                   "--conf", f"spark.connect.grpc.binding.port={self.port}",
                   "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
                   "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC",
                   "--conf", "spark.sql.shuffle.partitions=4", "--conf", "spark.driver.memory=1g"]
        env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1",
               "PYSPARK_PYTHON": sys.executable}
        self.start(command, env, log)

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def wait_ready(self) -> str:
        """The sc:// URL once the server accepts connections (RuntimeError with its log if it dies)."""
        self.wait_until(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=1).close() is None)
        return self.url


@pytest.fixture(scope="module", autouse=True)
def no_connect_mode_afterwards() -> Iterator[None]:
    """pyspark marks the process Connect-only (SPARK_CONNECT_MODE_ENABLED) once it has made a
    Connect session; processes later tests start would inherit the mark."""
    yield
    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


@pytest.fixture(scope="module", autouse=True)
def connect_server(tmp_path_factory) -> Iterator[ConnectServer]:
    """Started before the first test, so it boots while the local-mode work runs."""
    server = ConnectServer(tmp_path_factory.mktemp("spark-connect") / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    """A small embedded warehouse: one demo batch ingested and loaded."""
    params = RunParameters(source="demo", demo_rows=2000, run_id="r0",
                           data_dir=str(tmp_path_factory.mktemp("data")))
    backends = backends_for(params)
    run_ingest(params, backends, now=publication_time(0))
    run_load(params, backends)
    return backends


def saved_marts(warehouse) -> dict[str, pd.DataFrame]:
    """Every mart as saved, rows sorted (ties in Spark's ordering may come back either way)."""
    marts = {name: warehouse.read_mart(name) for name in MARTS}
    return {name: frame.sort_values(list(frame.columns)).reset_index(drop=True) for name, frame in marts.items()}


class IncidentsTableExists:
    """A BigQuery client that knows one thing: the incidents table exists."""

    def get_table(self, table_id: str) -> bigquery.Table:
        return bigquery.Table(table_id)


def test_a_spark_without_the_bigquery_connector_is_told_how_to_get_it(backends):
    """Runs before any Spark Connect session: pyspark then builds Connect sessions only."""
    warehouse = BigQueryWarehouse(IncidentsTableExists(), "memphis-test", "memphis_incidents",
                                  backends.storage, "demo")
    spark = spark_session("local[1]", extra_conf=warehouse.spark_conf)
    try:
        with pytest.raises(ConfigError, match="spark_bigquery_package"):
            warehouse.spark_incidents(spark)
    finally:
        spark.stop()


def test_the_aggregation_through_spark_connect_gives_the_local_mode_marts(connect_server, backends):
    local = run_aggregate("local[2]", "", backends.warehouse)
    expected = saved_marts(backends.warehouse)
    remote = run_aggregate("", connect_server.wait_ready(), backends.warehouse, full_refresh=True)  # every month
    assert remote["marts"] == local["marts"] and remote["marts"]["monthly_category"] > 0
    assert remote["version"] != local["version"]  # a new marts version was published
    actual = saved_marts(backends.warehouse)
    for name in MARTS:
        pd.testing.assert_frame_equal(actual[name], expected[name], obj=name)
    assert int(actual["summary"]["offense_rows"].iloc[0]) == len(backends.warehouse.read_incidents())
