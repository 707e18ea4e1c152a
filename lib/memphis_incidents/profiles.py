"""Back ends for a profile: where the lake, the state and the warehouse live.

The embedded and GCP profiles share all pipeline logic; they differ only in the objects built here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import Paths, RunParameters
from .lake import Lake
from .state import State
from .storage import LocalStorage, Storage


@dataclass
class Backends:
    """The adapters one run works with."""

    storage: Storage
    lake: Lake
    state: State
    warehouse: Any  # LocalWarehouse or BigQueryWarehouse: same methods
    data_root: str
    reports: Storage | None = None  # where run reports are archived besides the local folder


def backends(params: RunParameters) -> Backends:
    """Build the adapters for the run's profile and source."""
    if params.profile == "gcp":
        from .gcp import gcp_backends

        return gcp_backends(params)
    from .warehouse.local import LocalWarehouse

    paths = Paths.for_source(params.data_dir, params.source)
    storage = LocalStorage(paths.root)
    return Backends(storage=storage, lake=Lake(storage), state=State(storage),
                    warehouse=LocalWarehouse(paths.warehouse), data_root=str(paths.root))
