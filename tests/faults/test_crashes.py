"""kill -9 of the night's run during each step, then a normal re-run: the content equals that of a
clean night, the watermark is right, and a reader never saw a partial file, during or after.

Each crash starts from a copy of the data after a clean first night; the run is killed at a point
found by watching it (a page request held by the source, a staging folder, the aggregate notebook's
Spark cell with the JVM up, the analysis notebook's first executed cell).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import LOADED, UNTIL_LOAD, Nights, PartialFileReader, Pipeline, SourceServer, \
    assert_same_content, wait_until

pytestmark = [pytest.mark.fault("crash"), pytest.mark.slow]


def executed_cells(notebook: Path) -> int:
    """Code cells a notebook shows as executed (0 while it cannot be read)."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(1 for c in cells if c["cell_type"] == "code" and c.get("execution_count"))


def test_killed_mid_pull(next_night: Pipeline, nights: Nights, source_server: SourceServer, ledger) -> None:
    source_server.server.faults.add("hang", on="page", after=1, seconds=120)
    before = next_night.lake_batches()
    with PartialFileReader(next_night.root) as reader:
        run = next_night.start("killed-mid-pull", *UNTIL_LOAD)
        wait_until(lambda: len(source_server.server.requests_of("page")) >= 2, "the second page request",
                   run=run)
        run.kill()
        assert next_night.lake_batches() == before  # nothing landed
        assert_same_content(next_night.snapshot(), nights.first, ledger, LOADED)
        next_night.run("rerun", *UNTIL_LOAD)
    reader.assert_no_partial_file()
    assert_same_content(next_night.snapshot(), nights.next, ledger, LOADED)


def test_killed_mid_load_write(next_night: Pipeline, nights: Nights, ledger) -> None:
    incidents = next_night.store / "warehouse" / "incidents"
    staging = incidents / ".v000002.staging"
    with PartialFileReader(next_night.root) as reader:
        run = next_night.start("killed-mid-load", *UNTIL_LOAD)
        wait_until(staging.exists, "the new table version's staging folder", run=run)
        run.kill()
        assert staging.exists() and (incidents / "current").resolve().name == "v000001"  # killed mid-write
        assert_same_content(next_night.snapshot(), nights.first, ledger, LOADED)
        next_night.run("rerun", *UNTIL_LOAD)
    reader.assert_no_partial_file()
    assert_same_content(next_night.snapshot(), nights.next, ledger, LOADED)


def test_killed_mid_spark_then_mid_analysis(next_night: Pipeline, nights: Nights, ledger) -> None:
    ledger.injected(2)
    with PartialFileReader(next_night.root) as reader:
        run = next_night.start("killed-mid-spark")
        aggregate = next_night.reports / run.run_id / "03_spark_aggregate.ipynb"
        # the JVM starts with the run (the aggregate step's kernel starts it during ingest and
        # load), so mid-Spark is: the step's setup cell done (papermill saves a cell's count as it
        # ends), its next cell, ctx.run("aggregate"), running
        wait_until(lambda: executed_cells(aggregate) >= 3 and run.runs("java"), "the aggregate step's Spark cell",
                   run=run)
        run.kill()
        after_spark = next_night.snapshot()
        assert after_spark.marts == nights.first.marts  # the previous marts, whole
        assert_same_content(after_spark, nights.next, ledger, LOADED)  # the load had committed

        run = next_night.start("killed-mid-analysis")
        notebook = next_night.reports / run.run_id / "04_analysis.ipynb"
        wait_until(lambda: executed_cells(notebook) >= 2, "the analysis notebook's second cell", run=run)
        run.kill()
        assert not (notebook.parent / "report.html").exists()
        assert next_night.snapshot().marts == nights.next.marts

        next_night.run("rerun")
    reader.assert_no_partial_file()
    assert (next_night.reports / "rerun" / "report.html").exists()
    assert_same_content(next_night.snapshot(), nights.next, ledger)
