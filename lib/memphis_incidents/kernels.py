"""Kernels started ahead of their step: while one notebook runs, the next step's kernel boots and
imports the modules its notebook imports, so a step waits for neither; a step that declares a
`prepare` function has its kernel boot at the start of the run and run it (the aggregate step starts
Spark). Each kernel still runs one notebook only; a kernel that died while waiting is dropped and
papermill starts a fresh one."""
from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

REAP_SECONDS = 1.0  # a retired kernel's time to exit, counted from when the run needs it gone


def notebook_modules(notebook: Path, stage: str | None = None) -> tuple[str, ...]:
    """The absolute modules a notebook's code cells import, and its stage's module, in order."""
    modules = [stage.split(":")[0]] if stage else []
    code = [cell["source"] for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "code"]
    for source in code:
        try:
            tree = ast.parse("".join(source))  # nbformat keeps a cell's source as one string or a list of lines
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
    return tuple(dict.fromkeys(modules))


def warm_up(modules: str) -> None:
    """Import the comma-separated modules (run in the kernel at start-up; binds no names). One that
    fails to import is left for its notebook cell to report."""
    for name in filter(None, modules.split(",")):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the notebook shows the real error in its own cell
            pass


class RecordingKernelManager(AsyncKernelManager):
    """A kernel manager that remembers the clients papermill makes, to close them afterwards."""

    def client(self, **kwargs: Any) -> Any:
        made = super().client(**kwargs)
        self.__dict__.setdefault("made_clients", []).append(made)
        return made


class WarmKernel:
    """One kernel booting in the background with `modules` imported, for the next step to take."""

    def __init__(self, kernel_name: str, cwd: Path, modules: tuple[str, ...],
                 prepare: tuple[str, dict[str, Any]] | None = None) -> None:
        """`prepare`: a step's prepare function and its notebook's parameters (notebook.prepare)."""
        self.manager = RecordingKernelManager(kernel_name=kernel_name)
        lines = [f"__import__('memphis_incidents.kernels').kernels.warm_up({','.join(modules)!r})"]
        if prepare:
            target, parameters = prepare
            lines.append(f"__import__('memphis_incidents.notebook').notebook.prepare({target!r}, {parameters!r})")
        run_sync(self.manager.start_kernel)(cwd=str(cwd), extra_arguments=[f"--IPKernelApp.exec_lines={'; '.join(lines)}"])

    def take(self) -> AsyncKernelManager | None:
        """The kernel manager if its kernel is still alive (else it is stopped and None returned)."""
        if run_sync(self.manager.is_alive)():
            return self.manager
        self.shutdown()
        return None

    def retire(self) -> None:
        """Close the clients papermill opened and ask the kernel to exit, without waiting for it (a
        Spark kernel takes seconds to stop its JVM): the next step starts meanwhile."""
        for made in self.manager.__dict__.pop("made_clients", []):
            made.stop_channels()
        if self.manager.has_kernel:
            run_sync(self.manager.request_shutdown)()

    def reap(self) -> None:
        """Wait for a retired kernel to exit: half of REAP_SECONDS, then SIGTERM, then SIGKILL. A kernel
        whose Spark JVM is still up (a session not ended by spark_session.stop_session) does not exit
        on request alone (py4j's threads); its notebook is saved by then."""
        if self.manager.has_kernel:
            run_sync(self.manager.finish_shutdown)(waittime=REAP_SECONDS)
            run_sync(self.manager.cleanup_resources)()

    def shutdown(self) -> None:
        """Stop the kernel now that it is not needed (it is never reused)."""
        self.retire()
        self.reap()
