"""The bench's target lines from given figures: ratios to U, verdicts, and the scale run's part."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from measure import Tree  # noqa: E402
from pipeline import PipelineRun  # noqa: E402
from report import GIB  # noqa: E402
from scale import growth_table, load, save, scale_section  # noqa: E402
from targets import Scaled, first_demo_row, in_units, memory_target, scaled_rows  # noqa: E402

STEPS = ("ingest", "load", "aggregate", "analysis")


def run(wall: float, peak_gib: dict[str, float]) -> PipelineRun:
    return PipelineRun(wall_s=wall, cpu_s=wall, peak_rss=int(3 * GIB), others_cores=0.1,
                       steps={step: wall / 5 for step in STEPS},
                       step_peak_rss={step: int(peak_gib.get(step, 0.5) * GIB) for step in STEPS}, spark_s=wall / 4)


def test_a_time_is_judged_in_units_of_u():
    assert in_units("full", [20.0, 26.0, 30.0], 0.65, 40).cells()[3:] == ["40.0 U", "≤ 40 U: met"]
    assert in_units("full", [27.0], 0.65, 40).target == "≤ 40 U: **missed**"


def test_memory_names_the_largest_step_and_is_judged_by_the_largest_run():
    row = memory_target("peak", [run(10, {"load": 1.5}), run(10, {"aggregate": 2.1})], 2 * GIB)
    assert row.what == "peak (the aggregate step)" and row.target == "≤ 2 GiB: **missed**"


def test_the_first_demo_run_is_compared_with_the_forced_one_run_by_run():
    row = first_demo_row([run(26, {}), run(30, {})], [run(20, {}), run(20, {})], 250_000)
    assert row.samples == [1.3, 1.5] and row.target == "≤ 1.3×: **missed**"


def test_the_scale_run_is_kept_and_read_back_with_its_verdicts(tmp_path):
    scaled = Scaled(1_700_000, 17_000_000, run(30, {"load": 1.0}), run(270, {"load": 2.5}), 0.6, "today")
    save(scaled, tmp_path / "scale.json")
    assert load(tmp_path / "scale.json") == scaled and load(tmp_path / "missing.json") is None
    memory, growth = scaled_rows(scaled, "scale.json")
    assert memory.target == "≤ 3 GiB: met" and growth.target == "≤ 10×: met" and growth.samples == [9.0]
    assert "| step load | 6.0 s | 54.0 s | 9.0× |" in growth_table(scaled)
    assert "the large run took 450 U" in scale_section(scaled, "scale.json")
    assert all("not measured yet" in row.ratio for row in scaled_rows(None, "scale.json"))


def test_a_process_that_exited_but_is_not_reaped_is_no_longer_seen():
    """The runner reaps retired kernels only at its end: step memory is told apart by when each
    kernel was last seen, so an exited kernel (a zombie until then) must not count as seen."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    proc, tree = psutil.Process(child.pid), Tree()
    try:
        while proc.status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.01)
        tree.sample([proc])
        assert tree.last_seen == 0.0 and tree.peak_rss == 0
    finally:
        child.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        tree.sample([psutil.Process(running.pid)])
        assert tree.last_seen > 0 and tree.peak_rss > 0
    finally:
        running.kill()
        running.wait()
