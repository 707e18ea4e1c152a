"""`make demo-gcp` on a small demo: the GCP profile, run through the GCS and BigQuery emulators and
a Spark Connect server, publishes the embedded profile's marts from the same demo rows, counts the
same rows and leaves its run reports in the emulated bucket."""
from __future__ import annotations

import json

import pytest

from tests.demo_gcp import demo

pytestmark = pytest.mark.slow


def test_the_gcp_profile_on_emulators_gives_the_embedded_profiles_report(tmp_path):
    result = demo(tmp_path / "demo-gcp", rows=2000)
    assert (result.gcp_code, result.embedded_code) == (0, 0)
    assert result.mismatches == []
    (gcp_run,), (embedded_run,) = [[json.loads(p.read_text()) for p in folder.glob("*/run.json")]
                                   for folder in (result.gcp_reports, result.embedded_reports)]
    assert (gcp_run["profile"], gcp_run["status"]) == ("gcp", "succeeded")
    assert gcp_run["rows"] == embedded_run["rows"] and gcp_run["rows"]["loaded"] > 0
    run_id = gcp_run["run_id"]
    assert {f"reports/{run_id}/report.html", f"reports/{run_id}/run.json"} <= set(result.bucket_reports)
    assert f'data-run-id="{run_id}"' in (result.gcp_reports / "index.html").read_text()
