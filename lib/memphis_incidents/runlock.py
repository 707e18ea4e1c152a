"""One run at a time per data directory: an OS file lock that dies with its holder.

`fcntl.flock` is released by the kernel when the holding process exits, however it exits. The lock
file names the holder while it runs, so a refused run can say which run is in progress, and is
emptied when the holder finishes: a name still there when the next run takes the lock is a run
that was killed. Processes a killed runner started (notebook kernels, the Spark JVM) outlive it for
a moment and may still be writing (one it had forked but not yet exec'd even holds the lock), so
every process of a run carries RUN_ENV (the lock's path) in its environment, and a run starts only
when no process of an earlier run is left: it waits for them (a minute at most), then takes over.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import RunLockedError
from .layout import LOCK

RUN_ENV = "MEMPHIS_INCIDENTS_RUN_LOCK"
HOLDER_WAIT_S = 2.0  # a holder that has just taken the lock writes its name at once
LEFTOVER_WAIT_S = 60.0  # a killed runner's kernels exit within a second or two of it
POLL_S = 0.1


@contextmanager
def run_lock(folder: str | Path, run_id: str, say: Callable[[str], None] = print) -> Iterator[dict[str, Any]]:
    """Hold the folder's run lock for the duration, or raise RunLockedError at once.

    Yields the holder a killed run left in the lock file ({} if the last run ended normally),
    after waiting for the processes that run left behind; `say` reports the takeover.
    """
    path = Path(folder) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if not acquired(handle):
            await_release(handle, path, say)
        killed = holder(path)
        if killed:
            say(f"{run_name(killed)} ended without releasing its lock (killed?); taking it over")
        await_leftovers(path, killed, say)
        try:
            write_holder(handle, run_id)
        except OSError as exc:  # a full disk, typically: say which file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        try:
            with run_environment(path):
                yield killed
        finally:
            handle.truncate(0)


def acquired(handle: Any) -> bool:
    """Take the lock if it is free."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def await_release(handle: Any, path: Path, say: Callable[[str], None]) -> None:
    """Refuse at once if a live run holds the lock; if its holder is dead, processes it started
    still hold it: wait (up to LEFTOVER_WAIT_S) for them to let go."""
    found = live_holder(path)
    if running(found.get("pid")):
        raise RunLockedError(f"another run is in progress on {path.parent} ({describe(found)}); "
                             "wait for it to finish")
    say(f"waiting for processes of {run_name(found)}, which ended without releasing its lock, to let go of it")
    deadline = time.monotonic() + LEFTOVER_WAIT_S
    while not acquired(handle):
        if time.monotonic() > deadline:
            raise RunLockedError(f"{run_name(found)} ended, but processes it started still hold the lock on "
                                 f"{path.parent}; stop them, then re-run")
        time.sleep(POLL_S)


def holder(path: Path) -> dict[str, Any]:
    """The holder the lock file names ({} if none or unreadable)."""
    try:
        found = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def live_holder(path: Path) -> dict[str, Any]:
    """The holder of a busy lock, given a moment to write its name if it has only just taken it."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    found = holder(path)
    while not running(found.get("pid")) and time.monotonic() < deadline:
        time.sleep(POLL_S / 2)
        found = holder(path)
    return found


def run_name(found: dict[str, Any]) -> str:
    return f"run {found['run_id']}" if found.get("run_id") else "an earlier run"


def describe(found: dict[str, Any]) -> str:
    if not found:
        return "holder unknown"
    return f"run {found.get('run_id', '?')}, pid {found.get('pid', '?')}, since {found.get('since', '?')}"


def running(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_holder(handle: Any, run_id: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"run_id": run_id, "pid": os.getpid(),
                             "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
    handle.flush()


def leftover_processes(path: Path) -> list[int]:
    """Live processes, other than this one, that a run on this lock started (they carry RUN_ENV)."""
    marker = f"{RUN_ENV}={path}".encode()
    proc = Path("/proc")
    found = []
    for entry in proc.iterdir() if proc.is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def await_leftovers(path: Path, killed: dict[str, Any], say: Callable[[str], None]) -> None:
    """Wait for processes an earlier run left behind to exit; RunLockedError if they do not."""
    deadline = time.monotonic() + LEFTOVER_WAIT_S
    pids = leftover_processes(path)
    if pids:
        say(f"waiting for {len(pids)} process(es) of {run_name(killed)} to exit: "
            f"pids {' '.join(map(str, pids))}")
    while pids:
        if time.monotonic() > deadline:
            raise RunLockedError(f"processes of {run_name(killed)} are still running on "
                                 f"{path.parent} (pids {' '.join(map(str, pids))}); stop them, then re-run")
        time.sleep(POLL_S)
        pids = leftover_processes(path)


@contextmanager
def run_environment(path: Path) -> Iterator[None]:
    """Mark every process this run starts (kernels and theirs) as belonging to a run on this lock."""
    previous = os.environ.get(RUN_ENV)
    os.environ[RUN_ENV] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_ENV, None)
        else:
            os.environ[RUN_ENV] = previous
