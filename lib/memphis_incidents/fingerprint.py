"""Skip what is unchanged: a step's fingerprint covers its notebook, its parameters, the package
code under lib/ and its inputs; a step whose fingerprint equals that of its last success is skipped.

Package code counts (tools that hash only the notebook miss a change in `lib/`). The ingest step is
never skipped: it always asks the source.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .load import pending_batches
from .storage import read_json, write_json

FINGERPRINTS_KEY = "state/fingerprints.json"
PACKAGE_DIR = Path(__file__).resolve().parent
CODE_SUFFIXES = {".py", ".toml", ".json", ".properties", ".j2", ".css"}
ALWAYS_RUN = {"ingest"}


def digest(value: Any) -> str:
    """A short hash of bytes or of a JSON-able value."""
    data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def package_digest(root: Path = PACKAGE_DIR) -> str:
    """A hash of every source and data file of the package."""
    files = sorted(p for p in root.rglob("*") if p.suffix in CODE_SUFFIXES and "__pycache__" not in p.parts)
    return digest(b"".join(str(p.relative_to(root)).encode() + p.read_bytes() for p in files))


def step_inputs(step: str, stores: Any) -> dict[str, Any]:
    """What a step reads, as version tokens of the lake and the warehouse."""
    warehouse = stores.warehouse
    if step == "load":
        return {"pending": [m["batch_id"] for m in pending_batches(stores)],
                "incidents": warehouse.version_token("incidents")}
    if step == "aggregate":
        return {"incidents": warehouse.version_token("incidents")}
    if step == "analysis":
        return {"marts": warehouse.version_token("marts"), "quarantine": warehouse.version_token("quarantine")}
    return {}


def fingerprint(step: str, notebook: Path, parameters: dict[str, Any], stores: Any) -> dict[str, str]:
    """The parts of a step's fingerprint, each hashed on its own so a change can be named."""
    return {
        "notebook": digest(notebook.read_bytes()),
        "parameters": digest({k: v for k, v in parameters.items() if k != "run_id"}),
        "code": package_digest(),
        "inputs": digest(step_inputs(step, stores)),
    }


def last_success(stores: Any, step: str) -> dict[str, Any] | None:
    return read_json(stores.storage, FINGERPRINTS_KEY, {}).get(step)


def remember_success(stores: Any, step: str, parts: dict[str, str], run_id: str) -> None:
    """Record the fingerprint of a step that just succeeded."""
    doc = read_json(stores.storage, FINGERPRINTS_KEY, {})
    doc[step] = {"parts": parts, "run_id": run_id}
    write_json(stores.storage, FINGERPRINTS_KEY, doc)


def skip_reason(step: str, parts: dict[str, str], stores: Any) -> tuple[bool, str]:
    """Whether to skip a step, and why (or why not), in words for logs and --dry-run."""
    if step in ALWAYS_RUN:
        return False, "always asks the source"
    previous = last_success(stores, step)
    if previous is None:
        return False, "no earlier success"
    changed = [name for name, value in parts.items() if previous["parts"].get(name) != value]
    if changed:
        return False, "changed: " + ", ".join(changed)
    return True, f"unchanged since run {previous['run_id']}"
