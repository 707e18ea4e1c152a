"""Back ends for a profile: the embedded profile's local folders, or the GCP profile's bucket and
BigQuery. The profiles share all pipeline logic; they differ only in the objects built here."""
from __future__ import annotations

from .backends import Backends
from .config import RunParameters
from .lake import Lake
from .layout import DataLayout
from .state import State
from .storage import LocalStorage
from .warehouse.local import LocalWarehouse


def backends_for(params: RunParameters) -> Backends:
    """Build the adapters for the run's profile and source."""
    if params.profile == "gcp":
        from .gcp import gcp_backends  # the Google Cloud clients load only when the profile needs them

        return gcp_backends(params)
    layout = DataLayout.for_source(params.data_dir, params.source)
    storage = LocalStorage(layout.root)
    return Backends(storage=storage, lake=Lake(storage), state=State(storage),
                    warehouse=LocalWarehouse(layout.warehouse), data_root=str(layout.root))
