"""A disk that fills up during a lake or a warehouse write: a clean failure (exit code, one message,
no traceback), the previous state intact, and, once there is room again, a re-run that ends as a
clean night does. The full disk is a small tmpfs mounted over the folder and filled to the last byte.
"""
from __future__ import annotations

import pytest

from memphis_incidents.errors import ExitCode

from .conftest import LOADED, UNTIL_LOAD, Nights, PartialFileReader, Pipeline, assert_same_content, fill, \
    small_filesystem

pytestmark = [pytest.mark.fault("disk full"), pytest.mark.slow]


@pytest.mark.parametrize("folder, lands, code", [("raw", False, ExitCode.CELL_ERROR),
                                                ("warehouse", True, ExitCode.CELL_ERROR),
                                                (".", False, ExitCode.IO_ERROR)],  # the runner's own lock write
                         ids=["lake", "warehouse", "whole data directory"])
def test_a_full_disk_fails_cleanly_and_keeps_the_previous_state(
        next_night: Pipeline, nights: Nights, ledger, folder: str, lands: bool, code: ExitCode) -> None:
    before = next_night.lake_batches()
    with small_filesystem(next_night.store / folder, "16m") as mounted, \
            PartialFileReader(next_night.root) as reader:
        filler = fill(mounted)
        failed = next_night.run("disk-full", *UNTIL_LOAD, expect=code)
        assert "No space left on device" in failed.stderr() and "Traceback" not in failed.stderr()
        assert next_night.lake_batches() == before + ["disk-full"] * lands
        assert_same_content(next_night.snapshot(), nights.first, ledger, LOADED)

        filler.unlink()
        next_night.run("room-again", *UNTIL_LOAD)
        assert_same_content(next_night.snapshot(), nights.next, ledger, LOADED)
    reader.assert_no_partial_file()
