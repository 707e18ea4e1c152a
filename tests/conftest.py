"""Shared fixtures: small raw frames in each preset's shape and the real samples kept in tests/fixtures."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pipeline_runs import run_pipeline

from memphis_incidents.config import load_preset
from memphis_incidents.warehouse.local import LocalWarehouse

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLES = REPO / "tests" / "fixtures" / "real"


def epoch_ms(text: str) -> int:
    """UTC epoch milliseconds of an ISO time written in UTC."""
    return int(pd.Timestamp(text, tz="UTC").timestamp() * 1000)


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> dict[str, Any]:
    """A project's data/ and reports/ after one succeeded demo run ("good"), and reports/ holding a
    run that failed at the load too ("bad", its data in bad-data/); shared, so read-only."""
    root = tmp_path_factory.mktemp("archive")
    reports_dir = root / "reports"
    good = run_pipeline("--run-id", "good", "-p", "data_dir", str(root / "data"), "--reports-dir", str(reports_dir))
    assert good.returncode == 0, good.stdout + good.stderr
    bad = run_pipeline("--run-id", "bad", "-p", "data_dir", str(root / "bad-data"), "-p", "max_reject_share", "0",
                       "--reports-dir", str(reports_dir))
    assert bad.returncode != 0
    run = json.loads((reports_dir / "good" / "run.json").read_text())
    warehouse = LocalWarehouse(Path(run["data_root"]) / "warehouse")
    return {"root": root, "reports": reports_dir, "run": run, "summary": warehouse.read_mart("summary").iloc[0]}


@pytest.fixture
def arcgis_preset():
    return load_preset("memphis-arcgis")


@pytest.fixture
def socrata_preset():
    return load_preset("memphis-2024")


@pytest.fixture
def real_samples() -> Path:
    return REAL_SAMPLES


@pytest.fixture
def arcgis_rows() -> pd.DataFrame:
    """Three clean ArcGIS-shaped rows (two offenses of one incident, one other incident)."""
    return pd.DataFrame({
        "ObjectId": [1, 2, 3],
        "Crime_ID": ["2401000001ME", "2401000001ME", "2402000002ME"],
        "Offense_Datetime": [epoch_ms("2024-01-15 03:30"), epoch_ms("2024-01-15 03:30"),
                             epoch_ms("2024-02-01 05:59")],
        "UCR_Category": ["LARCENY/THEFT", "ASSAULT", "BURGLARY"],
        "UCR_Description": ["THEFT FROM BUILDING", "SIMPLE ASSAULT", "BURGLARY/BREAKING AND ENTERING"],
        "NIBRS_Offense_Group": ["CRIMES AGAINST PROPERTY", "CRIMES AGAINST PERSONS", "CRIMES AGAINST PROPERTY"],
        "NIBRS_Group": ["A", "A", "A"],
        "Precinct": ["CRUMP", "CRUMP", "RAINES"],
        "Street_Address": ["400 E MCLEMORE ST", "400 E MCLEMORE ST", "1700 WINCHESTER RD"],
        "City": ["MEMPHIS", "MEMPHIS", "MEMPHIS"],
        "ZIP_Code": ["38106", "38106", "38116"],
        "Latitude": [35.12, 35.12, 35.05],
        "Longitude": [-90.03, -90.03, -89.98],
        "EditDate": [epoch_ms("2024-02-02 12:00")] * 3,
    })
