"""Ingest and load on the demo source, without notebooks: accounting, idempotency, increments."""
from __future__ import annotations

import dataclasses

import pyarrow.compute as pc
import pytest

from memphis_incidents.config import RunParameters, load_preset
from memphis_incidents.ingest import run_ingest
from memphis_incidents.load import load_batch, run_load
from memphis_incidents.profiles import backends_for
from memphis_incidents.sources import Pull
from memphis_incidents.sources.demo import DemoSource, demo_snapshot

ROWS = 4000


def params_for(tmp_path, **changes) -> RunParameters:
    return RunParameters(data_dir=str(tmp_path / "data"), demo_rows=ROWS, **changes)


def run_once(params: RunParameters, run_id: str) -> tuple[dict, dict]:
    params = dataclasses.replace(params, run_id=run_id)
    backends = backends_for(params)
    return run_ingest(params, backends), run_load(params, backends)


def table_content(backends) -> list[dict]:
    """The warehouse rows without the batch that wrote them, in key order."""
    table = backends.warehouse.read_incidents().drop_columns(["batch_id"])
    return table.sort_by("row_id").to_pylist()


def test_every_row_received_is_loaded_quarantined_or_a_counted_duplicate(tmp_path):
    params = params_for(tmp_path)
    batch, load = run_once(params, "r1")
    rows = load["rows"]
    assert batch["rows"] == rows["received"] == ROWS
    assert rows["received"] == rows["loaded"] + rows["quarantined"] + rows["duplicates"]
    assert rows["quarantined"] > 0 and rows["duplicates"] > 0  # the demo is dirty on purpose
    backends = backends_for(params)
    table = backends.warehouse.read_incidents()
    assert table.num_rows == rows["loaded"] == rows["inserted"]
    assert len(set(table.column("row_id").to_pylist())) == table.num_rows
    quarantined = sum(r["rows"] for r in backends.warehouse.quarantine_counts().to_pylist())
    assert quarantined == rows["quarantined"]


def test_the_watermark_moves_only_when_the_load_commits(tmp_path):
    params = dataclasses.replace(params_for(tmp_path), run_id="r1")
    backends = backends_for(params)
    batch = run_ingest(params, backends)
    assert backends.state.watermark is None
    run_load(params, backends)
    assert backends.state.watermark == batch["watermark"] is not None


def test_loading_the_same_batch_again_changes_nothing(tmp_path):
    params = params_for(tmp_path)
    batch, _ = run_once(params, "r1")
    backends = backends_for(params)
    digest, version = backends.warehouse.content_digest(), backends.warehouse.incidents_path()
    again = load_batch(batch, load_preset("demo"), backends, params.max_reject_share)
    assert (again["inserted"], again["updated"], again["version"]) == (0, 0, None)
    assert backends.warehouse.content_digest() == digest
    assert backends.warehouse.incidents_path() == version


def test_a_second_run_with_nothing_new_changes_nothing(tmp_path):
    params = params_for(tmp_path)
    run_once(params, "r1")
    backends = backends_for(params)
    digest = backends.warehouse.content_digest()
    batch, load = run_once(params, "r2")
    assert batch["mode"] == "incremental"
    assert batch["rows"] < 10  # only rows at the watermark itself are asked for again
    assert load["rows"]["inserted"] + load["rows"]["updated"] == 0
    assert backends.warehouse.content_digest() == digest


def test_next_day_adds_new_rows_and_replaces_updated_ones(tmp_path):
    run_once(params_for(tmp_path), "day0")
    batch, load = run_once(params_for(tmp_path, demo_day=1), "day1")
    day0, day1 = demo_snapshot(ROWS, 42, 0), demo_snapshot(ROWS, 42, 1)
    changed = day1.filter(pc.greater_equal(day1.column("EditDate"), pc.max(day0.column("EditDate"))))
    assert batch["mode"] == "incremental"
    assert batch["rows"] == changed.num_rows < ROWS / 10
    assert load["rows"]["inserted"] > 0 and load["rows"]["updated"] > 0
    incremental = table_content(backends_for(params_for(tmp_path, demo_day=1)))
    fresh_dir = tmp_path / "fresh"
    run_once(params_for(fresh_dir, demo_day=1), "full")
    assert incremental == table_content(backends_for(params_for(fresh_dir, demo_day=1)))


def test_a_run_id_lands_one_batch_only(tmp_path):
    params = dataclasses.replace(params_for(tmp_path), run_id="r1")
    backends = backends_for(params)
    first = run_ingest(params, backends)
    again = run_ingest(params, backends)
    assert again["reused"] is True and again["batch_id"] == first["batch_id"]
    assert len(backends.lake.batches()) == 1


def test_too_many_rejects_stop_the_load_before_any_write(tmp_path):
    from memphis_incidents.errors import DataQualityError

    params = params_for(tmp_path, max_reject_share=0.0)
    params = dataclasses.replace(params, run_id="r1")
    backends = backends_for(params)
    run_ingest(params, backends)
    with pytest.raises(DataQualityError, match="rejected"):
        run_load(params, backends)
    assert backends.warehouse.incidents_path() is None and backends.state.watermark is None


class MiscountingSource(DemoSource):
    """A source whose server-side count disagrees with what it served (as a live one can)."""

    def __init__(self, preset, table):
        super().__init__(preset, rows=table.num_rows, seed=1, day=0)
        self.table = table

    def pull(self, since):
        return Pull([self.table], self.count(since))

    def count(self, since):
        return self.table.num_rows + 1

    def watermark_of(self, table):
        return None

    def describe(self, since):
        return "miscounting test source"


def test_a_pull_that_does_not_reconcile_lands_nothing(tmp_path, monkeypatch):
    from memphis_incidents import ingest
    from memphis_incidents.errors import ReconciliationError

    params = dataclasses.replace(params_for(tmp_path), run_id="r1")
    table = demo_snapshot(50, 1, 0)
    monkeypatch.setattr(ingest, "make_source", lambda preset, p: MiscountingSource(preset, table))
    with pytest.raises(ReconciliationError, match="source reports 51 rows .* 50 were received"):
        run_ingest(params, backends_for(params))
    assert backends_for(params).lake.batches() == []


def test_the_ingest_notebook_shows_the_first_rows_without_reading_the_batch_whole(tmp_path):
    params = dataclasses.replace(params_for(tmp_path), run_id="r1")
    backends = backends_for(params)
    run_ingest(params, backends)
    assert backends.lake.head("r1").equals(backends.lake.read_batch("r1").slice(0, 5))
