"""What a run is and what it leaves: its results per step and `run.json` (parameters, per-step status
and timings, row counts, watermarks, versions, git sha), written, indexed, archived and read back to
resume a failed run.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .backends import Backends
from .citation import citation
from .config import RunParameters
from .errors import ConfigError
from .layout import REPORT_PAGE, RUN_MANIFEST
from .reports import archive_run, write_index, write_manifest
from .runlog import read_step_record
from .steps import STEPS, Step

PACKAGES = ("memphis-incidents", "pandas", "pyarrow", "duckdb", "pyspark", "papermill", "nbconvert")
ROW_COUNTS = ("received", "loaded", "quarantined", "duplicates")


@dataclass
class StepResult:
    """What happened to one step in this run."""

    name: str
    notebook: str
    status: str = "pending"  # pending | running | succeeded | failed | skipped
    duration_s: float | None = None
    output_notebook: str | None = None
    error: dict[str, Any] | None = None
    exit_code: int = 0
    reason: str | None = None  # why it ran or was skipped
    reused_from: str | None = None  # run whose outputs a skipped, unchanged step reuses


@dataclass
class RunOptions:
    """How to run, as opposed to what to compute (RunParameters)."""

    reports_dir: Path
    notebooks_dir: Path
    steps: tuple[Step, ...] = STEPS
    cell_timeout: int = 1800
    log_output: bool = False
    dry_run: bool = False
    resume: str = ""
    force: bool = False
    keep_runs: int = 30


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Run:
    """A run in progress: its id, parameters, step results and report folder."""

    params: RunParameters
    options: RunOptions
    results: list[StepResult] = field(default_factory=list)
    started_at: str = field(default_factory=now_utc)

    @property
    def run_id(self) -> str:
        return self.params.run_id

    @property
    def folder(self) -> Path:
        return self.options.reports_dir / self.run_id

    def pending_results(self) -> list[StepResult]:
        """The results so far, or a pending one per step for a new run."""
        return self.results or [StepResult(s.name, s.notebook) for s in STEPS]


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def git_sha(folder: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def row_counts(load: dict[str, Any], batch: dict[str, Any]) -> dict[str, Any]:
    """The run's row counts: the load's, with the batch's rows when no load ran."""
    rows = load.get("rows", {})
    return {"received": rows.get("received", batch.get("rows")),
            **{key: rows.get(key) for key in ROW_COUNTS[1:]},
            **{k: v for k, v in rows.items() if k not in ROW_COUNTS}}


def manifest(run: Run, backends: Backends, status: str, finished: bool) -> dict[str, Any]:
    """run.json: parameters, per-step status and timings, row counts, watermarks, versions."""
    batch = backends.lake.batch_meta(run.run_id) or {}
    load = read_step_record(backends.storage, run.run_id, "load") or {}
    return {
        "run_id": run.run_id,
        "status": status,
        "profile": run.params.profile,
        "source": run.params.source,
        "synthetic": bool(batch.get("synthetic", run.params.source == "demo")),
        "started_at": run.started_at,
        "finished_at": now_utc() if finished else None,
        "parameters": run.params.as_dict(),
        "steps": [dataclasses.asdict(r) for r in run.results],
        "rows": row_counts(load, batch),
        "watermark": load.get("watermark", {"before": batch.get("watermark_before"), "after": None}),
        "batch": {k: batch.get(k) for k in ("batch_id", "mode", "mode_reason", "incremental", "rows", "pages",
                                            "server_count", "repairs", "query", "url", "data")},
        "source_warnings": batch.get("source_warnings", []),
        "citation": citation(batch),
        "data_root": backends.data_root,
        "report": REPORT_PAGE if (run.folder / REPORT_PAGE).exists() else None,
        "versions": versions(),
        "git_sha": git_sha(run.options.notebooks_dir.parent),
    }


def save_manifest(run: Run, backends: Backends, status: str, finished: bool = False) -> dict[str, Any]:
    """Write run.json, refresh the runs index and archive the run folder where the profile says."""
    doc = manifest(run, backends, status, finished)
    write_manifest(run.folder / RUN_MANIFEST, doc)
    write_index(run.options.reports_dir)
    archive_run(run.folder, backends.reports)
    return doc


def resumed_run(run_id: str, options: RunOptions) -> Run:
    """A failed run's parameters and results, ready to continue from its failed step."""
    path = options.reports_dir / run_id / RUN_MANIFEST
    if not path.exists():
        raise ConfigError(f"no run {run_id} in {options.reports_dir} (looked for {path})")
    try:
        doc = json.loads(path.read_text())
        if doc["status"] == "succeeded":
            raise ConfigError(f"run {run_id} succeeded; there is nothing to resume")
        params = RunParameters.from_mapping(doc["parameters"])
        known = {f.name for f in dataclasses.fields(StepResult)}
        results = [StepResult(**{k: v for k, v in r.items() if k in known}) for r in doc["steps"]]
        return Run(params=params, options=options, results=results, started_at=doc["started_at"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(f"cannot resume run {run_id}: {path} is damaged ({type(exc).__name__}: {exc}); "
                          "start a new run instead") from None
