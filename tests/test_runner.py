"""The runner end to end: real papermill runs of the real notebooks on a small demo dataset."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from memphis_incidents.config import RunParameters
from memphis_incidents.errors import ExitCode
from memphis_incidents.runner import main
from memphis_incidents.steps import STEPS

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunParameters)}


def run(tmp_path: Path, *args: str) -> int:
    return main(["-p", "data_dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports"),
                 "-p", "demo_rows", "3000", *args], REPO)


def manifest(tmp_path: Path, run_id: str) -> dict:
    return json.loads((tmp_path / "reports" / run_id / "run.json").read_text())


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_notebook_parameters_are_run_parameters_with_the_same_defaults(step):
    declared = papermill.inspect_notebook(str(REPO / "notebooks" / step.notebook))
    assert declared, f"{step.notebook} has no parameters cell"
    for name, info in declared.items():
        assert name in DEFAULTS, f"{step.notebook} declares unknown parameter {name}"
        assert eval(info["default"]) == DEFAULTS[name], f"{step.notebook}: default of {name}"


def test_notebooks_are_committed_without_outputs():
    for step in STEPS:
        notebook = nbformat.read(REPO / "notebooks" / step.notebook, as_version=4)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), step.notebook


@pytest.mark.parametrize("args, message", [
    (["-p", "demo_rowz", "5"], "unknown parameter(s) demo_rowz"),
    (["-p", "demo_seed", "lots"], "demo_seed must be int"),
    (["--source", "memphis-2025"], "unknown source 'memphis-2025'"),
    (["-p", "max_reject_share", "2"], "max_reject_share must be between 0 and 1"),
    (["-p", "spark_master", "local[x]"], "spark_master must be a Spark master URL"),
])
def test_bad_parameters_fail_before_any_kernel_starts(tmp_path, capsys, args, message):
    assert run(tmp_path, *args) == ExitCode.BAD_PARAMETERS
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    assert run(tmp_path, "--dry-run", "--from", "load", "--run-id", "r0") == 0
    out = capsys.readouterr().out
    assert "skip ingest" in out and "run  load" in out and "demo_rows" not in out.split("run  load")[1].splitlines()[0]
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_full_run_then_nightly_run(tmp_path, capsys):
    assert run(tmp_path, "--run-id", "day0") == 0
    out = capsys.readouterr().out
    first = manifest(tmp_path, "day0")
    folder = tmp_path / "reports" / "day0"
    assert f"report: {folder / 'report.html'}" in out
    assert first["status"] == "succeeded" and first["synthetic"] is True
    assert [s["status"] for s in first["steps"]] == ["succeeded"] * 4
    assert all((folder / s.notebook).exists() for s in STEPS)
    rows = first["rows"]
    assert rows["received"] == 3000 == rows["loaded"] + rows["quarantined"] + rows["duplicates"]
    assert first["watermark"]["before"] is None and first["watermark"]["after"]
    html = (folder / "report.html").read_text()
    assert "Synthetic data" in html and re.search(r'<svg [^>]*aria-label="Chart. ', html) and "def " not in html
    aggregate = json.loads(next((tmp_path / "data").glob("*/runs/day0/aggregate.json")).read_text())
    assert aggregate["spark_session"]["started_ahead"] is True  # by its kernel, while ingest and load ran

    assert run(tmp_path, "--run-id", "day1", "-p", "demo_day", "1") == 0
    second = manifest(tmp_path, "day1")
    assert second["watermark"]["before"] == first["watermark"]["after"]
    assert second["watermark"]["after"] > first["watermark"]["after"]
    assert 0 < second["rows"]["received"] < 300 and second["batch"]["mode"] == "incremental"

    assert run(tmp_path, "--run-id", "again", "-p", "demo_day", "1") == 0  # nothing new at the source
    third = manifest(tmp_path, "again")
    assert [s["status"] for s in third["steps"]] == ["succeeded", "succeeded", "skipped", "skipped"]
    assert third["steps"][2]["reason"] == "unchanged since run day1"
    assert (tmp_path / "reports" / "again" / "report.html").exists()  # reused from day1
    capsys.readouterr()
    assert run(tmp_path, "--run-id", "forced", "-p", "demo_day", "1", "--force", "--dry-run") == 0
    assert "run  aggregate unchanged since run day1 (--force)" in capsys.readouterr().out


@pytest.mark.slow
def test_a_failing_step_keeps_its_partial_notebook_and_says_how_to_resume(tmp_path, capsys):
    code = run(tmp_path, "--run-id", "bad", "-p", "max_reject_share", "0")
    err = capsys.readouterr().err
    assert code == ExitCode.DATA_QUALITY
    assert "FAILED: step 'load' (02_warehouse_load.ipynb)" in err
    assert "DataQualityError" in err and "max_reject_share" in err
    assert "resume with: python run_pipeline.py --resume bad" in err
    doc = manifest(tmp_path, "bad")
    assert doc["status"] == "failed"
    assert [s["status"] for s in doc["steps"]] == ["succeeded", "failed", "skipped", "skipped"]
    partial = nbformat.read(tmp_path / "reports" / "bad" / "02_warehouse_load.ipynb", as_version=4)
    errors = [o for c in partial.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "DataQualityError"
