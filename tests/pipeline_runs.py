"""The pipeline as a user starts it (`python run_pipeline.py ...` from the project folder), for tests."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROWS = 3000  # demo rows: enough for every section of the report, quick to run


def run_pipeline(*args: str, rows: int = ROWS) -> subprocess.CompletedProcess:
    """One run of the demo source (`rows` rows) with `args`; its output captured."""
    return subprocess.run([sys.executable, "run_pipeline.py", "-p", "demo_rows", str(rows), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
