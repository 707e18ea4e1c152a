"""Stage 2: normalise, validate and upsert every raw batch the warehouse has not loaded yet.

Batches are loaded oldest first, one commit each: quarantine, then the table version swap, then the
state (watermark) update. A crash between two of these is repaired by simply re-running, since an
upsert of rows already present changes nothing. A batch is read and normalised a chunk at a time
into a scratch folder (spill.py), so the load's memory does not grow with the batch.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.dataset as ds

from .backends import Backends
from .config import Preset, RunParameters, load_preset
from .errors import DataQualityError
from .layout import SCRATCH
from .sources.base import parse_watermark
from .spill import CHUNK_ROWS, spilled_batch

COUNT_KEYS = ("received", "loaded", "quarantined", "duplicates", "inserted", "updated",
              "unchanged", "deleted_at_source", "withdrawn")


def check_reject_share(received: int, rejected: pa.Table, batch_id: str, max_share: float) -> None:
    """Stop before anything is written if too large a share of the batch is unusable."""
    if not received:
        return
    share = rejected.num_rows / received
    if share > max_share:
        reasons = rejected.group_by("reason").aggregate([("reason", "count")]).to_pylist()
        summary = ", ".join(f"{r['reason']}: {r['reason_count']}" for r in reasons)
        raise DataQualityError(
            f"batch {batch_id}: {share:.1%} of {received} rows rejected (limit "
            f"{max_share:.1%}; {summary}). The warehouse is unchanged. Inspect the raw batch, then "
            "re-run with -p max_reject_share <share> if these rows are expected.")


@dataclass
class Staged:
    """A batch ready to upsert: its valid rows (read lazily from the spill), the ids to withdraw or
    keep, its counts."""

    rows: ds.Dataset
    withdraw_ids: list[str]
    present_ids: ds.Dataset | None
    counts: dict[str, int]


def staged_batch(meta: dict[str, Any], preset: Preset, backends: Backends, max_reject_share: float,
                 folder: Path) -> Staged:
    """Normalise and validate a raw batch chunk by chunk into `folder` and write its quarantine."""
    batch_id = meta["batch_id"]
    spill = spilled_batch(backends.lake.batch_chunks(batch_id, CHUNK_ROWS), preset, batch_id,
                          parse_watermark(meta["ingested_at"]), folder)
    check_reject_share(spill.received, spill.rejected, batch_id, max_reject_share)
    backends.warehouse.write_quarantine(batch_id, spill.rejected)
    return Staged(
        rows=spill.valid_rows(),
        withdraw_ids=[r for r in spill.rejected.column("row_id").to_pylist() if r is not None],
        present_ids=spill.row_ids() if meta["mode"] == "full" else None,
        counts={"received": spill.received, "loaded": spill.loaded,
                "quarantined": spill.rejected.num_rows, "duplicates": spill.duplicates},
    )


def load_batch(meta: dict[str, Any], preset: Preset, backends: Backends,
               max_reject_share: float) -> dict[str, Any]:
    """Load one raw batch into the warehouse and commit the watermark; returns its counts."""
    preset = batch_preset(meta, preset)
    with scratch_folder(backends) as folder:
        staged = staged_batch(meta, preset, backends, max_reject_share, folder)
        pa.default_memory_pool().release_unused()  # the chunks' memory, before DuckDB needs its own
        result = backends.warehouse.upsert(staged.rows, withdraw_ids=staged.withdraw_ids,
                                           present_ids=staged.present_ids)
    record = {"batch_id": meta["batch_id"], **staged.counts, **result.as_dict(), "watermark": meta["watermark"]}
    backends.state.commit_load(meta["batch_id"], meta["watermark"], record, pull_record(meta))
    return record


@contextmanager
def scratch_folder(backends: Backends) -> Iterator[Path]:
    """An empty folder for a load's spill, removed afterwards: `SCRATCH` under a local data root
    (left over from a killed run, it is cleared first: one run at a time holds the data folder),
    else one in the system's temporary folder."""
    local = "://" not in backends.data_root
    folder = Path(backends.data_root) / SCRATCH if local else Path(tempfile.mkdtemp(prefix="memphis-load-"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def batch_preset(meta: dict[str, Any], preset: Preset) -> Preset:
    """The preset as the batch was pulled: with the field mapping the source supported then."""
    return dataclasses.replace(preset, fields=meta["fields"]) if meta.get("fields") else preset


def pull_record(meta: dict[str, Any]) -> dict[str, Any]:
    """What the state keeps of a loaded batch's pull: its incremental mode, and when it was full."""
    record = {"incremental": meta["incremental"]} if meta.get("incremental") else {}
    return {**record, "last_full_at": meta["ingested_at"]} if meta.get("mode") == "full" else record


def run_load(params: RunParameters, backends: Backends) -> dict[str, Any]:
    """Load all pending batches; the summary is the load step's record (it feeds run.json)."""
    preset = load_preset(params.source, params.base_url)
    before = backends.state.watermark
    records = [load_batch(meta, preset, backends, params.max_reject_share)
               for meta in backends.pending_batches()]
    summary = {
        "batches": records,
        "rows": {key: sum(r[key] for r in records) for key in COUNT_KEYS},
        "watermark": {"before": before, "after": backends.state.watermark},
        "loaded_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    return summary
