"""Shared machinery of the fault suite, and its summary table.

Runs are real `run_pipeline.py` processes against a test ArcGIS layer on 127.0.0.1 (the demo rows,
one per ObjectId). A crash is a real SIGKILL of every process of the run (runner, kernel, Spark JVM)
at a point found by watching the run (a log line, a file, a process), never after a random sleep.
Content is compared as rows without the batch that wrote them, so a re-run equals a clean run.

Every test marked `fault(family)` (here and in tests/) is counted in a table printed at the end:
faults tried, survived, and the rows checked, lost and duplicated that the tests measured.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow.parquet as pq
import pytest
from _pytest.reports import TestReport
from fake_sources import FakeServer
from fake_sources.rows import arcgis_fields
from fake_sources.server import Faults

from memphis_incidents.config import RunParameters, load_preset
from memphis_incidents.profiles import backends_for
from memphis_incidents.sources.demo import demo_snapshot

REPO = Path(__file__).resolve().parents[2]
SOURCE = "memphis-arcgis"
ROWS = 2000
NEXT_DAY = 7  # the night after the first, a week of edits later: 15 rows over 2 pages
PAGE_ROWS = 8
FAST_HTTP = ("-p", "http_retries", "1", "-p", "http_backoff", "0")
UNTIL_LOAD = ("--until", "load")
LOADED = ("incidents", "quarantine")  # what a run --until load writes (marts come from Spark)
POLL_S = 0.001
FAMILIES = ("crash", "concurrency", "bad rows", "bad config", "disk full", "secrets", "source")
SENTINELS = {
    "SOCRATA_APP_TOKEN": "sentinel-socrata-token-5b1e7c",
    "AWS_SECRET_ACCESS_KEY": "sentinel-aws-secret-0d94af",
    "GOOGLE_OAUTH_ACCESS_TOKEN": "sentinel-gcp-access-token-77c2e1",
    "CLOUDSDK_AUTH_ACCESS_TOKEN": "sentinel-gcloud-token-3f08b6",
}
KEY_FILE_SECRET = "sentinel-gcp-private-key-a61d2f"


# ---- the summary table ---------------------------------------------------------------------------
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag every fault test (anywhere in tests/) with its family, so its reports carry it."""
    for item in items:
        marker = item.get_closest_marker("fault")
        if marker:
            item.user_properties.append(("fault", marker.args[0]))


@dataclass
class Ledger:
    """What a fault test measured: faults injected (1 unless counted) and rows checked, lost, duplicated."""

    faults: int = 0
    checked: int = 0
    lost: int = 0
    duplicated: int = 0
    measured: bool = False

    def injected(self, count: int = 1) -> None:
        self.faults += count

    def rows(self, checked: int, lost: int, duplicated: int) -> None:
        self.checked, self.lost, self.duplicated = self.checked + checked, self.lost + lost, \
            self.duplicated + duplicated
        self.measured = True

    def properties(self) -> list[tuple[str, Any]]:
        rows = [("rows", (self.checked, self.lost, self.duplicated))] if self.measured else []
        return [("injected", self.faults or 1), *rows]


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """The test's ledger; what it holds reaches the reports (and the table) when the test ends."""
    book = Ledger()
    yield book
    request.node.user_properties.extend(book.properties())


def outcomes(reports: list[TestReport]) -> dict[str, tuple[str, list[tuple[str, Any]]]]:
    """Per fault test: passed, failed (an expected failure too: a fault still open) or skipped, and
    its fullest user properties (the ledger's reach the teardown report)."""
    found: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
    for report in reports:
        props = list(report.user_properties)
        if not any(name == "fault" for name, _ in props):
            continue
        before, known = found.get(report.nodeid, ("passed", []))
        now = "failed" if hasattr(report, "wasxfail") else report.outcome  # a known, open fault
        outcome = next((o for o in ("failed", "skipped") if o in (before, now)), "passed")
        found[report.nodeid] = (outcome, max(known, props, key=len))
    return found


def family_rows(found: dict[str, tuple[str, list[tuple[str, Any]]]]) -> dict[str, list[int | None]]:
    """Per family: tried, survived, skipped, rows checked, lost, duplicated (None: not measured)."""
    table: dict[str, list[int | None]] = {family: [0, 0, 0, None, None, None] for family in FAMILIES}
    for outcome, props in found.values():
        values = dict(props)
        row = table.setdefault(values["fault"], [0, 0, 0, None, None, None])
        count = values.get("injected", 1)
        if outcome == "skipped":
            row[2] += count
            continue
        row[0] += count
        row[1] += count if outcome == "passed" else 0
        if "rows" in values:
            row[3:] = [(old or 0) + new for old, new in zip(row[3:], values["rows"])]
    return table


