"""Stage 2: normalise, validate and upsert every raw batch the warehouse has not loaded yet.

Batches are loaded oldest first, one commit each: quarantine, then the table version swap, then the
state (watermark) update. A crash between two of these is repaired by simply re-running, since an
upsert of rows already present changes nothing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .config import Preset, RunParameters, load_preset
from .errors import DataQualityError
from .backends import Backends
from .quality import BatchSplit, split_batch
from .schema import row_key, to_arrow
from .sources.base import parse_watermark

COUNT_KEYS = ("received", "loaded", "quarantined", "duplicates", "inserted", "updated",
              "unchanged", "deleted_at_source", "withdrawn")


def check_reject_share(split: BatchSplit, batch_id: str, max_share: float) -> None:
    """Stop before anything is written if too large a share of the batch is unusable."""
    if not split.received:
        return
    share = split.rejected.num_rows / split.received
    if share > max_share:
        reasons = split.rejected.group_by("reason").aggregate([("reason", "count")]).to_pylist()
        summary = ", ".join(f"{r['reason']}: {r['reason_count']}" for r in reasons)
        raise DataQualityError(
            f"batch {batch_id}: {share:.1%} of {split.received} rows rejected (limit "
            f"{max_share:.1%}; {summary}). The warehouse is unchanged. Inspect the raw batch, then "
            "re-run with -p max_reject_share <share> if these rows are expected.")


@dataclass
class Staged:
    """A batch ready to upsert: its valid rows as Arrow, the ids to withdraw or keep, its counts."""

    rows: pa.Table
    withdraw_ids: list[str]
    present_ids: pa.Array | None
    counts: dict[str, int]


def staged_batch(meta: dict[str, Any], preset: Preset, backends: Backends, max_reject_share: float) -> Staged:
    """Normalise and validate a raw batch and write its quarantine; the raw and pandas frames are
    dropped on return, and their memory handed back, before the upsert needs its own."""
    batch_id = meta["batch_id"]
    raw = backends.lake.read_batch(batch_id).to_pandas()
    split = split_batch(raw, preset, batch_id, parse_watermark(meta["ingested_at"]))
    check_reject_share(split, batch_id, max_reject_share)
    backends.warehouse.write_quarantine(batch_id, split.rejected)
    return Staged(
        rows=to_arrow(split.valid),
        withdraw_ids=[r for r in split.rejected.column("row_id").to_pylist() if r is not None],
        present_ids=_row_ids(raw, preset) if meta["mode"] == "full" else None,
        counts={"received": split.received, "loaded": len(split.valid),
                "quarantined": split.rejected.num_rows, "duplicates": split.duplicates},
    )


def load_batch(meta: dict[str, Any], preset: Preset, backends: Backends,
               max_reject_share: float) -> dict[str, Any]:
    """Load one raw batch into the warehouse and commit the watermark; returns its counts."""
    preset = batch_preset(meta, preset)
    staged = staged_batch(meta, preset, backends, max_reject_share)
    pa.default_memory_pool().release_unused()
    result = backends.warehouse.upsert(staged.rows, withdraw_ids=staged.withdraw_ids,
                                       present_ids=staged.present_ids)
    record = {"batch_id": meta["batch_id"], **staged.counts, **result.as_dict(), "watermark": meta["watermark"]}
    backends.state.commit_load(meta["batch_id"], meta["watermark"], record, pull_record(meta))
    return record


def batch_preset(meta: dict[str, Any], preset: Preset) -> Preset:
    """The preset as the batch was pulled: with the field mapping the source supported then."""
    return dataclasses.replace(preset, fields=meta["fields"]) if meta.get("fields") else preset


def pull_record(meta: dict[str, Any]) -> dict[str, Any]:
    """What the state keeps of a loaded batch's pull: its incremental mode, and when it was full."""
    record = {"incremental": meta["incremental"]} if meta.get("incremental") else {}
    return {**record, "last_full_at": meta["ingested_at"]} if meta.get("mode") == "full" else record


def _row_ids(raw, preset: Preset) -> pa.Array:
    """Every row id of a raw batch, as the source spells it (trimmed)."""
    return pc.drop_null(pa.array(row_key(raw[preset.fields["row_id"]])))


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
