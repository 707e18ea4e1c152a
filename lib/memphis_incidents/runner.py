"""The pipeline runner: strict parameters, one fresh kernel per notebook, run reports, exit codes.

`run_pipeline.py` is a thin shell around `main`. Each step is a parameterised notebook executed by
papermill; its executed copy, the HTML report and `run.json` land in `<reports_dir>/<run_id>/`.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, NoReturn, Sequence

from .config import RunParameters, check_run_id, preset_names
from .errors import ConfigError, ExitCode, PipelineError, exit_code_for
from .runlog import new_run_id
from .source_check import check_source
from .storage import LocalStorage

KERNEL_NAME = "memphis-incidents"
PACKAGES = ("memphis-incidents", "pandas", "pyarrow", "duckdb", "pyspark", "papermill", "nbconvert")


@dataclass(frozen=True)
class Step:
    """One stage of the pipeline and the notebook that runs it."""

    name: str
    notebook: str


STEPS = (
    Step("ingest", "01_ingest.ipynb"),
    Step("load", "02_warehouse_load.ipynb"),
    Step("aggregate", "03_spark_aggregate.ipynb"),
    Step("analysis", "04_analysis.ipynb"),
)
STEP_NAMES = tuple(s.name for s in STEPS)


@dataclass
class StepResult:
    """What happened to one step in this run."""

    name: str
    notebook: str
    status: str = "pending"  # pending | running | succeeded | failed | skipped
    duration_s: float | None = None
    output_notebook: str | None = None
    error: dict[str, Any] | None = None
    exit_code: int = 0
    reason: str | None = None  # why it ran or was skipped
    reused_from: str | None = None  # run whose outputs a skipped, unchanged step reuses


@dataclass
class RunOptions:
    """How to run, as opposed to what to compute (RunParameters)."""

    reports_dir: Path
    notebooks_dir: Path
    steps: tuple[Step, ...] = STEPS
    cell_timeout: int = 1800
    log_output: bool = False
    dry_run: bool = False
    resume: str = ""
    force: bool = False
    keep_runs: int = 30


@dataclass
class Run:
    """A run in progress: its id, parameters, step results and report folder."""

    params: RunParameters
    options: RunOptions
    results: list[StepResult] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def run_id(self) -> str:
        return self.params.run_id

    @property
    def folder(self) -> Path:
        return self.options.reports_dir / self.run_id


# ---- command line --------------------------------------------------------------------------------
class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (not the usage block) with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.BAD_PARAMETERS, f"error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(message: str) -> str:
    """A message on one line (a name or value in it may hold line breaks)."""
    return " ".join(message.split())


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    steps = ", ".join(STEP_NAMES)
    p = OneLineParser(
        prog="run_pipeline.py",
        description="Run the memphis-incidents pipeline: ingest, warehouse load, Spark aggregation "
                    "and analysis notebooks, in order, each in a fresh kernel. Executed notebooks, "
                    "report.html and run.json go to REPORTS_DIR/RUN_ID/.",
        epilog="Exit codes: " + ", ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in ExitCode)
               + f". Sources: {', '.join(preset_names())}. Run parameters (-p): "
               + ", ".join(f"{f.name} ({f.type})" for f in dataclasses.fields(RunParameters)) + ".")
    p.add_argument("--profile", choices=("embedded", "gcp"), help="storage and engines (default embedded)")
    p.add_argument("--source", help="source preset (default demo)")
    p.add_argument("--full-refresh", action="store_true", help="re-pull everything; rows gone at the source are deleted")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="set a run parameter (repeatable); unknown names or bad values stop the run")
    p.add_argument("--run-id", help="use this run id instead of a new one")
    p.add_argument("--reports-dir", default="reports", help="where run reports go (default reports/)")
    p.add_argument("--only", choices=STEP_NAMES, help=f"run just this step ({steps})")
    p.add_argument("--from", dest="from_step", choices=STEP_NAMES, help="start at this step")
    p.add_argument("--until", choices=STEP_NAMES, help="stop after this step")
    p.add_argument("--resume", metavar="RUN_ID", help="re-run the failed step of RUN_ID and those after it")
    p.add_argument("--dry-run", action="store_true", help="print what would run, with which parameters and why, and exit")
    p.add_argument("--check-source", action="store_true",
                   help="ask the source whether a run would work (fields, incremental mode, row count); writes nothing")
    p.add_argument("--force", action="store_true",
                   help="run steps even when their notebook, parameters, package code and inputs are unchanged")
    p.add_argument("--keep-runs", type=positive_int, default=30, metavar="N",
                   help="keep the newest N run reports plus every failed one (default 30)")
    p.add_argument("--cell-timeout", type=positive_int, default=1800, help="seconds one cell may run (default 1800)")
    p.add_argument("--log-output", action="store_true", help="stream cell output live")
    return p


def selected_steps(only: str | None, from_step: str | None, until: str | None) -> tuple[Step, ...]:
    """The steps to run, in pipeline order."""
    if only:
        return tuple(s for s in STEPS if s.name == only)
    start = STEP_NAMES.index(from_step) if from_step else 0
    stop = STEP_NAMES.index(until) + 1 if until else len(STEPS)
    if start >= stop:
        raise ConfigError(f"--from {from_step} comes after --until {until}")
    return STEPS[start:stop]


def parameters_from_args(args: argparse.Namespace) -> RunParameters:
    """Strictly validated run parameters from the command line."""
    values: dict[str, Any] = {}
    for name, value in args.parameter:
        if name in values:
            raise ConfigError(f"parameter {name} given twice")
        values[name] = value
    for name in ("profile", "source", "run_id"):
        if getattr(args, name, None):
            values[name] = getattr(args, name)
    if args.full_refresh:
        values["full_refresh"] = True
    params = RunParameters.from_mapping(values)
    return dataclasses.replace(params, data_dir=str(Path(params.data_dir).resolve()),
                               run_id=params.run_id or new_run_id())


# ---- execution -----------------------------------------------------------------------------------
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


def notebook_parameters(notebook: Path, params: RunParameters) -> dict[str, Any]:
    """The run parameters a notebook declares in its `parameters` cell."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    known = params.as_dict()
    unknown = sorted(set(declared) - set(known))
    if unknown:
        raise ConfigError(f"{notebook.name} declares parameters the runner does not know: {unknown}")
    return {name: known[name] for name in declared}


@functools.cache
def atomic_notebook_saves() -> None:
    """Make papermill save notebooks at absolute local paths atomically (temp file, then rename):
    it rewrites the output notebook after every cell, and a reader, or a kill mid-save, must never
    find half a notebook."""
    from papermill.iorw import LocalHandler, papermill_io

    class AtomicLocalHandler(LocalHandler):
        def write(self, buf: str, path: str) -> None:
            LocalStorage(Path(path).parent).write_bytes(Path(path).name, buf.encode("utf-8"))

    papermill_io.register(os.sep, AtomicLocalHandler())


def copy_atomically(source: Path, target: Path) -> None:
    """Copy a file so that a reader sees the old target or the whole new one, never part of it."""
    staged = target.with_name(f".{target.name}.tmp")
    shutil.copy2(source, staged)
    os.replace(staged, target)


def execute_step(step: Step, run: Run, kernel: str) -> StepResult:
    """Run one notebook in a fresh kernel; never raises for a notebook failure."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    source = run.options.notebooks_dir / step.notebook
    output = run.folder / step.notebook
    result = StepResult(step.name, step.notebook, status="running", output_notebook=str(output))
    started = time.perf_counter()
    atomic_notebook_saves()
    try:
        papermill.execute_notebook(
            str(source.absolute()), str(output.absolute()), parameters=notebook_parameters(source, run.params),
            kernel_name=kernel, cwd=str(run.options.notebooks_dir.parent), progress_bar=False,
            log_output=run.options.log_output, execution_timeout=run.options.cell_timeout,
            request_save_on_cell_execute=True)
        result.status = "succeeded"
    except PapermillExecutionError as exc:
        result.error = {"ename": exc.ename, "evalue": exc.evalue, "cell": exc.exec_count,
                        "cell_index": exc.cell_index}
        result.exit_code = exit_code_for(exc.ename)
    except DeadKernelError as exc:
        result.error = {"ename": "DeadKernelError",
                        "evalue": f"the kernel died (often out of memory): {exc}"}
        result.exit_code = ExitCode.KERNEL_DIED
    except CellTimeoutError as exc:
        result.error = {"ename": "CellTimeoutError",
                        "evalue": f"a cell ran longer than --cell-timeout {run.options.cell_timeout} s: {exc}"}
        result.exit_code = ExitCode.TIMEOUT
    except RuntimeError as exc:  # the kernel did not start or answer
        result.error = {"ename": type(exc).__name__, "evalue": str(exc)}
        result.exit_code = ExitCode.KERNEL_DIED
    if result.error:
        result.status = "failed"
    result.duration_s = round(time.perf_counter() - started, 2)
    return result


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
    if run.options.reports_dir != Path("reports"):
        parts += ["--reports-dir", str(run.options.reports_dir)]
    return "python " + " ".join(shlex.quote(p) for p in parts)


# ---- manifest ------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def git_sha(folder: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def manifest(run: Run, stores: Any, status: str, finished: bool) -> dict[str, Any]:
    """run.json: parameters, per-step status and timings, row counts, watermarks, versions."""
    from .runlog import read_step_record

    batch = stores.lake.batch_meta(run.run_id) or {}
    load = read_step_record(stores.storage, run.run_id, "load") or {}
    rows = load.get("rows", {})
    return {
        "run_id": run.run_id,
        "status": status,
        "profile": run.params.profile,
        "source": run.params.source,
        "synthetic": bool(batch.get("synthetic", run.params.source == "demo")),
        "started_at": run.started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds") if finished else None,
        "parameters": run.params.as_dict(),
        "steps": [dataclasses.asdict(r) for r in run.results],
        "rows": {"received": rows.get("received", batch.get("rows")), "loaded": rows.get("loaded"),
                 "quarantined": rows.get("quarantined"), "duplicates": rows.get("duplicates"),
                 **{k: v for k, v in rows.items() if k not in ("received", "loaded", "quarantined", "duplicates")}},
        "watermark": load.get("watermark", {"before": batch.get("watermark_before"), "after": None}),
        "batch": {k: batch.get(k) for k in ("batch_id", "mode", "mode_reason", "incremental", "rows", "pages",
                                            "server_count", "repairs", "query", "url", "data")},
        "source_warnings": batch.get("source_warnings", []),
        "data_root": stores.data_root,
        "report": "report.html" if (run.folder / "report.html").exists() else None,
        "versions": versions(),
        "git_sha": git_sha(run.options.notebooks_dir.parent),
    }


def save_manifest(run: Run, status: str, finished: bool = False) -> dict[str, Any]:
    """Write run.json, refresh the runs index and archive the run folder where the profile says."""
    from .profiles import backends
    from .reports import archive_run, write_index, write_manifest

    stores = backends(run.params)
    doc = manifest(run, stores, status, finished)
    write_manifest(run.folder / "run.json", doc)
    write_index(run.options.reports_dir)
    archive_run(run.folder, stores.reports)
    return doc


# ---- the run -------------------------------------------------------------------------------------
def plan_step(step: Step, result: StepResult, run: Run, stores: Any, blocked: bool) -> tuple[str, str, dict]:
    """Decide what to do with a step: ("run" | "keep" | "skip", why, fingerprint parts)."""
    from .fingerprint import fingerprint, skip_reason

    if run.options.resume and result.status == "succeeded":
        return "keep", "succeeded earlier in this run", {}
    if step.name not in {s.name for s in run.options.steps}:
        return "skip", "not selected", {}
    if blocked:
        return "skip", "an earlier step failed", {}
    notebook = run.options.notebooks_dir / step.notebook
    parts = fingerprint(step.name, notebook, notebook_parameters(notebook, run.params), stores)
    unchanged, why = skip_reason(step.name, parts, stores)
    if unchanged and not run.options.force:
        return "skip", why, parts
    return "run", why + (" (--force)" if unchanged else ""), parts


def reuse_outputs(step: Step, result: StepResult, run: Run, stores: Any) -> None:
    """Point a skipped, unchanged step at the outputs of the run that last ran it (copied here)."""
    from .fingerprint import last_success

    previous = (last_success(stores, step.name) or {}).get("run_id")
    source = run.options.reports_dir / str(previous)
    result.reused_from = previous
    names = [step.notebook] + (["report.html"] if step.name == "analysis" else [])
    for name in names:
        if (source / name).exists() and source != run.folder:
            copy_atomically(source / name, run.folder / name)
    result.output_notebook = str(run.folder / step.notebook) if (run.folder / step.notebook).exists() else None


def log_step(run: Run, result: StepResult, stores: Any) -> None:
    """One structured (logfmt) line per step start and finish, with durations and row counts."""
    from .runlog import read_step_record

    fields = {"run": run.run_id, "step": result.name, "status": result.status}
    if result.duration_s is not None:
        fields["duration_s"] = result.duration_s
    if result.status == "succeeded" and result.name == "ingest":
        fields["rows"] = (stores.lake.batch_meta(run.run_id) or {}).get("rows")
    if result.status == "succeeded" and result.name == "load":
        fields.update((read_step_record(stores.storage, run.run_id, "load") or {}).get("rows", {}))
    if result.reason:
        fields["reason"] = result.reason
    if result.error:
        fields["error"] = result.error.get("ename")
    print(" ".join(f"{k}={shlex.quote(str(v))}" for k, v in fields.items()), flush=True)


def execute_run(run: Run) -> int:
    """Run the steps in order: skip the unchanged ones, stop running after a failure."""
    from .profiles import backends
    from .reports import write_notebook_page, write_notebook_pages, write_report
    from .retention import prune_reports

    stores = backends(run.params)
    kernel = ensure_kernel()
    run.folder.mkdir(parents=True, exist_ok=True)
    run.results = run.results or [StepResult(s.name, s.notebook) for s in STEPS]
    save_manifest(run, "running")
    finished, rendered = [], []
    with ThreadPoolExecutor(max_workers=1) as pages:  # a step's page renders while the next step runs
        for result in execute_steps(run, stores, kernel):
            finished.append(result)
            if result.status != "failed" and result.output_notebook and Path(result.output_notebook).exists():
                rendered.append(pages.submit(write_notebook_page, Path(result.output_notebook)))
    for page in rendered:
        page.result()
    code = next((ExitCode(r.exit_code) for r in finished if r.status == "failed"), ExitCode.OK)
    analysis = next(r for r in run.results if r.name == "analysis")
    if analysis.status == "succeeded" and Path(analysis.output_notebook).exists():
        write_report(analysis.output_notebook, run.folder / "report.html")
    write_notebook_pages(run.folder)  # those not rendered yet: a failed step's, a resumed run's
    prune_reports(run.options.reports_dir, run.options.keep_runs, stores.reports)
    save_manifest(run, "succeeded" if code == ExitCode.OK else "failed", finished=True)
    return int(code)


def execute_steps(run: Run, stores: Any, kernel: str) -> Iterator[StepResult]:
    """Run the steps in order, yielding each one as it finishes (run or skipped)."""
    from .fingerprint import remember_success

    code = ExitCode.OK
    for step, result in zip(STEPS, run.results):
        action, reason, parts = plan_step(step, result, run, stores, blocked=code != ExitCode.OK)
        if action == "keep":
            continue
        result.reason = reason
        if action == "skip":
            result.status = "skipped"
            if parts:
                reuse_outputs(step, result, run, stores)
            log_step(run, result, stores)
            yield result
            continue
        result.__dict__.update(status="running", duration_s=None, error=None, exit_code=0, reused_from=None)
        log_step(run, result, stores)
        outcome = execute_step(step, run, kernel)
        outcome.reason = result.reason
        result.__dict__.update(dataclasses.asdict(outcome))
        log_step(run, result, stores)
        if result.status == "succeeded":
            remember_success(stores, step.name, parts, run.run_id)
        else:
            code = ExitCode(result.exit_code)
            print(failure_block(result, run), file=sys.stderr, flush=True)
        save_manifest(run, "running")
        yield result


def dry_run(run: Run) -> int:
    """Print what would run, with which parameters, and why (inputs as they are now)."""
    from .profiles import backends

    stores = backends(run.params)
    print(f"run {run.run_id} (dry run: nothing is executed; inputs as they are now)")
    results = run.results or [StepResult(s.name, s.notebook) for s in STEPS]
    for step, result in zip(STEPS, results):
        action, why, _ = plan_step(step, result, run, stores, blocked=False)
        line = f"  {'run ' if action == 'run' else 'skip'} {step.name:<9} {why}"
        if action == "run":
            params = notebook_parameters(run.options.notebooks_dir / step.notebook, run.params)
            line += "\n       " + " ".join(f"{k}={v!r}" for k, v in params.items())
        print(line)
    return 0


def writable_folder(path: Path, what: str) -> Path:
    """The folder, created if missing; ConfigError if it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} {path} is not a writable folder ({exc.strerror or exc})") from None
    return path


