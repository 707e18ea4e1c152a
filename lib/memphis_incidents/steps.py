"""The pipeline's steps and what each declares: its notebook, the stage function it runs, what it
reads (the inputs of its fingerprint), what it writes, what its log line summarises and which files
of its run folder a skipped step reuses. The runner, the fingerprint and the notebooks read these
declarations; nothing else knows a step by its name.
"""
from __future__ import annotations

from dataclasses import dataclass

from .layout import REPORT_PAGE


@dataclass(frozen=True)
class Step:
    """One stage of the pipeline and the notebook that runs it."""

    name: str
    notebook: str
    stage: str | None  # "module:function" called with (params, backends); returns the step record
    reads: tuple[str, ...] = ()  # inputs (fingerprint.INPUTS) whose change makes the step run again
    writes: tuple[str, ...] = ()  # what it changes (for readers: nothing decides on it)
    summary: tuple[str, ...] = ()  # step-record keys its log line shows (a mapping is spread out)
    outputs: tuple[str, ...] = ()  # files besides its notebook that a skipped step reuses
    always_runs: bool = False  # asks the outside world, so it is never skipped as unchanged
    prepare: str | None = None  # "module:function" its kernel runs with (params, backends) as it boots,
    #                             at the start of the run, while the steps before it run


STEPS = (
    Step("ingest", "01_ingest.ipynb", "memphis_incidents.ingest:run_ingest",
         writes=("lake",), summary=("rows",), always_runs=True),
    Step("load", "02_warehouse_load.ipynb", "memphis_incidents.load:run_load",
         reads=("pending", "incidents"), writes=("incidents", "quarantine", "state"), summary=("rows",)),
    Step("aggregate", "03_spark_aggregate.ipynb", "memphis_incidents.aggregate:aggregate",
         reads=("incidents",), writes=("marts",), prepare="memphis_incidents.aggregate:prepare"),
    Step("analysis", "04_analysis.ipynb", None,
         reads=("marts", "quarantine", "today"), writes=("report",), outputs=(REPORT_PAGE,)),
)
STEP_NAMES = tuple(s.name for s in STEPS)


def step_named(name: str) -> Step:
    """The step called `name` (a KeyError names the steps there are)."""
    for step in STEPS:
        if step.name == name:
            return step
    raise KeyError(f"no step {name!r}; steps: {', '.join(STEP_NAMES)}")
