#!/usr/bin/env python3
"""`make bench`: the pipeline's speed on the demo source at the original dataset's size.

Measures, each at least --repeats times (medians, with min and max): whole first runs and nightly
incremental runs through the real runner (per step: wall time and peak memory of the kernel and
its JVM), a first run of the demo's default size on a fresh data folder against a forced second
run, the headline aggregation in PySpark (the pipeline's code), DuckDB and pandas, the original
project's partitioning experiment on the embedded warehouse, and papermill's and nbconvert's fixed
cost per notebook. Prints two tables, the targets as ratios to U (DuckDB's aggregation, targets.py)
and every measurement, and writes them, with the machine's description, the last scale run
(`--scale`, scale.py) and the hand-written account in bench/NOTES.md, to --out.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import scale
from engines import ENGINES, EngineRun, run_engine
from layouts import LAYOUTS, Experiment, partitioning_experiment
from measure import CommandFailed
from notebooks import html_seconds, kernel_start_seconds, papermill_seconds
from pipeline import SPARK_STAGE, PipelineRun, run_pipeline
from report import Row, command_line, machine, results_page, table
from targets import LIMITS, first_demo_row, in_units, memory_target, month_read_row, scaled_rows, unit_row

from memphis_incidents.config import RunParameters
from memphis_incidents.execute import ensure_kernel
from memphis_incidents.spark_session import class_archive_path, ensure_class_archive
from memphis_incidents.steps import STEP_NAMES
from memphis_incidents.warehouse.local import LocalWarehouse

BENCH = Path(__file__).resolve().parent
SCALE_FILE = "scale.json"  # beside --out


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_700_000, help="demo rows of the first run (default 1,700,000)")
    p.add_argument("--repeats", type=int, default=3, help="runs of everything timed (default 3; 1 for a smoke)")
    p.add_argument("--out", type=Path, default=BENCH / "results.md", help="where the results page goes")
    p.add_argument("--work", type=Path, default=BENCH / "out", help="scratch folder (emptied afterwards)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: no nightly run and no PySpark engine (the table's code path, fast)")
    p.add_argument("--scale", action="store_true",
                   help="instead: one full run at --rows and one at --scale-rows, and how time and memory grow")
    p.add_argument("--scale-rows", type=int, default=17_000_000, help="the large size of --scale (default 17M)")
    return p.parse_args(argv)


def setup_rows() -> list[Row]:
    """The one-time cost of the first Spark start after an install (done here, before timing)."""
    present = class_archive_path().exists()
    started = time.perf_counter()
    ensure_class_archive()
    ensure_kernel()
    what = "one-time: dump of the JVM class-data archive (first Spark start after install)"
    if present:
        return [Row(what, [], ratio="present from an earlier run")]
    return [Row(what, [time.perf_counter() - started], ratio="paid once per install")]


def pipeline_rows(label: str, runs: list[PipelineRun]) -> list[Row]:
    """Wall time per step and in all, Spark's own time, peak memory per step, CPU and background load."""
    total = statistics.median(r.wall_s for r in runs)
    rows = [Row(f"{label}: total wall, generation to report.html", [r.wall_s for r in runs])]
    for step in STEP_NAMES:
        rows.append(share_row(f"{label}: step {step}", [r.steps[step] for r in runs], total))
    rows.append(share_row(f"{label}: runner (start-up, manifests, report and notebook pages)",
                          [r.runner_s for r in runs], total))
    rows.append(Row(f"{label}: {SPARK_STAGE}", [r.spark_s for r in runs]))
    ahead = [r.session_ready_before_s for r in runs if r.session_ready_before_s is not None]
    if ahead:
        rows.append(Row(f"{label}: Spark session (started ahead) up before the step asked for it", ahead))
    for step in STEP_NAMES:
        rows.append(Row(f"{label}: peak memory, step {step} (kernel + JVM)", [r.step_peak_rss[step] for r in runs],
                        "GiB"))
    rows.append(Row(f"{label}: peak memory, whole run (runner + kernel + JVM)", [r.peak_rss for r in runs], "GiB"))
    cpu = [r.cpu_s for r in runs]
    rows.append(Row(f"{label}: CPU time of all its processes", cpu,
                    ratio=f"{statistics.median(cpu) / total:.2f} cores busy on average"))
    rows.append(Row(f"{label}: other processes' CPU meanwhile", [r.others_cores for r in runs], "cores",
                    ratio="background load on the machine"))
    return rows


def share_row(what: str, samples: list[float], total: float) -> Row:
    return Row(what, samples, ratio=f"{statistics.median(samples) / total:.0%} of the run")


