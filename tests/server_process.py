"""A server the tests start as a child process on 127.0.0.1: its log, readiness and shutdown."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

LOG_TAIL = 3000  # characters of the server's log shown when it fails to start


class ServerProcess:
    """A command run with its output in `log`; `wait_until` polls until `ready()` is true."""

    name = "server"
    startup_seconds = 60

    def start(self, command: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=dict(env))

    def wait_until(self, ready: Callable[[], bool]) -> float:
        """Seconds until `ready()` holds; RuntimeError with the log's tail if the server exits or is
        not up within `startup_seconds`."""
        started = time.monotonic()
        while time.monotonic() - started < self.startup_seconds:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-LOG_TAIL:]}")
            try:
                if ready():
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not up after {self.startup_seconds} s:\n{self.log.read_text()[-LOG_TAIL:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
