"""Secrets: every run of the suite has a sentinel Socrata app token and sentinel cloud credentials
in its environment. No file any run left (executed notebooks, run.json, logs, reports, lake and
warehouse files) contains one, including a run that sent the token and one the source refused.

This module runs last, so it reads what every earlier test of the suite wrote as well (every test's
temporary folder), besides the clean reference nights (all four steps) and two Socrata runs of its own.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_sources.rows import socrata_columns
from test_live_pipeline import as_socrata, unambiguous

from memphis_incidents.config import load_preset
from memphis_incidents.errors import ExitCode

from .conftest import KEY_FILE_SECRET, SENTINELS, UNTIL_LOAD, Nights, Pipeline, SourceServer, layer_rows

pytestmark = [pytest.mark.fault("secrets"), pytest.mark.slow]
SECRETS = [*SENTINELS.values(), KEY_FILE_SECRET]
STEP_NOTEBOOKS = {"01_ingest.ipynb", "02_warehouse_load.ipynb", "03_spark_aggregate.ipynb", "04_analysis.ipynb"}


def readable_text(path: Path) -> bytes:
    """A file's bytes, and for Parquet (compressed) also its decoded rows and metadata."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        data += repr(table.to_pylist()).encode() + repr(table.schema.metadata).encode()
    return data


def leaks(root: Path, allowed: Path) -> tuple[dict[str, list[str]], set[str]]:
    """Files under root (but not under `allowed`) holding a secret, with which; and the kinds read."""
    found, kinds = {}, set()
    for path in (p for p in root.rglob("*") if p.is_file() and allowed not in p.parents):
        kinds.add(path.name if path.suffix == ".ipynb" else path.suffix)
        text = readable_text(path)
        held = [secret for secret in SECRETS if secret.encode() in text]
        if held:
            found[str(path)] = held
    return found, kinds


def test_no_file_a_run_leaves_contains_a_secret(
        nights: Nights, source_server: SourceServer, runs_root: Path, runner_env: dict[str, str],
        credentials: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    source_server.serve(0)
    rows = unambiguous(pa.Table.from_pylist(list(layer_rows(0)[:300])))
    url = source_server.server.add_socrata("puh4-eea4", as_socrata(rows),
                                           socrata_columns(load_preset("memphis-2024")))
    socrata = Pipeline(runs_root / "socrata", url, runner_env, source="memphis-2024")
    socrata.run("token-sent", *UNTIL_LOAD)
    assert {r.app_token for r in source_server.server.requests_of("page")} == {SENTINELS["SOCRATA_APP_TOKEN"]}
    source_server.server.faults.add("status", status=403, times=None)
    refused = socrata.run("token-refused", *UNTIL_LOAD, expect=ExitCode.SOURCE_ERROR)
    assert "SOCRATA_APP_TOKEN" in refused.stderr()  # the variable is named; its value must not be

    found, kinds = leaks(tmp_path_factory.getbasetemp(), allowed=credentials)
    assert found == {}
    assert STEP_NOTEBOOKS | {".json", ".html", ".parquet", ".out", ".err"} <= kinds
