"""Measuring a command honestly: wall time, peak memory and CPU time of its whole process tree,
and how busy the rest of the machine was meanwhile.

A step of the pipeline runs in its own kernel process, and Spark's JVM is a child of that kernel,
so memory is the sum of the resident sets of a process and all its descendants, sampled every
SAMPLE_S seconds (shared pages are counted once per process: an upper bound).
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SAMPLE_S = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parents[1]


class CommandFailed(RuntimeError):
    """A measured command failed: the bench stops rather than report a broken run."""


@dataclass
class Tree:
    """What one process and its descendants used, sampled while it ran."""

    command: str = ""
    peak_rss: int = 0
    cpu_s: dict[int, float] = field(default_factory=dict)  # latest cumulative CPU per pid
    last_seen: float = 0.0  # perf_counter of the last sample that found it running (zombies are not)

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu_s.values())

    def sample(self, processes: list[psutil.Process]) -> None:
        rss = 0
        for proc in processes:
            try:
                with proc.oneshot():
                    if proc.status() == psutil.STATUS_ZOMBIE:  # exited, not reaped yet: not running
                        continue
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()  # own time only: reaped children are sampled themselves
                    self.cpu_s[proc.pid] = times.user + times.system
            except psutil.Error:
                continue
            self.last_seen = time.perf_counter()
        self.peak_rss = max(self.peak_rss, rss)


@dataclass
class Measured:
    """A finished command: its exit code, output, wall time, whole-tree use, and the same per
    direct child process (in start order), plus the machine's CPU use by other processes."""

    returncode: int
    stdout: str
    wall_s: float
    tree: Tree
    children: list[Tree]
    others_cores: float


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores, from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def run_measured(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> Measured:
    """Run a command to its end while sampling its process tree."""
    busy_before, started = machine_busy_s(), time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    root = psutil.Process(process.pid)
    tree, children = Tree(), {}
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        sample_tree(root, tree, children)
        time.sleep(SAMPLE_S)
    reader.join()
    wall = time.perf_counter() - started
    others = max(machine_busy_s() - busy_before - tree.cpu_total, 0.0)
    return Measured(process.returncode, "".join(output), wall, tree, list(children.values()), others / wall)


def run_checked(command: list[str], what: str) -> Measured:
    """`run_measured` from the repository root; raises CommandFailed (with the output's tail) on failure."""
    measured = run_measured(command, REPO)
    if measured.returncode != 0:
        raise CommandFailed(f"{what} failed (exit {measured.returncode}):\n{measured.stdout[-3000:]}")
    return measured


def sample_tree(root: psutil.Process, tree: Tree, children: dict[int, Tree]) -> None:
    """One sample of the root's whole tree, and of each direct child's own subtree."""
    try:
        direct = root.children()
        everyone = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    tree.sample(everyone)
    for child in direct:
        try:
            subtree = [child, *child.children(recursive=True)]
        except psutil.Error:
            continue
        tree_of_child = children.setdefault(child.pid, Tree())
        tree_of_child.command = " ".join(safe_cmdline(child)) or tree_of_child.command  # seen before exec, too
        tree_of_child.sample(subtree)


def safe_cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []
