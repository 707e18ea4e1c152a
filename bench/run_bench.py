#!/usr/bin/env python3
"""`make bench`: the pipeline's speed on the demo source at the original dataset's size, in one table.

Measures, each at least --repeats times (medians, with min and max): whole first runs and nightly
incremental runs through the real runner (per step: wall time and peak memory of the kernel and
its JVM), the headline aggregation in PySpark (the pipeline's code), DuckDB and pandas, the original
project's partitioning experiment on the embedded warehouse, and papermill's and nbconvert's fixed
cost per notebook. Prints the table and writes it, with the machine's description and the
hand-written account in bench/NOTES.md, to --out.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engines import ENGINES, EngineRun, run_engine
from layouts import LAYOUTS, Experiment, partitioning_experiment
from measure import CommandFailed
from notebooks import html_seconds, kernel_start_seconds, papermill_seconds
from pipeline import PipelineRun, run_pipeline
from report import GIB, Row, command_line, machine, results_page, table, verdict

from memphis_incidents.execute import ensure_kernel
from memphis_incidents.spark_session import class_archive_path, ensure_class_archive
from memphis_incidents.steps import STEP_NAMES
from memphis_incidents.warehouse.local import LocalWarehouse

BENCH = Path(__file__).resolve().parent
TARGETS = {"full": 40.0, "nightly": 20.0, "spark": 8.0, "memory": 2 * GIB, "month_speedup": 5.0}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_700_000, help="demo rows of the first run (default 1,700,000)")
    p.add_argument("--repeats", type=int, default=3, help="runs of everything timed (default 3; 1 for a smoke)")
    p.add_argument("--out", type=Path, default=BENCH / "results.md", help="where the results page goes")
    p.add_argument("--work", type=Path, default=BENCH / "out", help="scratch folder (emptied afterwards)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: no nightly run and no PySpark engine (the table's code path, fast)")
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


def pipeline_rows(label: str, runs: list[PipelineRun], target_s: float) -> list[Row]:
    """Wall time per step and in all, Spark's own time, peak memory per step, CPU and background load."""
    total = statistics.median(r.wall_s for r in runs)
    rows = [target_row(f"{label}: total wall, generation to report.html", [r.wall_s for r in runs], target_s)]
    for step in STEP_NAMES:
        rows.append(share_row(f"{label}: step {step}", [r.steps[step] for r in runs], total))
    rows.append(share_row(f"{label}: runner (start-up, manifests, report and notebook pages)",
                          [r.runner_s for r in runs], total))
    rows.append(target_row(f"{label}: Spark stage, session start to marts written", [r.spark_s for r in runs],
                           TARGETS["spark"]))
    for step in STEP_NAMES:
        rows.append(memory_row(f"{label}: peak memory, step {step} (kernel + JVM)",
                               [r.step_peak_rss[step] for r in runs]))
    rows.append(Row(f"{label}: peak memory, whole run (runner + kernel + JVM)", [r.peak_rss for r in runs], "GiB"))
    cpu = [r.cpu_s for r in runs]
    rows.append(Row(f"{label}: CPU time of all its processes", cpu,
                    ratio=f"{statistics.median(cpu) / total:.2f} cores busy on average"))
    rows.append(Row(f"{label}: other processes' CPU meanwhile", [r.others_cores for r in runs], "cores",
                    ratio="background load on the machine"))
    return rows


def target_row(what: str, samples: list[float], limit_s: float) -> Row:
    median = statistics.median(samples)
    return Row(what, samples, ratio=f"{median / limit_s:.2f}× target",
               target=f"≤ {limit_s:.0f} s: {verdict(median, limit_s)}")


def share_row(what: str, samples: list[float], total: float) -> Row:
    return Row(what, samples, ratio=f"{statistics.median(samples) / total:.0%} of the run")


def memory_row(what: str, samples: list[float]) -> Row:
    limit = TARGETS["memory"]
    median = statistics.median(samples)
    return Row(what, samples, "GiB", ratio=f"{median / limit:.2f}× limit",
               target=f"≤ 2 GiB: {verdict(max(samples), limit)}")


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
    median = statistics.median(speedups)
    rows.append(Row(f"{month}: speed-up of the partitioned table over the unpartitioned one ({unpartitioned})",
                    speedups, "x", ratio="run by run",
                    target=f"≥ {TARGETS['month_speedup']:.0f}×: {verdict(median, TARGETS['month_speedup'], False)}"))
    (rows_own, bytes_own), (rows_all, bytes_all) = read[month, own], read[month, unpartitioned]
    rows.append(Row(f"{month}: data read by the unpartitioned table ({unpartitioned}) over the partitioned one",
                    [bytes_all / max(bytes_own, 1)], "x",
                    ratio=f"rows scanned: {rows_all / max(rows_own, 1):.1f}×",
                    target="what BigQuery bills; not a target"))
    return rows


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


def bench(args: argparse.Namespace, work: Path) -> tuple[list[Row], list[str]]:
    """Every measurement, in the order of the table."""
    rows = setup_rows()
    full, nightly = [], []
    for n in range(args.repeats):
        data, reports = work / f"data-{n}", work / f"reports-{n}"
        print(f"run {n + 1}/{args.repeats}: full, then nightly", flush=True)
        full.append(run_pipeline(args.rows, data, reports, f"bench-full-{n}"))
        if not args.quick:
            nightly.append(run_pipeline(args.rows, data, reports, f"bench-nightly-{n}", day=1))
    rows += pipeline_rows("full run", full, TARGETS["full"])
    rows += pipeline_rows("nightly run", nightly, TARGETS["nightly"]) if nightly else []
    warehouse = work / "data-0" / "demo" / "warehouse"
    print("engines", flush=True)
    names = [e for e in ENGINES if not (args.quick and e == "pyspark")]
    engines = {engine: [run_engine(engine, warehouse) for _ in range(args.repeats)] for engine in names}
    digests = {run.digest for runs in engines.values() for run in runs}
    if len(digests) != 1:
        raise CommandFailed(f"the engines disagree on the aggregation: digests {digests}")
    rows += engine_rows(engines)
    print("layouts", flush=True)
    rows += layout_rows(partitioning_experiment(LocalWarehouse(warehouse), work / "layouts", max(args.repeats, 5)))
    print("notebooks", flush=True)
    rows += notebook_rows(work, work / "reports-0" / "bench-full-0", args.repeats, statistics.median(
        r.wall_s for r in full))
    notes = [f"{args.rows:,} demo rows; {args.repeats} runs of each pipeline run and engine, "
             f"{max(args.repeats, 5)} of each layout query; the layout queries and the DuckDB engine "
             f"found {engines['duckdb'][0].rows:,} month × category rows, and all three engines agree on them.",
             "Peak memory is the sum of resident set sizes over the process tree, sampled every 50 ms.",
             "A target is met when the median meets it (memory: when the largest run does)."]
    return rows, notes


def main(argv: list[str]) -> int:
    args = parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=args.work))
    started = time.perf_counter()
    try:
        rows, notes = bench(args, work)
    except CommandFailed as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notes_file = BENCH / "NOTES.md"
    account = notes_file.read_text(encoding="utf-8") if notes_file.exists() else ""
    page = results_page(command_line(), (time.perf_counter() - started) / 60, rows, notes, account)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print("\n".join(machine()), table(rows), f"written to {args.out}", sep="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
