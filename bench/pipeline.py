"""Whole pipeline runs through the real runner (`run_pipeline.py`), timed and measured per step."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from measure import CommandFailed, Measured, run_checked

from memphis_incidents.steps import STEP_NAMES

KERNEL = "ipykernel_launcher"


SPARK_STAGE = "Spark stage, the step asking for its session (started ahead) to marts written"


@dataclass
class PipelineRun:
    """One run of the pipeline: wall and CPU time, and per executed step its duration and peak memory."""

    wall_s: float
    cpu_s: float
    peak_rss: int
    others_cores: float
    steps: dict[str, float]
    step_peak_rss: dict[str, int]
    spark_s: float
    session_ready_before_s: float | None = None  # the session started ahead was up this long before the step asked

    @property
    def runner_s(self) -> float:
        """What the runner itself costs beyond the steps: start-up, manifests, HTML export."""
        return self.wall_s - sum(self.steps.values())


def run_pipeline(rows: int, data_dir: Path, reports_dir: Path, run_id: str, day: int = 0,
                 force: bool = False) -> PipelineRun:
    """Run the whole pipeline on the demo source once (`day` > 0: the nightly update of that day;
    `force`: every step runs and does all of a first run's work again: --force --full-refresh re-pulls,
    reloads and recomputes every month of the marts, which a plain --force would leave unchanged)."""
    command = [sys.executable, "run_pipeline.py", "--run-id", run_id, "--reports-dir", str(reports_dir),
               "-p", "demo_rows", str(rows), "-p", "data_dir", str(data_dir), "-p", "demo_day", str(day),
               *(["--force", "--full-refresh"] if force else [])]
    measured = run_checked(command, f"pipeline run {run_id}")
    manifest = json.loads((reports_dir / run_id / "run.json").read_text())
    executed = [s for s in manifest["steps"] if s["status"] == "succeeded" and s["duration_s"] is not None]
    if tuple(s["name"] for s in executed) != STEP_NAMES:
        raise CommandFailed(f"pipeline run {run_id} did not run every step: {manifest['steps']}")
    return PipelineRun(
        wall_s=measured.wall_s,
        cpu_s=measured.tree.cpu_total,
        peak_rss=measured.tree.peak_rss,
        others_cores=measured.others_cores,
        steps={s["name"]: s["duration_s"] for s in executed},
        step_peak_rss=kernel_peaks(measured, [s["name"] for s in executed]),
        **spark_stage(data_dir, run_id),
    )


def kernel_peaks(measured: Measured, steps: list[str]) -> dict[str, int]:
    """Peak memory of each step: its kernel and everything the kernel started (Spark's JVM).
    Each step runs in a kernel of its own, which ends when the step ends; kernels start out of step
    order (the next step's kernel boots while a step runs), so they are told apart by when they end."""
    kernels = sorted((child for child in measured.children if KERNEL in child.command), key=lambda k: k.last_seen)
    if len(kernels) != len(steps):
        raise CommandFailed(f"saw {len(kernels)} kernels for steps {steps}: cannot tell their memory apart")
    return {step: kernel.peak_rss for step, kernel in zip(steps, kernels)}


def spark_stage(data_dir: Path, run_id: str) -> dict[str, float | None]:
    """The Spark stage as the aggregate step records it: from asking for its session (started ahead
    by the step's kernel while ingest and load ran) to marts written, and how long before the step
    asked that session was up (None: it was not started ahead)."""
    path = next(data_dir.glob(f"*/runs/{run_id}/aggregate.json"), None)
    if path is None:
        raise CommandFailed(f"pipeline run {run_id} left no record of its Spark stage")
    record = json.loads(path.read_text())
    session = record.get("spark_session") or {}
    return {"spark_s": record["spark_seconds"],
            "session_ready_before_s": session.get("ready_before_s") if session.get("started_ahead") else None}
