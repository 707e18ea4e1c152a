"""Run ids and the per-step records a run leaves in its storage (read back into run.json)."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from .layout import STEP_RECORD
from .storage import Storage, read_json, write_json


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id such as 20261128T031500Z-3f9a."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def write_step_record(storage: Storage, run_id: str, step: str, record: dict[str, Any]) -> None:
    """Keep what a step did (counts, watermarks) under the run id; no-op outside a run."""
    if run_id:
        write_json(storage, STEP_RECORD.format(run_id=run_id, step=step), record)


def read_step_record(storage: Storage, run_id: str, step: str) -> dict[str, Any] | None:
    return read_json(storage, STEP_RECORD.format(run_id=run_id, step=step))
