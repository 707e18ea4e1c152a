"""Executing a run: each step's notebook in a fresh kernel (papermill), unchanged steps skipped with
their outputs reused, one log line per step, the failure block, pages and the report rendered."""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.exceptions import PapermillExecutionError
from papermill.iorw import LocalHandler, papermill_io

from .backends import Backends
from .errors import ExitCode, exit_code_for
from .fingerprint import last_success, remember_success
from .kernels import WarmKernel, notebook_modules
from .layout import REPORT_PAGE, REPORTS
from .manifest import Run, StepResult, save_manifest
from .plan import notebook_parameters, plan_step
from .reports import previous_report, with_run_notice, write_notebook_page, write_notebook_pages, write_report
from .retention import prune_reports
from .runlog import read_step_record
from .steps import STEPS, Step
from .storage import copy_atomically, write_atomically

KERNEL_NAME = "memphis-incidents"


def ensure_kernel() -> str:
    """Register (once) a Jupyter kernel that runs this interpreter, so notebooks see this package."""
    folder = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                     "--IPKernelApp.log_level=ERROR"],
            "display_name": "Python (memphis-incidents)", "language": "python",
            "metadata": {"debugger": True}}
    path = folder / "kernel.json"
    if not path.exists() or json.loads(path.read_text()) != spec:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec, indent=1))
    return KERNEL_NAME


class AtomicLocalHandler(LocalHandler):
    """papermill's local writer, saving through a temp file and a rename."""

    def write(self, buf: str, path: str) -> None:
        write_atomically(Path(path), buf.encode("utf-8"))


@functools.cache
def atomic_notebook_saves() -> None:
    """Make papermill save notebooks at absolute local paths atomically: it rewrites the output
    notebook after every cell, and a reader, or a kill mid-save, must never find half a notebook."""
    papermill_io.register(os.sep, AtomicLocalHandler())


def execute_step(step: Step, run: Run, kernel: str, warm: WarmKernel | None = None) -> StepResult:
    """Run one notebook in a fresh kernel (the warm one started for it, if alive, else a new one);
    never raises for a notebook failure."""
    source = run.options.notebooks_dir / step.notebook
    output = run.folder / step.notebook
    started = time.perf_counter()
    atomic_notebook_saves()
    try:
        papermill.execute_notebook(
            str(source.absolute()), str(output.absolute()), parameters=notebook_parameters(source, run.params),
            kernel_name=kernel, cwd=str(run.options.notebooks_dir.parent), progress_bar=False,
            log_output=run.options.log_output, execution_timeout=run.options.cell_timeout,
            request_save_on_cell_execute=True, km=warm.take() if warm else None)
        error, code = None, ExitCode.OK
    except PapermillExecutionError as exc:
        error = {"ename": exc.ename, "evalue": exc.evalue, "cell": exc.exec_count, "cell_index": exc.cell_index}
        code = exit_code_for(exc.ename)
    except DeadKernelError as exc:
        error, code = {"ename": "DeadKernelError", "evalue": f"the kernel died (often out of memory): {exc}"}, \
            ExitCode.KERNEL_DIED
    except CellTimeoutError as exc:
        error = {"ename": "CellTimeoutError",
                 "evalue": f"a cell ran longer than --cell-timeout {run.options.cell_timeout} s: {exc}"}
        code = ExitCode.TIMEOUT
    except RuntimeError as exc:  # the kernel did not start or answer
        error, code = {"ename": type(exc).__name__, "evalue": str(exc)}, ExitCode.KERNEL_DIED
    return StepResult(step.name, step.notebook, status="failed" if error else "succeeded",
                      duration_s=round(time.perf_counter() - started, 2), output_notebook=str(output),
                      error=error, exit_code=int(code))


def failure_block(result: StepResult, run: Run) -> str:
    """The one readable block printed when a step fails."""
    error = result.error or {}
    where = f" in cell [{error['cell']}]" if error.get("cell") else ""
    message = str(error.get("evalue", "")).strip()
    return "\n".join([
        "",
        f"FAILED: step '{result.name}' ({result.notebook}){where}",
        f"  {error.get('ename', 'Error')}: {message}",
        f"  partial notebook: {result.output_notebook}",
        f"  exit code: {int(result.exit_code)} ({ExitCode(result.exit_code).name.lower()})",
        f"  resume with: {resume_command(run)}",
        "",
    ])


def resume_command(run: Run) -> str:
    parts = ["run_pipeline.py", "--resume", run.run_id]
    if run.options.reports_dir != Path(REPORTS):
        parts += ["--reports-dir", str(run.options.reports_dir)]
    return "python " + " ".join(shlex.quote(p) for p in parts)


def reuse_outputs(step: Step, result: StepResult, run: Run, backends: Backends) -> None:
    """Point a skipped, unchanged step at the outputs of the run that last ran it (copied here)."""
    previous = (last_success(backends, step) or {}).get("run_id")
    source = run.options.reports_dir / str(previous)
    result.reused_from = previous
    for name in (step.notebook, *step.outputs):
        if (source / name).exists() and source != run.folder:
            copy_atomically(source / name, run.folder / name)
    result.output_notebook = str(run.folder / step.notebook) if (run.folder / step.notebook).exists() else None