def engine_rows(runs: dict[str, list[EngineRun]]) -> list[Row]:
    """Each engine's whole process, start-up and queries, as multiples of DuckDB's."""
    base = {field: statistics.median(getattr(r, field) for r in runs["duckdb"]) for field in ("process_s", "first_s")}
    rows = []
    for engine in runs:
        label = f"month × category aggregation, {engine}"
        samples = runs[engine]
        rows += [
            Row(f"{label}: whole fresh process", [r.process_s for r in samples],
                ratio=times_of([r.process_s for r in samples], base["process_s"], "DuckDB")),
            Row(f"{label}: start-up (imports, session)", [r.start_s for r in samples]),
            Row(f"{label}: first query", [r.first_s for r in samples],
                ratio=times_of([r.first_s for r in samples], base["first_s"], "DuckDB")),
            Row(f"{label}: same query again", [r.again_s for r in samples]),
            Row(f"{label}: peak memory of the process", [r.peak_rss for r in samples], "GiB"),
        ]
    return rows


def times_of(samples: list[float], base: float, name: str) -> str:
    return f"{statistics.median(samples) / base:.1f}× {name}"


def layout_rows(experiment: Experiment) -> list[Row]:
    """Each query on each layout, as multiples of the warehouse's own layout, the data each reads,
    and the target check."""
    seconds, read = experiment.seconds, experiment.read
    own, unpartitioned = LAYOUTS[0].name, LAYOUTS[-1].name
    queries = list(dict.fromkeys(query for query, _ in seconds))
    rows = []
    for query in queries:
        base = statistics.median(seconds[query, own])
        rows += [Row(f"{query}, {layout.name}", seconds[query, layout.name],
                     ratio=f"{statistics.median(seconds[query, layout.name]) / base:.2f}× the warehouse's layout; "
                           f"reads {read_text(read[query, layout.name])}")
                 for layout in LAYOUTS]
    month = queries[0]
    speedups = [slow / fast for slow, fast in zip(seconds[month, unpartitioned], seconds[month, own])]
    rows.append(Row(f"{month}: speed-up of the partitioned table over the unpartitioned one ({unpartitioned})",
                    speedups, "x", ratio="run by run; no longer a target (row-group statistics skip most "
                                         "of the unpartitioned file)"))
    return rows


def month_read(experiment: Experiment) -> Row:
    """The target line of the partitioning experiment: data read by a one-month query."""
    read, own, unpartitioned = experiment.read, LAYOUTS[0].name, LAYOUTS[-1].name
    month = next(query for query, _ in experiment.seconds)
    (rows_own, bytes_own), (rows_all, bytes_all) = read[month, own], read[month, unpartitioned]
    return month_read_row(month, bytes_all / max(bytes_own, 1), rows_all / max(rows_own, 1))


def read_text(rows_and_bytes: tuple[int, int]) -> str:
    rows, size = rows_and_bytes
    return f"{rows:,} rows, {size / 2**20:.1f} MiB"


def notebook_rows(work: Path, last_run: Path, repeats: int, full_wall: float) -> list[Row]:
    """papermill's and nbconvert's fixed cost per notebook, and what four steps of it add up to."""
    papermill = papermill_seconds(work, repeats)
    four = 4 * statistics.median(papermill)
    analysis = last_run / "04_analysis.ipynb"
    return [
        Row("papermill: one-cell notebook (kernel start, run, shutdown, save)", papermill,
            ratio=f"× 4 steps = {four:.1f} s, {four / full_wall:.0%} of a full run"),
        Row("kernel start alone (until it answers)", kernel_start_seconds(repeats)),
        Row("nbconvert: report.html (code hidden)", html_seconds(analysis, repeats, hide_code=True)),
        Row("nbconvert: one notebook page (code shown; the runner renders four)",
            html_seconds(analysis, repeats, hide_code=False)),
    ]


@dataclass
class Runs:
    """The pipeline runs of one bench: full and nightly at --rows, first and forced at the demo's size."""

    rows: int
    full: list[PipelineRun]
    nightly: list[PipelineRun]
    demo_rows: int
    first: list[PipelineRun]
    forced: list[PipelineRun]


def pipeline_runs(args: argparse.Namespace, work: Path) -> Runs:
    """Full runs (each on a fresh data folder) each followed by a nightly one; then first runs of the
    demo's default size (or --rows if smaller) on a fresh folder, each followed by a forced rerun
    (--quick at the demo's size or less: the full run is that first run)."""
    runs = Runs(args.rows, [], [], min(args.rows, RunParameters().demo_rows), [], [])
    for n in range(args.repeats):
        data, reports = work / f"data-{n}", work / f"reports-{n}"
        print(f"run {n + 1}/{args.repeats}: full, then nightly", flush=True)
        runs.full.append(run_pipeline(args.rows, data, reports, f"bench-full-{n}"))
        if not args.quick:
            runs.nightly.append(run_pipeline(args.rows, data, reports, f"bench-nightly-{n}", day=1))
    reuse = args.quick and runs.demo_rows == args.rows  # the full run was that first run: no nightly after it
    for n in range(args.repeats):
        data, reports = (work / f"data-{n}", work / f"reports-{n}") if reuse else \
            (work / f"demo-{n}", work / f"demo-reports-{n}")
        print(f"demo {n + 1}/{args.repeats}: first run on a fresh folder, then --force --full-refresh", flush=True)
        runs.first.append(runs.full[n] if reuse else run_pipeline(runs.demo_rows, data, reports, f"bench-first-{n}"))
        runs.forced.append(run_pipeline(runs.demo_rows, data, reports, f"bench-forced-{n}", force=True))
    return runs


