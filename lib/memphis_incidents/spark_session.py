"""The Spark session helper: local mode tuned for a laptop, a cluster master, or Spark Connect.

Speed on a laptop (measured in bench/results.md and bench/NOTES.md): the driver JVM starts from a
class-data archive dumped once per install and compiles with C1 only (a short job never repays C2).
A step's kernel that boots while earlier steps run can start its local session ahead
(`start_ahead`), so the step finds the driver JVM up.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pyspark
from pyspark import SparkContext
from pyspark.sql import SparkSession

SESSION_CONF = {  # every session this package starts itself
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.compression.codec": "zstd",
}
LAPTOP_CONF = {  # local mode: a few small partitions, and no adaptive re-planning (bench/NOTES.md)
    **SESSION_CONF,
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    # Adaptive execution re-plans after every shuffle stage: worth it on a cluster, where it merges
    # small partitions and picks joins; in local mode, with four partitions and an explicit broadcast,
    # it only adds about a second to the aggregation.
    "spark.sql.adaptive.enabled": "false",
    # Enough for a 17M-row full run, whose step then peaks at 2.7 GiB with its kernel (3.1 GiB with
    # 2g: the JVM grows into its heap before the partials are collected); 1.7M rows use a fraction.
    "spark.driver.memory": "1536m",
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "1024",  # list month folders here, not in a job
}
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xlog:cds=off", "-Xlog:cds+dynamic=off")
ARCHIVE_DUMPER = "memphis_incidents.aggregate"  # runs every mart once in a JVM that dumps its classes
log = logging.getLogger(__name__)


@dataclass
class Ahead:
    """A local session being started in the background of this process."""

    key: tuple[Any, ...]
    session: Future[SparkSession] = field(default_factory=Future)
    ready_at: float | None = None  # when the session was up


_ahead: list[Ahead] = []  # at most one: the session started ahead and not handed out yet
handed_over: dict[str, Any] = {}  # how the last session handed out came about (for the step record)


def start_ahead(master: str, extra_conf: dict[str, str] | None) -> None:
    """Start in a background thread the local session spark_session(master, "", extra_conf) would
    start; returns at once. A failed start is left for spark_session() to meet and report."""
    ahead = Ahead(session_key(master, "", extra_conf))

    def start() -> None:
        try:
            spark = new_session(master, "", extra_conf)
        except Exception as exc:  # noqa: BLE001 - spark_session() starts again and reports it
            ahead.session.set_exception(exc)
            return
        ahead.ready_at = time.perf_counter()
        ahead.session.set_result(spark)

    _ahead[:] = [ahead]
    threading.Thread(target=start, name="spark-ahead", daemon=True).start()


def session_key(master: str, remote: str, extra_conf: dict[str, str] | None) -> tuple[Any, ...]:
    return master, remote, tuple(sorted((extra_conf or {}).items()))


def spark_session(master: str = "local[*]", remote: str = "", extra_conf: dict[str, str] | None = None) -> SparkSession:
    """A Spark session: Spark Connect when `remote` is set (sc://host:port), else `master`; the one
    started ahead for the same settings if there is one (waiting for it if it is still starting).

    `extra_conf` adds settings a back end needs (for example a connector package on GCP).
    """
    asked = time.perf_counter()
    ahead = _ahead.pop() if _ahead else None
    if ahead is not None:
        try:
            spark = ahead.session.result()
        except Exception:  # noqa: BLE001 - start it here, where its error is reported
            pass
        else:
            if ahead.key != session_key(master, remote, extra_conf):
                stop_session(spark)  # other settings (a JVM's heap and flags are fixed at its launch)
                return spark_session(master, remote, extra_conf)
            handed_over.clear()
            handed_over.update(started_ahead=True, wait_s=round(time.perf_counter() - asked, 2),
                               ready_before_s=round(max(0.0, asked - (ahead.ready_at or asked)), 2))
            return spark
    spark = new_session(master, remote, extra_conf)
    handed_over.clear()
    handed_over.update(started_ahead=False, wait_s=round(time.perf_counter() - asked, 2))
    return spark


def new_session(master: str, remote: str, extra_conf: dict[str, str] | None,
                app: str = "memphis-incidents") -> SparkSession:
    """A session started here and now (see spark_session)."""
    if remote:
        return SparkSession.builder.remote(remote).appName(app).getOrCreate()
    # pyspark marks a process (and so every process it starts) as Connect-only once it has made a
    # Connect session; a local session is what was asked for here.
    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf = {**(LAPTOP_CONF if master.startswith("local") else SESSION_CONF),
            "spark.driver.extraJavaOptions": java_options(ensure_class_archive()), **(extra_conf or {})}
    return local_session(master, app, conf)


def local_session(master: str, app: str, conf: dict[str, str]) -> SparkSession:
    """A session on a driver JVM of our own, started with `conf`."""
    builder = SparkSession.builder.master(master).appName(app)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stop_session(spark: SparkSession) -> None:
    """Stop `spark`, and end the driver JVM if this process launched it. SparkContext.stop() leaves
    py4j's gateway JVM running with the heap it grew (2.2 GiB after a 17M-row run, kept beside the
    marts' derive for nothing); closing its standard input ends it (PythonGatewayServer exits on
    EOF). A later session in this process launches a new JVM."""
    spark.stop()
    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    # A Spark Connect session (another class) has no JVM here; a gateway without `proc` is a JVM
    # this process did not launch.
    if not isinstance(spark, SparkSession) or gateway is None or proc is None:
        return
    with SparkContext._lock:
        SparkContext._gateway = None
        SparkContext._jvm = None
    gateway.shutdown()
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def java_options(archive: Path | None, dump_to: Path | None = None) -> str:
    """Driver JVM flags: quiet logs, fast start, and the class-data archive to map (or to write)."""
    log_config = resources.files(__package__).joinpath("log4j2.properties")
    flags = [f"-Dlog4j.configurationFile=file:{log_config}", *JVM_OPTIONS]
    if archive is not None:
        flags.append(f"-XX:SharedArchiveFile={archive}")
    if dump_to is not None:
        flags.append(f"-XX:ArchiveClassesAtExit={dump_to}")
    return " ".join(flags)


# ---- class-data archive ----------------------------------------------------------------------------
def class_archive_path() -> Path:
    """Where this install keeps the JVM class-data archive: per Spark version and Java binary,
    since an archive only maps into the JVM and class path it was dumped from."""
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else Path(shutil.which("java") or "java")
    java = java.resolve()
    stamp = f"{java}:{java.stat().st_mtime_ns if java.exists() else 0}:{pyspark.__version__}"
    key = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    return Path(sys.prefix) / "share" / "memphis-incidents" / f"spark-{pyspark.__version__}-{key}.jsa"


def ensure_class_archive() -> Path | None:
    """The class-data archive, dumped once per install by a small Spark job in a child process.

    Mapping it instead of reading some 10,000 classes out of 280 jars saves seconds at every start
    (the first start after an install pays the dump once). None if it cannot be made here.
    """
    archive = class_archive_path()
    if archive.exists():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    staged = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
    # The JVM writes the archive as it exits, after the child Python; it shares the child's output
    # pipes, so run() returns only once the JVM has exited and the archive is complete.
    done = subprocess.run([sys.executable, "-m", ARCHIVE_DUMPER, "--dump-class-archive", str(staged)],
                          capture_output=True, text=True, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    if done.returncode != 0 or not staged.exists():
        log.warning("no JVM class-data archive (Spark starts slower): %s", done.stderr[-2000:])
        staged.unlink(missing_ok=True)
        return None
    os.replace(staged, archive)
    return archive
