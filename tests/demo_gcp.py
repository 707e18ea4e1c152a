"""`make demo-gcp`: the GCP profile end to end on this machine, offline, with no cloud account.

Starts the GCS emulator (gcp-storage-emulator, objects on disk), the BigQuery emulator
(tests/bq_emulator.py) and a Spark Connect server, all on 127.0.0.1; makes the bucket and the
dataset (what Terraform makes on GCP); runs the four notebooks with `--profile gcp`, Spark through
Spark Connect; then runs the embedded profile on the same demo rows and checks that both
published the same marts and counted the same rows. Run reports stay in the emulated bucket
(`reports/<run_id>/`, listed with the runs index in the demo folder). Everything is stopped at the
end; the demo folder is made anew on every run.

    python -m tests.demo_gcp [--rows N] [--folder data/demo-gcp]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from unittest.mock import patch

import pandas as pd
from gcp_storage_emulator.server import create_server
from google.cloud import storage

from memphis_incidents.config import RunParameters
from memphis_incidents.profiles import backends_for
from memphis_incidents.marts import MARTS
from tests.bq_emulator import DATASET, PROJECT, BigQueryEmulator
from tests.gcs_emulator import BUCKET, free_port
from tests.test_spark_connect import ConnectServer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROWS = 20_000


@dataclass
class DemoResult:
    """What a demo run left: both runs' exit codes and reports, the bucket's report objects."""

    gcp_code: int
    embedded_code: int
    gcp_reports: Path
    embedded_reports: Path
    bucket_reports: list[str]
    mismatches: list[str]
    seconds: dict[str, float]


@contextmanager
def emulators(folder: Path) -> Iterator[tuple[dict[str, str], str]]:
    """GCS and BigQuery emulators and a Spark Connect server on 127.0.0.1, with the bucket and
    the dataset made; yields the environment that points the GCP profile at the emulators, and
    the Spark Connect URL."""
    with ExitStack() as stack:
        gcs_port = free_port()
        gcs = create_server("127.0.0.1", gcs_port, in_memory=False, default_bucket=BUCKET,
                            data_dir=str(folder / "gcs"))
        gcs.start()
        stack.callback(gcs.stop)
        bigquery_server = BigQueryEmulator(folder / "gcs" / ".cloudstorage", folder / "bigquery-emulator.log")
        stack.callback(bigquery_server.stop)
        spark = ConnectServer(folder / "spark-connect.log")
        stack.callback(spark.stop)
        bigquery_server.wait_ready()
        bigquery_server.client().create_dataset(f"{PROJECT}.{DATASET}")
        yield {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{gcs_port}",
               "BIGQUERY_EMULATOR_HOST": bigquery_server.endpoint,
               "MEMPHIS_GCP_PROJECT": PROJECT, "MEMPHIS_GCP_BUCKET": BUCKET, "MEMPHIS_GCP_DATASET": DATASET,
               "MEMPHIS_GCP_LOCATION": "US", "MEMPHIS_GCP_PREFIX": "lake"}, spark.wait_ready()


def run_pipeline(args: list[str], env: dict[str, str]) -> int:
    """run_pipeline.py in a process of its own, output to this terminal."""
    return subprocess.call([sys.executable, str(REPO / "run_pipeline.py"), *args], cwd=REPO, env=env)


def sorted_mart(frame: pd.DataFrame) -> pd.DataFrame:
    """A mart with its rows sorted (ties in Spark's ordering may come back either way)."""
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def mart_mismatches(gcp_warehouse, embedded_warehouse) -> list[str]:
    """The marts (by name) whose columns or values differ between the two profiles' warehouses.

    Integer widths are not compared: BigQuery has one integer type, INT64, where Spark wrote int32.
    """
    wrong = []
    for name in MARTS:
        try:
            pd.testing.assert_frame_equal(sorted_mart(gcp_warehouse.read_mart(name)),
                                          sorted_mart(embedded_warehouse.read_mart(name)), obj=name,
                                          check_dtype=False)
        except AssertionError as exc:
            wrong.append(f"{name}: {exc}")
    return wrong


def demo(folder: Path, rows: int) -> DemoResult:
    """Run the GCP profile against the emulators, then the embedded profile, and compare."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    common = ["--source", "demo", "-p", "demo_rows", str(rows)]
    seconds = {}
    with emulators(folder) as (emulated, spark_url):
        started = time.monotonic()
        gcp_code = run_pipeline([*common, "--profile", "gcp", "-p", "spark_remote", spark_url,
                                 "--reports-dir", str(folder / "reports-gcp")], {**os.environ, **emulated})
        seconds["gcp"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        embedded_code = run_pipeline([*common, "-p", "data_dir", str(folder / "embedded"),
                                      "--reports-dir", str(folder / "reports-embedded")], dict(os.environ))
        seconds["embedded"] = round(time.monotonic() - started, 1)
        with patch.dict(os.environ, emulated):
            gcp = backends_for(RunParameters(profile="gcp", source="demo"))
            embedded = backends_for(RunParameters(source="demo", data_dir=str(folder / "embedded")))
            ran = gcp_code == embedded_code == 0
            mismatches = mart_mismatches(gcp.warehouse, embedded.warehouse) if ran else []
            bucket = storage.Client(project=PROJECT).bucket(BUCKET)
            objects = sorted(blob.name for blob in bucket.client.list_blobs(bucket, prefix="reports/"))
    return DemoResult(gcp_code, embedded_code, folder / "reports-gcp", folder / "reports-embedded",
                      objects, mismatches, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"demo rows (default {DEFAULT_ROWS:,})")
    parser.add_argument("--folder", type=Path, default=REPO / "data" / "demo-gcp", help="demo folder, made anew")
    args = parser.parse_args(argv)
    result = demo(args.folder.resolve(), args.rows)
    print(f"\nGCP profile: exit {result.gcp_code} in {result.seconds.get('gcp')} s; "
          f"embedded profile: exit {result.embedded_code} in {result.seconds.get('embedded')} s")
    print(f"run reports in the emulated bucket gs://{BUCKET}/:", *result.bucket_reports, sep="\n  ")
    print(f"runs index: {result.gcp_reports / 'index.html'}")
    if result.gcp_code or result.embedded_code:
        return result.gcp_code or result.embedded_code
    if result.mismatches:
        print("the profiles' marts differ:", *result.mismatches, sep="\n  ", file=sys.stderr)
        return 1
    print(f"marts: the same in both profiles ({', '.join(MARTS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
