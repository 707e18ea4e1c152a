"""The issue's targets (issue 15), each as a ratio to U measured in the same bench run.

U is the median wall time of DuckDB's month × category aggregation over the 1.7M-row warehouse in a
fresh process (the "duckdb: whole fresh process" line). Absolute seconds differ about 2.3× between
machines of the same kind; ratios to U held within a few per cent, so the targets are ratios.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from pipeline import PipelineRun
from report import GIB, Row, verdict

from memphis_incidents.steps import STEP_NAMES

LIMITS = {"full": 40.0, "nightly": 15.0, "spark_full": 12.0, "spark_nightly": 6.0, "first_demo": 1.3,
          "memory": 2 * GIB, "memory_scaled": 3 * GIB, "growth": 10.0, "month_read": 20.0}


@dataclass
class Scaled:
    """What the scale run (`--scale`) measured: the same full run at a small and a large size."""

    small_rows: int
    large_rows: int
    small: PipelineRun
    large: PipelineRun
    unit_s: float
    when: str

    @property
    def growth(self) -> float:
        """How much longer the large run took than the small one."""
        return self.large.wall_s / self.small.wall_s


def unit_row(samples: list[float]) -> Row:
    """U itself."""
    return Row("U = DuckDB month × category over the 1.7M-row warehouse, whole fresh process", samples,
               ratio="1 U (the unit of the targets below)")


def in_units(what: str, samples: list[float], unit_s: float, limit: float) -> Row:
    """A time as a multiple of U, against a limit in U (no samples: not measured, as with --quick)."""
    if not samples:
        return Row(what, [], ratio="not measured in this run (--quick)", target=f"≤ {limit:.0f} U")
    median = statistics.median(samples) / unit_s
    return Row(what, samples, ratio=f"{median:.1f} U", target=f"≤ {limit:.0f} U: {verdict(median, limit)}")


def step_peak(runs: list[PipelineRun]) -> tuple[str, list[float]]:
    """The step with the largest peak memory over all runs, and its peak in each run."""
    step = max(STEP_NAMES, key=lambda s: max(r.step_peak_rss[s] for r in runs))
    return step, [float(r.step_peak_rss[step]) for r in runs]


def memory_target(what: str, runs: list[PipelineRun], limit: float) -> Row:
    """The largest peak of any step (kernel + JVM) against a limit; met when the largest run meets it."""
    step, peaks = step_peak(runs)
    return Row(f"{what} (the {step} step)", peaks, "GiB", ratio=f"{max(peaks) / limit:.2f}× limit",
               target=f"≤ {limit / GIB:.0f} GiB: {verdict(max(peaks), limit)}")


def first_demo_row(first: list[PipelineRun], forced: list[PipelineRun], rows: int) -> Row:
    """The first run on a fresh data folder against a forced second run on the same data."""
    ratios = [a.wall_s / b.wall_s for a, b in zip(first, forced)]
    median = statistics.median(ratios)
    return Row(f"first `make demo` ({rows:,} rows, fresh data folder) / a second run with --force --full-refresh, "
               "pipeline part", ratios, "x",
               ratio=f"first {statistics.median(r.wall_s for r in first):.1f} s, "
                     f"forced {statistics.median(r.wall_s for r in forced):.1f} s",
               target=f"≤ {LIMITS['first_demo']}×: {verdict(median, LIMITS['first_demo'])}")


def scaled_rows(scaled: Scaled | None, where: str) -> list[Row]:
    """The two targets only the scale run measures: memory at the large size and the time growth."""
    if scaled is None:
        pending = f"not measured yet: make bench BENCH_ARGS=--scale (writes {where})"
        return [Row("peak memory of any step at 17M rows", [], ratio=pending, target="≤ 3 GiB"),
                Row("full run at 17M rows / at 1.7M rows", [], ratio=pending, target="≤ 10×")]
    origin = f"from the scale run of {scaled.when} ({where})"
    memory = memory_target(f"peak memory of any step at {scaled.large_rows / 1e6:g}M rows",
                           [scaled.large], LIMITS["memory_scaled"])
    memory.ratio += f"; {origin}"
    growth = Row(f"full run at {scaled.large_rows / 1e6:g}M rows / at {scaled.small_rows / 1e6:g}M rows",
                 [scaled.growth], "x",
                 ratio=f"{scaled.large.wall_s:.0f} s against {scaled.small.wall_s:.0f} s; {origin}",
                 target=f"≤ {LIMITS['growth']:.0f}×: {verdict(scaled.growth, LIMITS['growth'])}")
    return [memory, growth]


def month_read_row(month: str, ratio: float, rows_ratio: float) -> Row:
    """Data a one-month query reads from the unpartitioned table over the partitioned one."""
    return Row(f"{month}: data read by the unpartitioned table over the partitioned one", [ratio], "x",
               ratio=f"rows scanned: {rows_ratio:.1f}×; what BigQuery bills",
               target=f"≥ {LIMITS['month_read']:.0f}×: {verdict(ratio, LIMITS['month_read'], False)}")