def table_lines(table: dict[str, list[int | None]]) -> list[str]:
    """The table as Markdown, one family a line, totals last."""
    head = ["fault family", "tried", "survived", "skipped", "rows checked", "rows lost", "rows duplicated"]
    totals = [sum(r[i] or 0 for r in table.values()) for i in range(6)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for family, row in [*table.items(), ("total", totals)]:
        cells = ["–" if value is None else f"{value:,}" for value in row]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault table after the run (– where a family does not measure rows)."""
    reports = [r for kind in terminalreporter.stats.values() for r in kind if isinstance(r, TestReport)]
    found = outcomes(reports)
    if found:
        terminalreporter.section("fault suite")
        for line in table_lines(family_rows(found)):
            terminalreporter.write_line(line)


# ---- processes -----------------------------------------------------------------------------------
def process_state(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a live process, None if it is gone (zombies count as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return None if state in "ZX" else (int(ppid), state)


def alive(pid: int) -> bool:
    return process_state(pid) is not None


def descendants(root: int) -> list[int]:
    """The root and every process below it (kernels start their own session: still below it)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := process_state(int(entry.name))):
            parents[int(entry.name)] = found[0]
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree += frontier
    return [pid for pid in tree if alive(pid)]


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 300,
               run: "RunProcess | None" = None) -> Any:
    """Poll until `condition` holds; fail naming `what` (and the run's output if it ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if run is not None and run.popen.poll() is not None:
            pytest.fail(f"run {run.run_id} ended (exit {run.popen.returncode}) before {what}:\n"
                        f"{run.stdout()}\n{run.stderr()}")
        time.sleep(POLL_S)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@dataclass
class RunProcess:
    """A `run_pipeline.py` process in its own session, its output going to log files."""

    run_id: str
    popen: subprocess.Popen
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait(self, timeout: float = 600) -> int:
        return self.popen.wait(timeout)

    def processes(self) -> list[int]:
        return descendants(self.popen.pid)

    def runs(self, program: str) -> bool:
        """Whether a process of this run is `program` (for example java: Spark is up)."""
        return any(command_name(pid) == program for pid in self.processes())

    def kernel(self) -> list[int]:
        """The run's notebook kernel and the processes below it (none while no kernel runs)."""
        kernels = [pid for pid in self.processes() if b"ipykernel" in command_line(pid)]
        return [pid for kernel in kernels for pid in descendants(kernel)]

    def kill(self) -> None:
        """kill -9 of the whole run at one instant: freeze every process, then SIGKILL them all."""
        frozen: list[int] = []
        while new := [pid for pid in self.processes() if pid not in frozen]:
            signal_all(new, signal.SIGSTOP)
            frozen += new
        signal_all(frozen, signal.SIGKILL)
        self.popen.wait()
        wait_until(lambda: not any(alive(pid) for pid in frozen), "the killed run's processes to exit", 60)


# ---- readers -------------------------------------------------------------------------------------
def visible_files(*roots: Path) -> Iterator[Path]:
    """Files a reader can see: none under a hidden name (staging folders, temp files, locks)."""
    for root in roots:
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            yield from (Path(folder, name) for name in files if not name.startswith("."))


def incomplete(path: Path) -> str | None:
    """Why a file is not whole (a Parquet footer, JSON or closing </html> missing), or None."""
    try:
        if path.suffix == ".parquet":
            pq.read_metadata(path)
        elif path.suffix in (".json", ".ipynb"):
            json.loads(path.read_bytes())
        elif path.suffix == ".html" and not path.read_bytes().rstrip().endswith(b"</html>"):
            return "no closing </html>"
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - any failure to read is what we look for
        return f"{type(exc).__name__}: {exc}"
    return None


