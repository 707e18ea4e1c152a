"""The analyst path: `make lab`'s JupyterLab, on 127.0.0.1, runs 04_analysis top to bottom.

The notebook is read and saved through the server's contents API and executed cell by cell through
its kernel API, with its default parameters, in a project laid out like the repository after
`make demo` (notebooks/, run_pipeline.py, data/). Nothing goes through papermill.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest
import requests
import websocket

from memphis_incidents.execute import ensure_kernel
from memphis_incidents.warehouse.local import LocalWarehouse

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "04_analysis.ipynb"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the repository's notebooks and entry point, with the data `make demo` leaves in data/."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    shutil.copy(REPO / "run_pipeline.py", root)
    demo = subprocess.run([sys.executable, "run_pipeline.py", "-p", "demo_rows", "3000", "--until", "aggregate"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JupyterLab:
    """A JupyterLab server on 127.0.0.1, spoken to through its REST and kernel websocket APIs."""

    def __init__(self, notebook_dir: Path, home: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"token {self.token}"}
        env = {"JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
        self.log = (home / "server.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--notebook-dir={notebook_dir}",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", "--ServerApp.allow_root=True"],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **env})
        self._wait_until_ready(home / "server.log")

    def _wait_until_ready(self, log: Path) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited:\n{log.read_text()}")
            try:
                if requests.get(f"{self.url}/api/status", headers=self.headers, timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within 90 s:\n{log.read_text()}")

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.url}/api/{path}", headers=self.headers, timeout=60, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def read_notebook(self, path: str) -> nbformat.NotebookNode:
        return nbformat.from_dict(self.api("GET", f"contents/{path}?content=1")["content"])

    def save_notebook(self, path: str, notebook: nbformat.NotebookNode) -> None:
        self.api("PUT", f"contents/{path}", json={"type": "notebook", "format": "json", "content": notebook})

    def open_session(self, path: str, kernel: str) -> "KernelChannel":
        """Start a kernel for a notebook as JupyterLab does (its working directory is the notebook's folder)."""
        session = self.api("POST", "sessions", json={"path": path, "type": "notebook", "name": path,
                                                     "kernel": {"name": kernel}})
        ws_url = self.url.replace("http", "ws") + f"/api/kernels/{session['kernel']['id']}/channels"
        return KernelChannel(websocket.create_connection(ws_url, header=self.headers, timeout=300))

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


class KernelChannel:
    """Execute code on a kernel through the server's websocket, collecting outputs as nbformat does."""

    def __init__(self, socket_: websocket.WebSocket):
        self.socket, self.session = socket_, uuid.uuid4().hex
        self.request("kernel_info_request", {})

    def request(self, msg_type: str, content: dict[str, Any]) -> list[nbformat.NotebookNode]:
        """Send a shell request and gather its outputs until the kernel is idle again."""
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "session": self.session, "username": "test",
                  "version": "5.3", "date": ""}
        self.socket.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content,
                                     "channel": "shell", "buffers": []}))
        outputs = []
        while True:
            message = json.loads(self.socket.recv())
            if message["parent_header"].get("msg_id") != msg_id or message["channel"] != "iopub":
                continue
            kind = message["header"]["msg_type"]
            if kind in ("stream", "display_data", "execute_result", "error"):
                outputs.append(nbformat.v4.output_from_msg(message))
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return outputs

    def run(self, code: str) -> list[nbformat.NotebookNode]:
        return self.request("execute_request", {"code": code, "silent": False, "store_history": True,
                                                "user_expressions": {}, "allow_stdin": False,
                                                "stop_on_error": True})

    def close(self) -> None:
        self.socket.close()


@pytest.fixture(scope="module")
def lab(project, tmp_path_factory) -> Iterator[JupyterLab]:
    ensure_kernel()
    server = JupyterLab(project / "notebooks", tmp_path_factory.mktemp("jupyter"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def analyst_run(lab) -> dict[str, Any]:
    """04_analysis run top to bottom through the server, saved back and read again; and the
    kernel's working directory."""
    notebook = lab.read_notebook(NOTEBOOK)
    kernel = lab.open_session(NOTEBOOK, notebook.metadata.kernelspec.name)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = kernel.run(cell.source)
    cwd = kernel.run("import os; print(os.getcwd(), end='')")[0]["text"]
    kernel.close()
    lab.save_notebook(NOTEBOOK, notebook)
    return {"notebook": lab.read_notebook(NOTEBOOK), "cwd": cwd}


def outputs(notebook: nbformat.NotebookNode, kind: str) -> list[Any]:
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == kind]


def test_every_cell_runs_with_the_default_parameters_in_the_notebooks_folder(analyst_run, project):
    errors = [f"{e.ename}: {e.evalue}" for e in outputs(analyst_run["notebook"], "error")]
    assert errors == []
    assert analyst_run["cwd"] == str(project / "notebooks")
    assert not (project / "notebooks" / "data").exists()


def test_the_analysis_reads_the_latest_run_data_from_the_project_data_folder(analyst_run, project):
    summary = LocalWarehouse(project / "data" / "demo" / "warehouse").read_mart("summary").iloc[0]
    page = "".join(o.data.get("text/html", "") for o in outputs(analyst_run["notebook"], "display_data"))
    assert f'data-key="offense_rows" data-value="{summary["offense_rows"]}"' in page
    assert f'data-key="incidents" data-value="{summary["incidents"]}"' in page
    assert "Rows in the latest load (batch " in page


def test_figures_are_saved_as_inline_svg_with_alt_text(analyst_run):
    pages = [o.data.get("text/html", "") for o in outputs(analyst_run["notebook"], "display_data")]
    figures = [p for p in pages if p.startswith('<figure class="mi-figure">')]
    assert len(figures) >= 9
    assert all(p.count('role="img" aria-label="Chart. ') == 2 for p in figures)  # for a laptop and a phone
