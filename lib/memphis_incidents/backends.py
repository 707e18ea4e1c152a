"""The adapters one run works with (`Backends`): where its lake, state, warehouse and reports live.

profiles.py builds them for a profile; everything else only reads them. The same object is called
`backends` everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .lake import Lake
from .state import State
from .storage import Storage
from .warehouse import Warehouse


@dataclass
class Backends:
    """Storage, lake, state and warehouse of one profile and source."""

    storage: Storage
    lake: Lake
    state: State
    warehouse: Warehouse
    data_root: str
    reports: Storage | None = None  # where run reports are archived besides the local folder

    def pending_batches(self) -> list[dict[str, Any]]:
        """Metadata of landed batches the warehouse has not loaded yet, oldest first."""
        loaded = set(self.state.loaded_batches)
        return [meta for meta in self.lake.batches() if meta["batch_id"] not in loaded]
