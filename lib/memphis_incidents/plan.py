"""Planning a run: which steps were asked for, and for each whether to run, keep or skip it and why
(a step whose fingerprint is unchanged since its last success is skipped); `--dry-run` prints it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import papermill

from .backends import Backends
from .config import RunParameters
from .errors import ConfigError
from .fingerprint import fingerprint, skip_reason
from .manifest import Run, StepResult
from .steps import STEP_NAMES, STEPS, Step


class Decision(NamedTuple):
    """What to do with a step: "run", "keep" (succeeded earlier in a resumed run) or "skip"."""

    action: str
    reason: str
    parts: dict[str, str]  # its fingerprint, when it was taken


def selected_steps(only: str | None, from_step: str | None, until: str | None) -> tuple[Step, ...]:
    """The steps to run, in pipeline order."""
    if only:
        return tuple(s for s in STEPS if s.name == only)
    start = STEP_NAMES.index(from_step) if from_step else 0
    stop = STEP_NAMES.index(until) + 1 if until else len(STEPS)
    if start >= stop:
        raise ConfigError(f"--from {from_step} comes after --until {until}")
    return STEPS[start:stop]


def notebook_parameters(notebook: Path, params: RunParameters) -> dict[str, Any]:
    """The run parameters a notebook declares in its `parameters` cell."""
    declared = papermill.inspect_notebook(str(notebook))
    known = params.as_dict()
    unknown = sorted(set(declared) - set(known))
    if unknown:
        raise ConfigError(f"{notebook.name} declares parameters the runner does not know: {unknown}")
    return {name: known[name] for name in declared}


def plan_step(step: Step, result: StepResult, run: Run, backends: Backends, blocked: bool) -> Decision:
    """Decide what to do with a step, and say why."""
    if run.options.resume and result.status == "succeeded":
        return Decision("keep", "succeeded earlier in this run", {})
    if step not in run.options.steps:
        return Decision("skip", "not selected", {})
    if blocked:
        return Decision("skip", "an earlier step failed", {})
    notebook = run.options.notebooks_dir / step.notebook
    parts = fingerprint(step, notebook, notebook_parameters(notebook, run.params), backends)
    unchanged, why = skip_reason(step, parts, backends)
    if unchanged and not run.options.force:
        return Decision("skip", why, parts)
    return Decision("run", why + (" (--force)" if unchanged else ""), parts)


def dry_run(run: Run, backends: Backends) -> int:
    """Print what would run, with which parameters, and why (inputs as they are now)."""
    print(f"run {run.run_id} (dry run: nothing is executed; inputs as they are now)")
    for step, result in zip(STEPS, run.pending_results()):
        decision = plan_step(step, result, run, backends, blocked=False)
        line = f"  {'run ' if decision.action == 'run' else 'skip'} {step.name:<9} {decision.reason}"
        if decision.action == "run":
            params = notebook_parameters(run.options.notebooks_dir / step.notebook, run.params)
            line += "\n       " + " ".join(f"{k}={v!r}" for k, v in params.items())
        print(line)
    return 0
