"""What a notebook step costs before it does any work: a bare kernel start, papermill running a
one-cell notebook (kernel start, run, shutdown, save), and nbconvert's HTML export."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import nbformat

from memphis_incidents.reports import notebook_html
from memphis_incidents.execute import ensure_kernel


def timed(action: Callable[[], object], times: int) -> list[float]:
    """Wall seconds of `times` runs of `action`."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def kernel_start_seconds(times: int) -> list[float]:
    """A kernel of the project, started until it answers (its shutdown is not counted)."""
    from jupyter_client.manager import start_new_kernel

    samples = []
    for _ in range(times):
        started = time.perf_counter()
        manager, client = start_new_kernel(kernel_name=ensure_kernel())
        samples.append(time.perf_counter() - started)
        client.stop_channels()
        manager.shutdown_kernel()
    return samples


def papermill_seconds(folder: Path, times: int) -> list[float]:
    """papermill running a notebook of one trivial cell, as the runner runs a step."""
    import papermill

    source = folder / "trivial.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), source)
    return timed(lambda: papermill.execute_notebook(str(source), str(folder / "trivial.out.ipynb"),
                                                    kernel_name=ensure_kernel(), progress_bar=False), times)


def html_seconds(notebook: Path, times: int, hide_code: bool) -> list[float]:
    """nbconvert's HTML export of an executed notebook (the report hides code, notebook pages show it)."""
    return timed(lambda: notebook_html(notebook, hide_code=hide_code), times)
