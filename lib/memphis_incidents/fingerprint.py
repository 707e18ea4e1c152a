"""Skip what is unchanged: a step's fingerprint covers its notebook, its parameters, the package
code under lib/ and the inputs it declares (steps.py); a step whose fingerprint equals that of its
last success is skipped.

Package code counts (tools that hash only the notebook miss a change in `lib/`). A step that
declares `always_runs` (ingest: it always asks the source) is never skipped.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from .backends import Backends
from .layout import FINGERPRINTS
from .reporting_lag import local_today
from .steps import Step
from .storage import read_json, write_json

PACKAGE_DIR = Path(__file__).resolve().parent
CODE_SUFFIXES = {".py", ".toml", ".json", ".properties", ".j2", ".css"}
INPUTS: dict[str, Callable[[Backends], Any]] = {  # what a step may read, as a version token
    "pending": lambda backends: [meta["batch_id"] for meta in backends.pending_batches()],
    "incidents": lambda backends: backends.warehouse.version_token("incidents"),
    "marts": lambda backends: backends.warehouse.version_token("marts"),
    "quarantine": lambda backends: backends.warehouse.version_token("quarantine"),
    "today": lambda backends: f"{local_today():%Y-%m-%d}",  # a report says how old its data is today
}


def digest(value: Any) -> str:
    """A short hash of bytes or of a JSON-able value."""
    data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def package_digest(root: Path = PACKAGE_DIR) -> str:
    """A hash of every source and data file of the package."""
    files = sorted(p for p in root.rglob("*") if p.suffix in CODE_SUFFIXES and "__pycache__" not in p.parts)
    return digest(b"".join(str(p.relative_to(root)).encode() + p.read_bytes() for p in files))


def step_inputs(step: Step, backends: Backends) -> dict[str, Any]:
    """What a step reads, as version tokens of the lake and the warehouse."""
    return {name: INPUTS[name](backends) for name in step.reads}


def fingerprint(step: Step, notebook: Path, parameters: dict[str, Any], backends: Backends) -> dict[str, str]:
    """The parts of a step's fingerprint, each hashed on its own so a change can be named."""
    return {
        "notebook": digest(notebook.read_bytes()),
        "parameters": digest({k: v for k, v in parameters.items() if k != "run_id"}),
        "code": package_digest(),
        "inputs": digest(step_inputs(step, backends)),
    }


def last_success(backends: Backends, step: Step) -> dict[str, Any] | None:
    found: dict[str, Any] | None = read_json(backends.storage, FINGERPRINTS, {}).get(step.name)
    return found


def remember_success(backends: Backends, step: Step, parts: dict[str, str], run_id: str) -> None:
    """Record the fingerprint of a step that just succeeded."""
    doc = read_json(backends.storage, FINGERPRINTS, {})
    doc[step.name] = {"parts": parts, "run_id": run_id}
    write_json(backends.storage, FINGERPRINTS, doc)


def skip_reason(step: Step, parts: dict[str, str], backends: Backends) -> tuple[bool, str]:
    """Whether to skip a step, and why (or why not), in words for logs and --dry-run."""
    if step.always_runs:
        return False, "always asks the source"
    previous = last_success(backends, step)
    if previous is None:
        return False, "no earlier success"
    changed = [name for name, value in parts.items() if previous["parts"].get(name) != value]
    if changed:
        return False, "changed: " + ", ".join(changed)
    return True, f"unchanged since run {previous['run_id']}"
