"""The bench's whole code path on a tiny demo table (timings are not asserted: machines are noisy)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
ROWS = ("full run: total wall", "full run: step aggregate", "full run: peak memory, step load",
        "duckdb: first query", "pandas: whole fresh process", "one month (", "neither",
        "speed-up of the partitioned table", "data read by the unpartitioned table", "papermill: one-cell notebook", "nbconvert: report.html")


def test_the_bench_writes_one_table_with_the_machine(tmp_path):
    out, work = tmp_path / "results.md", tmp_path / "work"
    done = subprocess.run([sys.executable, "bench/run_bench.py", "--rows", "5000", "--repeats", "1", "--quick",
                           "--out", str(out), "--work", str(work)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = out.read_text()
    assert "## Machine" in page and "- CPU:" in page and "openjdk" in page.lower()
    table = [line for line in page.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| measured | median | min – max | ratio | target |")
    assert all(any(row in line for line in table) for row in ROWS)
    assert "| measured |" in done.stdout  # the same table is printed
    assert list(work.iterdir()) == []  # the scratch data is removed
