"""Operating the runner: partial runs, resume, skipping unchanged steps, exit codes, retention."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from memphis_incidents.errors import ExitCode
from memphis_incidents.fingerprint import INPUTS, package_digest, skip_reason
from memphis_incidents.reporting_lag import local_today
from memphis_incidents.steps import step_named
from memphis_incidents.retention import runs_to_prune
from memphis_incidents.runner import main

REPO = Path(__file__).resolve().parents[1]


def project_with(tmp_path: Path, notebook: str, code: str) -> Path:
    """A copy of the project's notebooks with one code cell inserted after the parameters cell."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    path = root / "notebooks" / notebook
    nb = nbformat.read(path, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])) + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(code))
    nbformat.write(nb, path)
    return root


def run(tmp_path: Path, root: Path, *args: str) -> int:
    return main(["-p", "data_dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports"),
                 "-p", "demo_rows", "2000", *args], root)


def manifest(tmp_path: Path, run_id: str) -> dict:
    return json.loads((tmp_path / "reports" / run_id / "run.json").read_text())


def test_retention_keeps_the_newest_runs_and_every_failed_one():
    docs = [{"run_id": f"r{i}", "status": "failed" if i in (1, 4) else "succeeded"} for i in range(6)]
    assert runs_to_prune(docs, keep=2) == ["r3", "r5"]


def test_a_change_in_package_code_changes_the_fingerprint(tmp_path):
    shutil.copytree(REPO / "lib" / "memphis_incidents", tmp_path / "pkg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = package_digest(tmp_path / "pkg")
    (tmp_path / "pkg" / "metrics.py").write_text((tmp_path / "pkg" / "metrics.py").read_text() + "\n# x\n")
    assert package_digest(tmp_path / "pkg") != before


def test_the_report_is_made_again_on_a_new_memphis_day_so_its_stale_data_warning_is_current():
    assert "today" in step_named("analysis").reads
    assert not any("today" in step_named(name).reads for name in ("ingest", "load", "aggregate"))
    assert INPUTS["today"](None) == local_today().strftime("%Y-%m-%d")


def test_dry_run_names_why_each_step_would_run_or_not(tmp_path, capsys):
    assert run(tmp_path, REPO, "--dry-run", "--until", "aggregate") == 0
    out = capsys.readouterr().out
    assert "run  ingest    always asks the source" in out
    assert "run  load      no earlier success" in out
    assert "skip analysis  not selected" in out
    assert not (tmp_path / "data" / "demo" / "lake").exists()


@pytest.mark.parametrize("code, expected, words", [
    ("import time; time.sleep(30)", ExitCode.TIMEOUT, "--cell-timeout 2"),
    ("import os; os._exit(9)", ExitCode.KERNEL_DIED, "kernel died"),
    ("raise ValueError('boom')", ExitCode.CELL_ERROR, "ValueError: boom"),
])
def test_each_failure_kind_has_its_exit_code(tmp_path, capsys, code, expected, words):
    root = project_with(tmp_path, "01_ingest.ipynb", code)
    assert run(tmp_path, root, "--run-id", "f", "--cell-timeout", "2") == expected
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert (tmp_path / "reports" / "f" / "01_ingest.ipynb").exists()  # the partial notebook
    assert manifest(tmp_path, "f")["steps"][0]["status"] == "failed"


@pytest.mark.slow
def test_resume_reruns_the_failed_step_and_keeps_the_ones_that_succeeded(tmp_path, capsys):
    marker = tmp_path / "break-aggregation"
    marker.touch()
    guard = f"from pathlib import Path\nassert not Path({str(marker)!r}).exists(), 'injected failure'"
    root = project_with(tmp_path, "03_spark_aggregate.ipynb", guard)
    assert run(tmp_path, root, "--run-id", "r1") == ExitCode.CELL_ERROR
    assert "resume with: python run_pipeline.py --resume r1" in capsys.readouterr().err
    first = manifest(tmp_path, "r1")
    marker.unlink()
    assert main(["--resume", "r1", "--reports-dir", str(tmp_path / "reports")], root) == 0
    second = manifest(tmp_path, "r1")
    assert second["status"] == "succeeded"
    assert [s["status"] for s in second["steps"]] == ["succeeded"] * 4
    assert second["steps"][:2] == first["steps"][:2]  # ingest and load were not run again
    assert (tmp_path / "reports" / "r1" / "report.html").exists()


def test_prune_reports_deletes_old_run_folders_but_keeps_failed_ones(tmp_path):
    from memphis_incidents.retention import prune_reports

    for n, status in enumerate(["succeeded", "failed", "succeeded", "succeeded"]):
        folder = tmp_path / f"r{n}"
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps({"run_id": f"r{n}", "status": status,
                                                     "started_at": f"2026-11-2{n}T06:45:00+00:00"}))
    assert sorted(prune_reports(tmp_path, keep=2)) == ["r0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1", "r2", "r3"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_systemd_units_verify(tmp_path):
    import subprocess

    for unit in ("memphis-incidents.service", "memphis-incidents.timer"):
        shutil.copy(REPO / "deploy" / unit, tmp_path / unit)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "memphis-incidents.service"),
                           str(tmp_path / "memphis-incidents.timer")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_step_reruns_after_a_change_in_lib_and_is_skipped_otherwise(tmp_path):
    from memphis_incidents.config import RunParameters
    from memphis_incidents.fingerprint import remember_success
    from memphis_incidents.profiles import backends_for

    backends = backends_for(RunParameters(data_dir=str(tmp_path)))
    parts = {"notebook": "n", "parameters": "p", "code": "c1", "inputs": "i"}
    remember_success(backends, step_named("aggregate"), parts, "r1")
    assert skip_reason(step_named("aggregate"), parts, backends) == (True, "unchanged since run r1")
    assert skip_reason(step_named("aggregate"), {**parts, "code": "c2"}, backends) == (False, "changed: code")
    assert skip_reason(step_named("ingest"), parts, backends) == (False, "always asks the source")
