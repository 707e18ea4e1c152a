"""One run at a time per data directory: an OS file lock that dies with its holder.

`fcntl.flock` is released by the kernel when the holding process exits, however it exits, so a
lock left by a killed run is never stale: the next run simply takes it. The lock file also names
the holder so a refused run can say which run is in progress.
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .errors import RunLockedError

LOCK_NAME = ".run.lock"


@contextmanager
def run_lock(folder: str | Path, run_id: str) -> Iterator[None]:
    """Hold the folder's run lock for the duration, or raise RunLockedError at once."""
    path = Path(folder) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(f"another run is in progress on {path.parent} "
                                 f"({_holder(path)}); wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"run_id": run_id, "pid": os.getpid(),
                                 "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
        handle.flush()
        yield
    finally:
        handle.close()


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    return f"run {info.get('run_id', '?')}, pid {info.get('pid', '?')}, since {info.get('since', '?')}"