def log_step(run: Run, step: Step, result: StepResult, backends: Backends) -> None:
    """One structured (logfmt) line per step start and finish, with durations and what it summarises."""
    fields: dict[str, Any] = {"run": run.run_id, "step": result.name, "status": result.status}
    if result.duration_s is not None:
        fields["duration_s"] = result.duration_s
    if result.status == "succeeded":
        record = read_step_record(backends.storage, run.run_id, step.name) or {}
        for key in step.summary:
            value = record.get(key)
            fields.update(value if isinstance(value, dict) else {key: value})
    if result.reason:
        fields["reason"] = result.reason
    if result.error:
        fields["error"] = result.error.get("ename")
    print(" ".join(f"{k}={shlex.quote(str(v))}" for k, v in fields.items()), flush=True)


def boot_kernel(step: Step, run: Run, kernel: str) -> WarmKernel:
    """A kernel for `step`, booting now: its notebook's modules imported, its `prepare` run."""
    notebook = run.options.notebooks_dir / step.notebook
    prepare = (step.prepare, notebook_parameters(notebook, run.params)) if step.prepare else None
    return WarmKernel(kernel, run.options.notebooks_dir.parent, notebook_modules(notebook, step.stage), prepare)


def execute_steps(run: Run, backends: Backends, kernel: str, retired: list[WarmKernel]) -> Iterator[StepResult]:
    """Run the steps in order, yielding each one as it finishes (run or skipped). While a step runs,
    the next step's kernel is already booting; a step that declares `prepare` has its kernel boot
    when the run starts. Every kernel started ends up in `retired`, asked to exit, for the caller
    to reap (a kernel whose step is skipped, unused)."""
    code = ExitCode.OK
    upcoming = [step for step, result in zip(STEPS, run.results) if step in run.options.steps
                and not (run.options.resume and result.status == "succeeded")]
    warm = {step.name: boot_kernel(step, run, kernel) for step in upcoming[1:] if step.prepare}

    def retire(name: str) -> WarmKernel | None:
        booted = warm.pop(name, None)
        if booted:
            booted.retire()
            retired.append(booted)
        return booted

    try:
        for index, step in enumerate(STEPS):
            decision = plan_step(step, run.results[index], run, backends, blocked=code != ExitCode.OK)
            if decision.action == "keep":
                continue
            if decision.action == "skip":
                retire(step.name)
                result = run.results[index] = dataclasses.replace(run.results[index], status="skipped",
                                                                  reason=decision.reason)
                if decision.parts:
                    reuse_outputs(step, result, run, backends)
                log_step(run, step, result, backends)
                yield result
                continue
            run.results[index] = StepResult(step.name, step.notebook, status="running", reason=decision.reason)
            log_step(run, step, run.results[index], backends)
            later = [other for other in upcoming if STEPS.index(other) > index]
            if later and later[0].name not in warm:
                warm[later[0].name] = boot_kernel(later[0], run, kernel)
            try:
                result = execute_step(step, run, kernel, warm.get(step.name))
            finally:
                retire(step.name)
            result = run.results[index] = dataclasses.replace(result, reason=decision.reason)
            log_step(run, step, result, backends)
            if result.status == "succeeded":
                remember_success(backends, step, decision.parts, run.run_id)
            else:
                code = ExitCode(result.exit_code)
                print(failure_block(result, run), file=sys.stderr, flush=True)
            save_manifest(run, backends, "running")
            yield result
    finally:
        for name in list(warm):
            retire(name)


def execute_run(run: Run, backends: Backends) -> int:
    """Run the steps in order: skip the unchanged ones, stop running after a failure; then render
    each executed notebook's page (while the next step runs), the report, and prune old runs, while
    the kernels that ran the steps exit."""
    kernel = ensure_kernel()
    run.folder.mkdir(parents=True, exist_ok=True)
    run.results = run.pending_results()
    save_manifest(run, backends, "running")
    finished: list[StepResult] = []
    rendered: list[Future[Path]] = []
    retired: list[WarmKernel] = []
    try:
        with ThreadPoolExecutor(max_workers=1) as pages:
            for result in execute_steps(run, backends, kernel, retired):
                finished.append(result)
                if result.status != "failed" and result.output_notebook and Path(result.output_notebook).exists():
                    rendered.append(pages.submit(write_notebook_page, Path(result.output_notebook)))
        for page in rendered:
            page.result()
        code = next((ExitCode(r.exit_code) for r in finished if r.status == "failed"), ExitCode.OK)
        write_reports(run)
        prune_reports(run.options.reports_dir, run.options.keep_runs, backends.reports)
        save_manifest(run, backends, "succeeded" if code == ExitCode.OK else "failed", finished=True)
    finally:
        for used in retired:
            used.reap()
    return int(code)


def write_reports(run: Run) -> None:
    """The report page of each succeeded step that declares one, and the pages not rendered yet
    (a failed step's, a resumed run's)."""
    for step, result in zip(STEPS, run.results):
        executed = Path(result.output_notebook) if result.output_notebook else None
        if REPORT_PAGE in step.outputs and result.status == "succeeded" and executed and executed.exists():
            write_report(executed, run.folder / REPORT_PAGE)
        if REPORT_PAGE in step.outputs and (run.folder / REPORT_PAGE).exists():
            with_run_notice(run.folder / REPORT_PAGE, run.run_id, result.reused_from,
                            previous_report(run.options.reports_dir, run.run_id))
    write_notebook_pages(run.folder)