def resumed_run(run_id: str, options: RunOptions) -> Run:
    """A failed run's parameters and results, ready to continue from its failed step."""
    path = options.reports_dir / run_id / "run.json"
    if not path.exists():
        raise ConfigError(f"no run {run_id} in {options.reports_dir} (looked for {path})")
    try:
        doc = json.loads(path.read_text())
        if doc["status"] == "succeeded":
            raise ConfigError(f"run {run_id} succeeded; there is nothing to resume")
        params = RunParameters.from_mapping(doc["parameters"])
        results = [StepResult(**{k: v for k, v in r.items() if k in StepResult.__dataclass_fields__})
                   for r in doc["steps"]]
        return Run(params=params, options=options, results=results, started_at=doc["started_at"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(f"cannot resume run {run_id}: {path} is damaged ({type(exc).__name__}: {exc}); "
                          "start a new run instead") from None


def main(argv: Sequence[str] | None, project_root: Path) -> int:
    """Entry point of run_pipeline.py: returns the process exit code."""
    logging.basicConfig(level=os.environ.get("MEMPHIS_INCIDENTS_LOG", "WARNING"),
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        args = parser().parse_args(argv)
        options = RunOptions(reports_dir=Path(args.reports_dir), notebooks_dir=project_root / "notebooks",
                             steps=selected_steps(args.only, args.from_step, args.until),
                             cell_timeout=args.cell_timeout, log_output=args.log_output,
                             dry_run=args.dry_run, resume=args.resume or "", force=args.force,
                             keep_runs=args.keep_runs)
        if args.check_source:
            return check_source(parameters_from_args(args))
        run = resumed_run(check_run_id(args.resume), options) if args.resume \
            else Run(parameters_from_args(args), options)
        if args.dry_run:
            return dry_run(run)
        from .runlock import run_lock
        from .config import Paths

        data_root = writable_folder(Paths.for_source(run.params.data_dir, run.params.source).root, "data_dir")
        writable_folder(options.reports_dir, "--reports-dir")
        with run_lock(data_root, run.run_id, say=lambda text: print(text, flush=True)):
            print(f"run {run.run_id}: profile={run.params.profile} source={run.params.source} "
                  f"reports in {run.folder}", flush=True)
            code = execute_run(run)
    except PipelineError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    except OSError as exc:  # the runner's own writes: a full disk, a folder that went away
        logging.debug("the runner failed", exc_info=True)
        print(f"error: {one_line(str(exc))}; nothing more was written, re-run when it is fixed", file=sys.stderr)
        return int(ExitCode.CELL_ERROR)
    if code == ExitCode.OK:
        report = run.folder / "report.html"
        print(f"report: {report.resolve() if report.exists() else '(no analysis step in this run)'}")
        print(f"run manifest: {(run.folder / 'run.json').resolve()}")
    return code
