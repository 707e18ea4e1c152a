"""The package keeps the shape issue #16 gave it: Spark only where Spark runs, no import cycles
between the profile modules, and modules short enough to read in one sitting."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib" / "memphis_incidents"
SPARK_MODULES = {"aggregate.py", "spark_session.py"}  # the aggregate stage and the Spark session helper
MAX_LINES = 350
OWN_MODULES = [p for p in LIB.rglob("*.py") if "sources" not in p.relative_to(LIB).parts]  # sources: issue #12


def imported(path: Path) -> set[str]:
    """The modules a file imports (relative imports resolved within the package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


def test_only_the_aggregate_stage_and_the_session_helper_import_pyspark():
    importers = {str(p.relative_to(LIB)) for p in LIB.rglob("*.py")
                 if any(name.split(".")[0] == "pyspark" for name in imported(p))}
    assert importers == SPARK_MODULES


def test_the_gcp_profile_does_not_import_the_module_that_chooses_profiles():
    assert not any("profiles" in name for name in imported(LIB / "gcp.py"))


def test_every_module_is_under_350_lines():
    long = {str(p.relative_to(LIB)): n for p in OWN_MODULES if (n := len(p.read_text().splitlines())) >= MAX_LINES}
    assert long == {}


def test_the_ingest_and_load_steps_start_without_plotting_or_geometry():
    """matplotlib and scipy.spatial are the analysis's and the demo outlines' (about 0.9 s of imports
    a step would pay at every start); a fresh interpreter importing the two steps loads neither."""
    script = ("import sys, memphis_incidents.ingest, memphis_incidents.load, memphis_incidents.notebook; "
              "print(sorted(set(sys.modules) & {'matplotlib', 'seaborn', 'scipy.spatial'}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
