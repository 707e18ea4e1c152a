"""Pipeline state: the watermark and which raw batches the warehouse has loaded.

The watermark advances only in `commit_load`, called after the warehouse load has committed, so a
failed run leaves it where it was and is simply re-run.
"""
from __future__ import annotations

from typing import Any

from .layout import LOAD_RECORD, STATE
from .storage import Storage, read_json, write_json


class State:
    """The watermark and load history, stored as one atomically replaced JSON document."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def _doc(self) -> dict[str, Any]:
        return read_json(self.storage, STATE, {"watermark": None, "loaded_batches": []})

    @property
    def watermark(self) -> str | None:
        return self._doc()["watermark"]

    @property
    def loaded_batches(self) -> list[str]:
        return list(self._doc()["loaded_batches"])

    @property
    def pull(self) -> dict[str, Any]:
        """How the last loaded batch was pulled (incremental mode) and when the last full pull was."""
        return dict(self._doc().get("pull", {}))

    def commit_load(self, batch_id: str, watermark: str | None, record: dict[str, Any],
                    pull: dict[str, Any] | None = None) -> None:
        """Record a committed batch load and advance the watermark (never backwards)."""
        doc = self._doc()
        doc["pull"] = {**doc.get("pull", {}), **(pull or {})}
        if batch_id not in doc["loaded_batches"]:
            doc["loaded_batches"].append(batch_id)
        if watermark and (doc["watermark"] is None or watermark > doc["watermark"]):
            doc["watermark"] = watermark
        write_json(self.storage, LOAD_RECORD.format(batch_id=batch_id), record)
        write_json(self.storage, STATE, doc)

    def load_record(self, batch_id: str) -> dict[str, Any] | None:
        return read_json(self.storage, LOAD_RECORD.format(batch_id=batch_id))
