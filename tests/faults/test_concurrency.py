"""Two runs at once on one data directory, and the lock a killed run leaves behind."""
from __future__ import annotations

import os
import signal

import pytest

from memphis_incidents.errors import ExitCode

from .conftest import LOADED, UNTIL_LOAD, Nights, Pipeline, alive, assert_same_content, signal_all, wait_until

pytestmark = [pytest.mark.fault("concurrency"), pytest.mark.slow]


def test_two_runs_started_together_one_proceeds_the_other_names_it(
        first_night: Pipeline, nights: Nights, ledger) -> None:
    runs = [first_night.start("together-a", *UNTIL_LOAD), first_night.start("together-b", *UNTIL_LOAD)]
    refused = wait_until(lambda: next((r for r in runs if r.popen.poll() is not None), None),
                         "one of the runs to exit", 60)
    proceeding = next(r for r in runs if r is not refused)
    assert refused.popen.returncode == ExitCode.LOCKED
    assert proceeding.popen.poll() is None  # refused at once, while the other is at work
    message = refused.stderr().strip().splitlines()
    assert len(message) == 1 and "another run is in progress" in message[0]
    assert f"run {proceeding.run_id}, pid {proceeding.popen.pid}" in message[0]
    assert proceeding.wait() == 0
    assert not (first_night.reports / refused.run_id).exists()
    assert first_night.lake_batches() == [proceeding.run_id]
    assert_same_content(first_night.snapshot(), nights.first, ledger, LOADED)


def test_the_lock_of_a_killed_run_is_taken_over_once_its_processes_are_gone(
        first_night: Pipeline, nights: Nights, ledger) -> None:
    killed = first_night.start("killed", *UNTIL_LOAD)
    left_behind = wait_until(lambda: "step=load status=running" in killed.stdout() and killed.kernel(),
                             "the load step's kernel", run=killed)
    signal_all(left_behind, signal.SIGSTOP)  # the runner's kernel, slow to notice it is orphaned
    os.killpg(killed.popen.pid, signal.SIGKILL)  # kill -9 of the runner; the kernel has its own session
    killed.popen.wait()
    try:
        taker = first_night.start("taker", *UNTIL_LOAD)
        wait_until(lambda: "waiting for" in taker.stdout(), "the new run to wait for the killed run's kernel",
                   60, taker)
        assert "step=" not in taker.stdout()
        signal_all(left_behind, signal.SIGCONT)  # the kernel sees its runner gone and exits
        assert taker.wait() == 0, taker.stderr()
    finally:
        signal_all(left_behind, signal.SIGKILL)  # whatever happened, leave nothing stopped behind
    out = taker.stdout()
    assert "run killed ended without releasing its lock (killed?); taking it over" in out
    assert out.index("waiting for") < out.index("step=")
    assert not any(alive(pid) for pid in left_behind)
    assert_same_content(first_night.snapshot(), nights.first, ledger, LOADED)
