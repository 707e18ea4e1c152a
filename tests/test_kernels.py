"""Kernels started ahead of their step: what they import, that papermill runs a notebook in one, and
that a kernel which died while waiting is not handed out."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import nbformat
import papermill
import pytest

from memphis_incidents.execute import ensure_kernel
from memphis_incidents.kernels import WarmKernel, notebook_modules

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbformat.write(nb, path)
    return path


def test_the_modules_are_the_stage_and_every_absolute_import_of_the_notebook(tmp_path):
    path = notebook(tmp_path / "n.ipynb", "x = 1", "import json, os.path\nfrom pathlib import Path",
                    "from . import relative\nfrom memphis_incidents.marts import UNIT", "def broken(:")
    assert notebook_modules(path, "memphis_incidents.load:run_load") == (
        "memphis_incidents.load", "json", "os.path", "pathlib", "memphis_incidents.marts")


def test_every_step_notebook_names_the_package_it_runs():
    for name in ("01_ingest", "02_warehouse_load", "03_spark_aggregate", "04_analysis"):
        assert "memphis_incidents.notebook" in notebook_modules(ROOT / "notebooks" / f"{name}.ipynb")


def printed_in(warm: WarmKernel, folder: Path, source: str) -> list[str]:
    """The words a one-cell notebook of `source` prints to stdout, run by papermill in `warm`."""
    path = notebook(folder / "n.ipynb", source)
    try:
        papermill.execute_notebook(str(path), str(folder / "out.ipynb"), kernel_name=ensure_kernel(),
                                   progress_bar=False, km=warm.take())
    finally:
        warm.shutdown()
    outputs = json.loads((folder / "out.ipynb").read_text())["cells"][0]["outputs"]
    return "".join("".join(o["text"]) for o in outputs if o.get("name") == "stdout").split()


def test_a_notebook_runs_in_the_warm_kernel_with_its_modules_already_imported(tmp_path):
    warm = WarmKernel(ensure_kernel(), tmp_path, ("memphis_incidents.marts", "no_such_module_here"))
    printed = printed_in(warm, tmp_path, "import os, sys\nwarm = 'memphis_incidents.marts' in sys.modules\n"
                         "bound = 'memphis_incidents' in dir()\nprint(os.getcwd(), warm, bound)")
    assert printed == [str(tmp_path), "True", "False"]
    assert not warm.manager.has_kernel
    assert not warm.manager.has_kernel


def test_a_warm_kernel_that_died_is_not_handed_out(tmp_path):
    warm = WarmKernel(ensure_kernel(), tmp_path, ())
    os.kill(warm.manager.provisioner.process.pid, signal.SIGKILL)
    warm.manager.provisioner.process.wait()
    assert warm.take() is None
    assert not warm.manager.has_kernel


def test_a_step_that_prepares_runs_its_prepare_function_as_its_kernel_boots(tmp_path):
    parameters = {"run_id": "", "data_dir": str(tmp_path / "data"), "spark_master": "local[1]"}
    warm = WarmKernel(ensure_kernel(), tmp_path, ("memphis_incidents.aggregate",),
                      ("memphis_incidents.aggregate:prepare", parameters))
    printed = printed_in(warm, tmp_path, "from memphis_incidents import spark_session as s\n"
                         "spark = s.spark_session('local[1]', '', {})\nprint(s.handed_over['started_ahead'])\n"
                         "spark.stop()")
    assert printed == ["True"]
