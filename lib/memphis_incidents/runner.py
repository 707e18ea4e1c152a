"""The pipeline runner's command line: strict parameters, then a plan (plan.py) executed step by step
(execute.py) with run.json kept up to date (manifest.py); every failure ends in one line and a
distinct exit code.

`run_pipeline.py` is a thin shell around `main`. Each step is a parameterised notebook executed by
papermill; its executed copy, the HTML report and `run.json` land in `<reports_dir>/<run_id>/`.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn, Sequence

# nbformat imports jsonschema, which compiles 38 IRI grammars (0.8 s of every run's start) when
# rfc3987-syntax is installed (JupyterLab needs it); the runner never checks an IRI's format.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from .config import RunParameters, check_run_id, preset_names
from .errors import ConfigError, ExitCode, PipelineError
from .execute import execute_run
from .layout import REPORT_PAGE, REPORTS, RUN_MANIFEST, DataLayout
from .manifest import Run, RunOptions, resumed_run
from .plan import dry_run, selected_steps
from .profiles import backends_for
from .runlock import run_lock
from .runlog import new_run_id
from .source_check import check_source
from .steps import STEP_NAMES


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
    p.add_argument("--full-refresh", action="store_true",
                   help="re-pull everything (rows gone at the source are deleted) and recompute every month of the marts")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="set a run parameter (repeatable); unknown names or bad values stop the run")
    p.add_argument("--run-id", help="use this run id instead of a new one")
    p.add_argument("--reports-dir", default=REPORTS, help=f"where run reports go (default {REPORTS}/)")
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


def options_from_args(args: argparse.Namespace, project_root: Path) -> RunOptions:
    """How to run, from the command line."""
    return RunOptions(reports_dir=Path(args.reports_dir), notebooks_dir=project_root / "notebooks",
                      steps=selected_steps(args.only, args.from_step, args.until),
                      cell_timeout=args.cell_timeout, log_output=args.log_output,
                      dry_run=args.dry_run, resume=args.resume or "", force=args.force,
                      keep_runs=args.keep_runs)


def writable_folder(path: Path, what: str) -> Path:
    """The folder, created if missing; ConfigError if it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} {path} is not a writable folder ({exc.strerror or exc})") from None
    return path


def locked_run(run: Run) -> int:
    """Execute a run while holding its data directory's lock."""
    data_root = writable_folder(DataLayout.for_source(run.params.data_dir, run.params.source).root, "data_dir")
    writable_folder(run.options.reports_dir, "--reports-dir")
    with run_lock(data_root, run.run_id, say=lambda text: print(text, flush=True)):
        print(f"run {run.run_id}: profile={run.params.profile} source={run.params.source} "
              f"reports in {run.folder}", flush=True)
        return execute_run(run, backends_for(run.params))


def main(argv: Sequence[str] | None, project_root: Path) -> int:
    """Entry point of run_pipeline.py: returns the process exit code."""
    logging.basicConfig(level=os.environ.get("MEMPHIS_INCIDENTS_LOG", "WARNING"),
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        args = parser().parse_args(argv)
        if args.check_source:
            return check_source(parameters_from_args(args))
        options = options_from_args(args, project_root)
        run = resumed_run(check_run_id(args.resume), options) if args.resume \
            else Run(parameters_from_args(args), options)
        code = dry_run(run, backends_for(run.params)) if args.dry_run else locked_run(run)
    except PipelineError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    except OSError as exc:  # the runner's own writes: a full disk, a folder that went away
        logging.debug("the runner failed", exc_info=True)
        print(f"error: {one_line(str(exc))}; nothing more was written, re-run when it is fixed", file=sys.stderr)
        return int(ExitCode.IO_ERROR)
    if code == ExitCode.OK and not args.dry_run:
        report = run.folder / REPORT_PAGE
        print(f"report: {report.resolve() if report.exists() else '(no analysis step in this run)'}")
        print(f"run manifest: {(run.folder / RUN_MANIFEST).resolve()}")
    return code
