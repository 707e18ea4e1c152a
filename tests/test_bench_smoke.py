"""The bench's whole code path on a tiny demo table (timings are not asserted: machines are noisy)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
TARGETS = ("U = DuckDB month × category", "full run, 0.005M rows, generation to report.html",
           "nightly run (one day", "Spark stage, the step asking for its session (started ahead) to marts written, full run",
           "Spark stage, nightly run", "first `make demo`", "peak memory of any step at 0.005M rows",
           "peak memory of any step at 17M rows", "full run at 17M rows / at 1.7M rows",
           "data read by the unpartitioned table over the partitioned one")
DETAILS = ("full run: total wall", "full run: step aggregate", "full run: peak memory, step load",
           "full run: Spark session (started ahead) up before the step asked for it",
           "forced second demo run: total wall", "duckdb: first query", "pandas: whole fresh process",
           "one month (", "neither", "speed-up of the partitioned table", "papermill: one-cell notebook",
           "nbconvert: report.html")


def bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "bench/run_bench.py", "--repeats", "1", "--out",
                           str(tmp_path / "results.md"), "--work", str(tmp_path / "work"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert list((tmp_path / "work").iterdir()) == []  # the scratch data is removed
    return done


def table_of(page: str, heading: str) -> list[str]:
    """The lines of the Markdown table under `heading`."""
    after = page.split(heading, 1)[1].split("\n## ", 1)[0]
    return [line for line in after.splitlines() if line.startswith("| ")]


def test_the_bench_writes_the_targets_as_ratios_to_u_and_every_measurement(tmp_path):
    done = bench(tmp_path, "--rows", "5000", "--quick")
    page = (tmp_path / "results.md").read_text()
    assert "## Machine" in page and "- CPU:" in page and "openjdk" in page.lower()
    targets, details = table_of(page, "## Targets, as ratios to U"), table_of(page, "## Every measurement")
    assert targets[0].startswith("| measured | median | min – max | ratio | target |")
    assert all(sum(row in line for line in targets) == 1 for row in TARGETS), targets
    assert all(any(row in line for line in details) for row in DETAILS)
    timed = [line for line in targets if "U |" in line and "generation to report.html" in line]
    assert len(timed) == 1 and (": met" in timed[0] or ": **missed**" in timed[0])
    assert sum("not measured" in line for line in targets) == 4  # nightly, Spark nightly, the 17M rows
    assert any("peak memory of any step at 0.005M rows (the aggregate step)" in line for line in targets)  # the JVM
    assert "| measured |" in done.stdout  # the same tables are printed


def test_the_scale_run_keeps_its_growth_for_the_results_page(tmp_path):
    done = bench(tmp_path, "--scale", "--rows", "2000", "--scale-rows", "6000")
    kept = json.loads((tmp_path / "scale.json").read_text())
    assert (kept["small_rows"], kept["large_rows"]) == (2000, 6000)
    assert kept["large"]["steps"]["load"] > 0 and kept["large"]["step_peak_rss"]["load"] > 0
    assert "| measured | 0.002M rows | 0.006M rows | growth |" in done.stdout
    assert "full run at 0.006M rows / at 0.002M rows" in done.stdout