def target_rows(unit: list[float], runs: Runs, experiment: Experiment, scaled: scale.Scaled | None,
                where: str) -> list[Row]:
    """The issue's table: every target as a ratio to U, met or missed (rows not measured say why)."""
    u, size = statistics.median(unit), f"{runs.rows / 1e6:g}M rows"
    spark = {"full": [r.spark_s for r in runs.full], "nightly": [r.spark_s for r in runs.nightly]}
    rows = [unit_row(unit),
            in_units(f"full run, {size}, generation to report.html", [r.wall_s for r in runs.full], u,
                     LIMITS["full"]),
            in_units("nightly run (one day of new and edited rows)", [r.wall_s for r in runs.nightly], u,
                     LIMITS["nightly"]),
            in_units(f"{SPARK_STAGE}, full run", spark["full"], u,
                     LIMITS["spark_full"]),
            in_units("Spark stage, nightly run", spark["nightly"], u, LIMITS["spark_nightly"]),
            first_demo_row(runs.first, runs.forced, runs.demo_rows),
            memory_target(f"peak memory of any step at {size}", runs.full + runs.nightly, LIMITS["memory"])]
    return [*rows, *scaled_rows(scaled, where), month_read(experiment)]


def bench(args: argparse.Namespace, work: Path, scaled: scale.Scaled | None) -> tuple[list[Row], list[Row], list[str]]:
    """Every measurement: the targets' table, the table of everything, and notes."""
    setup = setup_rows()
    runs = pipeline_runs(args, work)
    warehouse = work / "data-0" / "demo" / "warehouse"
    print("engines", flush=True)
    names = [e for e in ENGINES if not (args.quick and e == "pyspark")]
    engines = {engine: [run_engine(engine, warehouse) for _ in range(args.repeats)] for engine in names}
    digests = {run.digest for runs_of in engines.values() for run in runs_of}
    if len(digests) != 1:
        raise CommandFailed(f"the engines disagree on the aggregation: digests {digests}")
    print("layouts", flush=True)
    experiment = partitioning_experiment(LocalWarehouse(warehouse), work / "layouts", max(args.repeats, 5))
    print("notebooks", flush=True)
    full_wall = statistics.median(r.wall_s for r in runs.full)
    details = [*setup, *pipeline_rows("full run", runs.full),
               *(pipeline_rows("nightly run", runs.nightly) if runs.nightly else []),
               *pipeline_rows("first demo run (fresh data folder)", runs.first),
               *pipeline_rows("forced second demo run", runs.forced), *engine_rows(engines),
               *layout_rows(experiment),
               *notebook_rows(work, work / "reports-0" / "bench-full-0", args.repeats, full_wall)]
    targets = target_rows([r.process_s for r in engines["duckdb"]], runs, experiment, scaled,
                          shown(args.out.parent / SCALE_FILE))
    notes = [f"{args.rows:,} demo rows; {args.repeats} runs of each pipeline run and engine, "
             f"{max(args.repeats, 5)} of each layout query; the layout queries and the DuckDB engine "
             f"found {engines['duckdb'][0].rows:,} month × category rows, and all engines agree on them.",
             f"The demo runs use {runs.demo_rows:,} rows; the JVM class-data archive was made before any "
             "run (as `make install` makes it), so the first run differs from the forced one by its "
             "full pull, load and marts, not by a one-time cost.",
             "Peak memory is the sum of resident set sizes over the process tree, sampled every 50 ms.",
             "A target is met when the median meets it (memory: when the largest run does)."]
    return targets, details, notes


def scale_main(args: argparse.Namespace, work: Path) -> None:
    """`--scale`: the two sizes, their growth table, kept in scale.json beside --out."""
    scaled = scale.run_scale(args.rows, args.scale_rows, work)
    where = args.out.parent / SCALE_FILE
    where.parent.mkdir(parents=True, exist_ok=True)
    scale.save(scaled, where)
    print(scale.scale_section(scaled, shown(where)), f"written to {where} (results.md shows it from the next "
          "`make bench` on)", sep="\n")


def shown(path: Path) -> str:
    """A path as the results page names it: relative to the repository when it lies inside."""
    try:
        return str(path.resolve().relative_to(BENCH.parent))
    except ValueError:
        return str(path)


def main(argv: list[str]) -> int:
    args = parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=args.work))
    started = time.perf_counter()
    scaled = scale.load(args.out.parent / SCALE_FILE)
    try:
        if args.scale:
            scale_main(args, work)
            return 0
        targets, details, notes = bench(args, work, scaled)
    except CommandFailed as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notes_file = BENCH / "NOTES.md"
    account = notes_file.read_text(encoding="utf-8") if notes_file.exists() else ""
    extra = scale.scale_section(scaled, shown(args.out.parent / SCALE_FILE)) + "\n" + account
    page = results_page(command_line(), (time.perf_counter() - started) / 60, [table(targets), table(details)],
                        notes, extra)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print("\n".join(machine()), table(targets), table(details), f"written to {args.out}", sep="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
