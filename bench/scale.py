"""`make bench BENCH_ARGS=--scale`: the same full run at 1.7M and at 17M demo rows, and how its time
and memory grow with the data (one run of each: the large one takes many minutes).

The figures are kept in scale.json beside results.md, so that a default `make bench` (which does
not run 17M rows) can still show the two targets only this run measures, with their date.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

from engines import run_engine
from pipeline import SPARK_STAGE, PipelineRun, run_pipeline
from report import GIB, quantity
from targets import LIMITS, Scaled, scaled_rows

from memphis_incidents.steps import STEP_NAMES

UNIT_REPEATS = 3


def run_scale(small_rows: int, large_rows: int, work: Path) -> Scaled:
    """One full run at each size (each on a fresh data folder), and U on the small warehouse."""
    runs = {}
    for rows in (small_rows, large_rows):
        print(f"scale: full run of {rows:,} rows", flush=True)
        runs[rows] = run_pipeline(rows, work / f"scale-{rows}", work / f"scale-reports-{rows}", f"scale-{rows}")
    warehouse = work / f"scale-{small_rows}" / "demo" / "warehouse"
    unit = statistics.median(run_engine("duckdb", warehouse).process_s for _ in range(UNIT_REPEATS))
    return Scaled(small_rows, large_rows, runs[small_rows], runs[large_rows], unit,
                  datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def growth_lines(scaled: Scaled) -> list[tuple[str, float, float, str]]:
    """Per step and in all: (what, value at the small size, at the large size, unit)."""
    small, large = scaled.small, scaled.large
    lines = [("full run, total wall (generation to report.html)", small.wall_s, large.wall_s, "s")]
    lines += [(f"step {step}", small.steps[step], large.steps[step], "s") for step in STEP_NAMES]
    lines.append(("runner (start-up, manifests, pages)", small.runner_s, large.runner_s, "s"))
    lines.append((SPARK_STAGE, small.spark_s, large.spark_s, "s"))
    lines += [(f"peak memory, step {step} (kernel + JVM)", small.step_peak_rss[step], large.step_peak_rss[step],
               "GiB") for step in STEP_NAMES]
    lines.append(("CPU time of all its processes", small.cpu_s, large.cpu_s, "s"))
    lines.append(("other processes' CPU meanwhile (background load)", small.others_cores, large.others_cores,
                  "cores"))
    return lines


def growth_table(scaled: Scaled) -> str:
    """The growth of each figure from the small run to the large one, as one Markdown table."""
    head = (f"| measured | {scaled.small_rows / 1e6:g}M rows | {scaled.large_rows / 1e6:g}M rows | growth |\n"
            "|---|---:|---:|---:|")
    body = [f"| {what} | {quantity(a, unit)} | {quantity(b, unit)} | {f'{b / a:.1f}×' if a else '–'} |"
            for what, a, b, unit in growth_lines(scaled)]
    return "\n".join([head, *body])


def save(scaled: Scaled, path: Path) -> None:
    path.write_text(json.dumps(dataclasses.asdict(scaled), indent=2) + "\n", encoding="utf-8")


def load(path: Path) -> Scaled | None:
    """The last scale run's figures, or None if there has been none."""
    if not path.exists():
        return None
    found = json.loads(path.read_text(encoding="utf-8"))
    return Scaled(**{**found, "small": PipelineRun(**found["small"]), "large": PipelineRun(**found["large"])})


def scale_section(scaled: Scaled | None, where: str) -> str:
    """The scale run's part of results.md: its growth table and the two targets' verdicts."""
    if scaled is None:
        return ""
    verdicts = "\n".join(f"- {row.what}: {row.cells()[1]}; {row.target}" for row in scaled_rows(scaled, where))
    return "\n".join([
        f"## Scale: {scaled.small_rows:,} and {scaled.large_rows:,} rows (`make bench BENCH_ARGS=--scale`)",
        "",
        f"Run on {scaled.when}, one full run at each size, each on a fresh data folder. U on the small "
        f"warehouse was {scaled.unit_s:.3f} s: the large run took {scaled.large.wall_s / scaled.unit_s:.0f} U, "
        f"the small one {scaled.small.wall_s / scaled.unit_s:.0f} U. Targets: peak memory of any step "
        f"≤ {LIMITS['memory_scaled'] / GIB:.0f} GiB at the large size, time growth ≤ {LIMITS['growth']:.0f}×.",
        "",
        growth_table(scaled),
        "",
        verdicts,
        "",
    ])
