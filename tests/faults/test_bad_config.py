"""Bad configuration and parameters: wrong types, unknown keys, missing or unwritable paths, an
unknown preset. Each ends in one line on stderr, exit code 2 (bad parameters), no traceback, and no
step run. Real processes for the listed cases; properties (hypothesis) over any parameters and any
preset table, in process.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memphis_incidents.config import PRESETS_ENV, RunParameters, load_preset
from memphis_incidents.errors import ConfigError, ExitCode
from memphis_incidents.runner import main

from .conftest import REPO, Ledger, small_filesystem

pytestmark = pytest.mark.fault("bad config")
NAMES = [f.name for f in fields(RunParameters)]
Case = Callable[[Path, ExitStack], tuple[list[str], dict[str, str]]]


def folders(data: Path, reports: Path, *args: str, **env: str) -> tuple[list[str], dict[str, str]]:
    return ["-p", "data_dir", str(data), "--reports-dir", str(reports), *args], env


def plain(*args: str, **env: str) -> Case:
    """A case on fresh folders: just these arguments and environment."""
    return lambda tmp, stack: folders(tmp / "data", tmp / "reports", *args, **env)


def read_only(tmp: Path, stack: ExitStack) -> Path:
    return stack.enter_context(small_filesystem(tmp / "read-only", "1m", options="ro"))


def data_dir_is_a_file(tmp: Path, stack: ExitStack) -> tuple[list[str], dict[str, str]]:
    (tmp / "data").write_text("not a folder")
    return folders(tmp / "data", tmp / "reports")


def presets_file(text: str, source: str = "demo") -> Case:
    """A case with a presets file (MEMPHIS_INCIDENTS_PRESETS) holding `text`, run on `source`."""
    def case(tmp: Path, stack: ExitStack) -> tuple[list[str], dict[str, str]]:
        (tmp / "presets.toml").write_text(text)
        return folders(tmp / "data", tmp / "reports", "--source", source,
                       **{PRESETS_ENV: str(tmp / "presets.toml")})
    return case


def damaged_manifest(tmp: Path, stack: ExitStack) -> tuple[list[str], dict[str, str]]:
    (tmp / "reports" / "r1").mkdir(parents=True)
    (tmp / "reports" / "r1" / "run.json").write_text('{"run_id": "r1", "status": "fail')
    return ["--resume", "r1", "--reports-dir", str(tmp / "reports")], {}


CASES: dict[str, tuple[Case, str]] = {
    "wrong type": (plain("-p", "demo_rows", "many"), "parameter demo_rows must be int"),
    "wrong type, bool": (plain("-p", "full_refresh", "maybe"), "parameter full_refresh must be bool"),
    "not a number": (plain("-p", "max_reject_share", "nan"), "max_reject_share must be a finite float"),
    "out of range": (plain("-p", "max_reject_share", "2"), "max_reject_share must be between 0 and 1"),
    "unknown key": (plain("-p", "demo_rowz", "5"), "unknown parameter(s) demo_rowz"),
    "given twice": (plain("-p", "demo_rows", "5", "-p", "demo_rows", "6"), "parameter demo_rows given twice"),
    "unknown preset": (plain("--source", "memphis-2025"), "unknown source 'memphis-2025'"),
    "unknown profile": (plain("--profile", "cloud"), "invalid choice: 'cloud'"),
    "missing value": (plain("-p", "demo_rows"), "expected 2 arguments"),
    "negative retention": (plain("--keep-runs", "-1"), "--keep-runs: must be a whole number of 1 or more"),
    "zero timeout": (plain("--cell-timeout", "0"), "--cell-timeout: must be a whole number of 1 or more"),
    "steps reversed": (plain("--from", "analysis", "--until", "ingest"), "--from analysis comes after --until"),
    "run id escapes": (plain("--run-id", "../elsewhere"), "run id '../elsewhere' cannot name a folder"),
    "data_dir is a file": (data_dir_is_a_file, "is not a writable folder"),
    "data_dir read-only": (lambda tmp, stack: folders(read_only(tmp, stack) / "data", tmp / "reports"),
                           "is not a writable folder (Read-only file system)"),
    "reports read-only": (lambda tmp, stack: folders(tmp / "data", read_only(tmp, stack) / "reports"),
                          "--reports-dir"),
    "presets file missing": (plain(**{PRESETS_ENV: "/nonexistent/presets.toml"}), "cannot read presets file"),
    "presets: wrong type": (presets_file('[demo]\nfields = 5\n'), "fields must be a table"),
    "presets: not a table": (presets_file('demo = "memphis-arcgis"\n'), "presets must be tables"),
    "presets: unknown key": (presets_file('[x]\nfields = "memphis-arcgis"\ncolour = "red"\n', "x"),
                             "unknown key(s) colour"),
    "resume: missing run": (lambda tmp, stack: (["--resume", "nope", "--reports-dir", str(tmp)], {}),
                            "no run nope"),
    "resume: damaged run.json": (damaged_manifest, "is damaged"),
    "gcp: missing config": (plain("--profile", "gcp", MEMPHIS_GCP_CONFIG="/nonexistent/gcp.toml"),
                            "/nonexistent/gcp.toml"),
}


def run_files(root: Path) -> set[Path]:
    return set(root.rglob("run.json"))


@pytest.mark.parametrize("name", CASES)
def test_a_bad_parameter_stops_the_run_with_one_line_and_exit_code_2(tmp_path: Path, name: str) -> None:
    build, words = CASES[name]
    with ExitStack() as stack:
        args, env = build(tmp_path, stack)
        before = run_files(tmp_path)
        done = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), *args], cwd=REPO,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == ExitCode.BAD_PARAMETERS, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "step=" not in done.stdout
    assert run_files(tmp_path) == before


# ---- properties ----------------------------------------------------------------------------------
TRICKY_TEXT = ["1", "-1", "0.5", "1e999", "nan", "-inf", "true", "yes", "--5", "²", "1_000", " 7 ", "", "\n",
               "../x", "gcp", "demo", "memphis-arcgis"]
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.sampled_from(TRICKY_TEXT)
json_values = (scalars | st.lists(scalars, max_size=3)
               | st.dictionaries(st.text(max_size=5), scalars, max_size=3))
any_parameters = (st.dictionaries(st.sampled_from(NAMES), json_values, min_size=1, max_size=2)
                  | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=12), json_values, max_size=3))


PROPERTY = settings(deadline=None,  # the ledger fixture only counts examples: shared safely
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@settings(PROPERTY, max_examples=300)
@given(values=any_parameters)
def test_any_parameters_are_taken_with_their_declared_types_or_refused(
        values: dict[str, Any], ledger: Ledger) -> None:
    ledger.injected()
    try:
        params = RunParameters.from_mapping(values)
    except ConfigError:
        return
    for field in fields(RunParameters):
        value = getattr(params, field.name)
        assert type(value).__name__ == field.type
        assert not isinstance(value, float) or math.isfinite(value)


def dry_run(args: list[str]) -> tuple[int, str]:
    """main(--dry-run ...) in process: exit code and stderr (argparse's exit included)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["--dry-run", *args], REPO)
        except SystemExit as exit_:
            code = exit_.code
    return code, err.getvalue()


@settings(PROPERTY, max_examples=40)
@given(pairs=st.lists(st.tuples(st.sampled_from([n for n in NAMES if n != "profile"]) | st.text(max_size=8),
                          st.text(max_size=12) | st.sampled_from(["1", "-3", "2.5", "nan", "inf", "true"])),
                max_size=4))
def test_any_command_line_parameters_run_dry_or_stop_with_one_line(
        pairs: list[tuple[str, str]], ledger: Ledger) -> None:
    ledger.injected()
    args = [part for name, value in pairs for part in ("-p", name, value)]
    code, err = dry_run(args)
    assert code in (0, ExitCode.BAD_PARAMETERS)
    assert code == 0 or (len(err.strip().splitlines()) == 1 and err.startswith("error: ")), err


def toml(value: Any) -> str:
    """A TOML literal for a JSON-like value (strings as JSON, which TOML mostly accepts)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


PRESET_KEYS = {"kind": "arcgis", "title": "t", "url": "http://127.0.0.1:9/x", "timestamps": "epoch_ms_utc",
               "updated_field": "EditDate", "omissions": "", "fields": "memphis-arcgis"}
preset_tables = st.fixed_dictionaries(
    {}, optional={key: st.just(good) | json_values for key, good in PRESET_KEYS.items()}
).flatmap(lambda table: st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=2)
          .map(lambda extra: {**extra, **table}))


@settings(PROPERTY, max_examples=100)
@given(table=preset_tables)
def test_any_preset_table_gives_a_text_preset_or_a_config_error(
        table: dict[str, Any], ledger: Ledger) -> None:
    ledger.injected()
    text = "[odd]\n" + "".join(f"{json.dumps(key)} = {toml(value)}\n" for key, value in table.items())
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "presets.toml"
        path.write_text(text, encoding="utf-8")
        patch.setenv(PRESETS_ENV, str(path))
        try:
            preset = load_preset("odd")
        except ConfigError as refused:
            assert "\n" not in str(refused).strip()
            return
    assert all(isinstance(getattr(preset, f.name), str) for f in fields(preset) if f.name != "fields")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in preset.fields.items())