class PartialFileReader:
    """A reader that keeps reading every visible file under some folders while runs write them.

    `partial` maps each file it ever found incomplete to why; hidden names are not visible.
    """

    def __init__(self, *roots: Path):
        self.roots = roots
        self.partial: dict[str, str] = {}
        self.files_read = 0
        self._seen: dict[Path, tuple[int, int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while not self._stop.wait(POLL_S):
            for path in list(visible_files(*self.roots)):
                self._check(path)

    def _check(self, path: Path) -> None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return
        version = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._seen.get(path) == version:
            return
        self._seen[path] = version
        self.files_read += 1
        problem = incomplete(path)
        if problem:
            self.partial[str(path)] = problem

    def assert_no_partial_file(self) -> None:
        """It read files, and none of them was ever incomplete."""
        assert self.files_read, "the reader read nothing"
        assert not self.partial, "\n".join(f"{path}: {why}" for path, why in sorted(self.partial.items()))

    def __enter__(self) -> "PartialFileReader":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for path in visible_files(*self.roots):  # and once more, after the last write
            self._check(path)


# ---- content -------------------------------------------------------------------------------------
def parquet_rows(files: list[Path]) -> Counter:
    """Rows of some Parquet files as a multiset of tuples."""
    rows: Counter = Counter()
    for file in files:
        rows.update(tuple(row.values()) for row in pq.read_table(file).to_pylist())
    return rows


@dataclass(frozen=True)
class Snapshot:
    """A data directory's content: incidents, quarantine and marts rows (without batch ids), watermark."""

    incidents: Counter
    quarantine: Counter
    marts: Counter
    watermark: str | None

    @classmethod
    def of(cls, data_dir: Path) -> "Snapshot":
        """Read as an analyst would: the warehouse's views (DuckDB), the marts' live version."""
        backends = backends_for(RunParameters(data_dir=str(data_dir), source=SOURCE))
        warehouse = backends.warehouse
        with warehouse.connect() as con:
            views = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
            incidents, quarantine = (
                Counter(con.execute(f"SELECT * EXCLUDE (batch_id) FROM {view}").fetchall())
                if view in views else Counter() for view in ("incidents", "quarantine"))
        marts = warehouse.marts_dir.current
        mart_rows: Counter = Counter()
        for mart in sorted(marts.iterdir()) if marts else []:
            rows = parquet_rows(sorted(mart.glob("*.parquet")))
            mart_rows.update((mart.name, *row) for row in rows.elements())
        return cls(incidents, quarantine, mart_rows, backends.state.watermark)


def digest(rows: Counter) -> str:
    """A content hash of a multiset of rows (order-free)."""
    return hashlib.sha256("\n".join(sorted(map(repr, rows.elements()))).encode()).hexdigest()


def assert_same_content(got: Snapshot, want: Snapshot, ledger: Ledger,
                        parts: tuple[str, ...] = ("incidents", "quarantine", "marts")) -> None:
    """Equal content hashes per part and the same watermark; rows lost and duplicated go to the ledger."""
    checked = lost = extra = 0
    samples = []
    for part in parts:
        have, expected = getattr(got, part), getattr(want, part)
        missing, more = expected - have, have - expected
        checked += sum(expected.values())
        lost += sum(missing.values())
        extra += sum(more.values())
        samples += [f"{part} lost: {row}" for row in list(missing)[:2]]
        samples += [f"{part} extra: {row}" for row in list(more)[:2]]
    ledger.rows(checked, lost, extra)
    assert (lost, extra) == (0, 0), f"{lost} rows lost, {extra} duplicated or extra:\n" + "\n".join(samples)
    assert [digest(getattr(got, p)) for p in parts] == [digest(getattr(want, p)) for p in parts]
    assert got.watermark == want.watermark


# ---- the source, the pipeline and the reference nights -------------------------------------------
@functools.lru_cache(maxsize=None)
def layer_rows(day: int) -> tuple[dict[str, Any], ...]:
    """The demo rows of `day` as a real layer holds them: one row per ObjectId (the last)."""
    return tuple({row["ObjectId"]: row for row in demo_snapshot(ROWS, 42, day).to_pylist()}.values())


@dataclass
class SourceServer:
    """The ArcGIS layer (and room for Socrata datasets) the suite's runs pull from."""

    server: FakeServer
    url: str

    def serve(self, day: int) -> None:
        """Serve the layer as it is on `day`, with no faults and a fresh request log."""
        next(iter(self.server.arcgis.values())).rows = [dict(row) for row in layer_rows(day)]
        self.server.faults = Faults()
        self.server.requests.clear()


@pytest.fixture(scope="session")
def source_server() -> Iterator[SourceServer]:
    with FakeServer() as server:
        url = server.add_arcgis(list(layer_rows(0)), arcgis_fields(load_preset(SOURCE)), max_records=PAGE_ROWS)
        yield SourceServer(server, url)


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the suite's shared runs write."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the sentinel cloud key file (the one place a secret may be)."""
    return tmp_path_factory.mktemp("credentials")


@pytest.fixture(scope="session")
def runner_env(credentials: Path) -> dict[str, str]:
    """The environment of every run: sentinel secrets set, a sentinel cloud key file named."""
    key_file = credentials / "sentinel-service-account.json"
    key_file.write_text(json.dumps({"type": "service_account", "private_key": KEY_FILE_SECRET,
                                    "client_email": "sentinel@example.invalid"}))
    return {**os.environ, **SENTINELS, "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)}


@dataclass
class Pipeline:
    """A data directory and reports folder that runs of one source work on, and its logs."""

    root: Path
    url: str
    env: dict[str, str]
    source: str = SOURCE

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def store(self) -> Path:
        """The source's folder in the data directory (lake, warehouse, state, lock)."""
        return self.data / self.source

    def start(self, run_id: str, *extra: str, env: dict[str, str] | None = None) -> RunProcess:
        """Start a run in its own session (a kill of it reaches nothing else)."""
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out, err = logs / f"{run_id}.out", logs / f"{run_id}.err"
        command = [sys.executable, str(REPO / "run_pipeline.py"), "--source", self.source,
                   "-p", "base_url", self.url, "-p", "data_dir", str(self.data),
                   "--reports-dir", str(self.reports), "--run-id", run_id, *FAST_HTTP, *extra]
        with open(out, "w") as stdout, open(err, "w") as stderr:
            popen = subprocess.Popen(command, cwd=REPO, stdout=stdout, stderr=stderr,
                                     env=env or self.env, start_new_session=True)
        return RunProcess(run_id, popen, out, err)

    def run(self, run_id: str, *extra: str, expect: int = 0, **options: Any) -> RunProcess:
        """A run to its end, which must exit with `expect`."""
        finished = self.start(run_id, *extra, **options)
        code = finished.wait()
        assert code == expect, f"run {run_id} exited {code}, not {expect}:\n{finished.stdout()}{finished.stderr()}"
        return finished

    def snapshot(self) -> Snapshot:
        return Snapshot.of(self.data)

    def lake_batches(self) -> list[str]:
        """The raw batches a reader sees as complete (their _batch.json written)."""
        metas = (self.store / "raw").glob("*/_batch.json")
        return sorted(meta.parent.name.removeprefix("batch_id=") for meta in metas)

    def copy_to(self, root: Path) -> "Pipeline":
        shutil.copytree(self.root, root, symlinks=True, dirs_exist_ok=True)
        return Pipeline(root, self.url, self.env, self.source)


@dataclass
class Nights:
    """Clean reference runs: the first night (a full pull) and the next night on top of it."""

    after_first: Pipeline
    first: Snapshot
    next: Snapshot


@pytest.fixture(scope="session")
def nights(source_server: SourceServer, runs_root: Path, runner_env: dict[str, str]) -> Nights:
    """Two clean nights (the first without its report, which nothing here reads); a copy of the
    data after the first is kept."""
    clean = Pipeline(runs_root / "clean", source_server.url, runner_env)
    source_server.serve(0)
    clean.run("clean-night-1", "--until", "aggregate")
    after_first = clean.copy_to(runs_root / "after-first-night")
    first = clean.snapshot()
    source_server.serve(NEXT_DAY)
    clean.run("clean-night-2")
    return Nights(after_first, first, clean.snapshot())


@pytest.fixture
def next_night(nights: Nights, source_server: SourceServer, tmp_path: Path) -> Pipeline:
    """A copy of the data after the clean first night, with the source as it is the next night."""
    source_server.serve(NEXT_DAY)
    return nights.after_first.copy_to(tmp_path / "pipeline")


@pytest.fixture
def first_night(source_server: SourceServer, runner_env: dict[str, str], tmp_path: Path) -> Pipeline:
    """An empty data directory, with the source as it is on the first night."""
    source_server.serve(0)
    return Pipeline(tmp_path / "pipeline", source_server.url, runner_env)


# ---- small filesystems ---------------------------------------------------------------------------
@contextmanager
def small_filesystem(folder: Path, size: str, options: str = "") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `folder`, keeping what the folder held; skips where impossible."""
    aside = folder.with_name(folder.name + ".aside")
    folder.mkdir(parents=True, exist_ok=True)
    folder.rename(aside)
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True) if shutil.which("mount") else None
    if mounted is None or mounted.returncode:
        folder.rmdir()
        aside.rename(folder)
        why = mounted.stderr.strip() if mounted else "no mount command"
        pytest.skip(f"cannot mount a small filesystem here ({why}); needs root on Linux")
    try:
        shutil.copytree(aside, folder, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(aside)
        if options:
            subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)


def fill(folder: Path) -> Path:
    """Use up every free byte of the filesystem holding `folder`, with a hidden filler file."""
    filler = folder / ".filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (bytes(1 << 20), bytes(4096), bytes(1)):
            try:
                while handle.write(chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    assert os.statvfs(folder).f_bavail == 0
    return filler
