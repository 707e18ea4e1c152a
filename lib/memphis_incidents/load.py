"""Stage 2: normalise, validate and upsert every raw batch the warehouse has not loaded yet.

Batches are loaded oldest first, one commit each: quarantine, then the table version swap, then the
state (watermark) update. A crash between two of these is repaired by simply re-running, since an
upsert of rows already present changes nothing.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from .config import Preset, RunParameters, load_preset
from .errors import DataQualityError
from .profiles import Backends
from .quality import BatchSplit, split_batch
from .runlog import write_step_record
from .schema import to_arrow
from .sources.base import parse_watermark

COUNT_KEYS = ("received", "loaded", "quarantined", "duplicates", "inserted", "updated",
              "unchanged", "deleted_at_source", "withdrawn")


def pending_batches(backends: Backends) -> list[dict[str, Any]]:
    """Metadata of landed batches not yet loaded, oldest first."""
    loaded = set(backends.state.loaded_batches)
    return [meta for meta in backends.lake.batches() if meta["batch_id"] not in loaded]


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


def load_batch(meta: dict[str, Any], preset: Preset, backends: Backends,
               max_reject_share: float) -> dict[str, Any]:
    """Load one raw batch into the warehouse and commit the watermark; returns its counts."""
    batch_id = meta["batch_id"]
    raw = backends.lake.read_batch(batch_id).to_pandas()
    split = split_batch(raw, preset, batch_id, parse_watermark(meta["ingested_at"]))
    check_reject_share(split, batch_id, max_reject_share)
    backends.warehouse.write_quarantine(batch_id, split.rejected)
    present = _row_ids(raw, preset) if meta["mode"] == "full" else None
    withdrawn = [r for r in split.rejected.column("row_id").to_pylist() if r is not None]
    result = backends.warehouse.upsert(to_arrow(split.valid), withdraw_ids=withdrawn, present_ids=present)
    record = {"batch_id": batch_id, "received": split.received, "loaded": len(split.valid),
              "quarantined": split.rejected.num_rows, "duplicates": split.duplicates,
              **result.as_dict(), "watermark": meta["watermark"]}
    backends.state.commit_load(batch_id, meta["watermark"], record)
    return record


def _row_ids(raw, preset: Preset) -> pa.Array:
    field = preset.fields["row_id"]
    return pa.array(raw[field].dropna().astype("string").str.strip().tolist(), pa.string())


def run_load(params: RunParameters, backends: Backends) -> dict[str, Any]:
    """Load all pending batches; the summary (kept under the run id) feeds run.json."""
    preset = load_preset(params.source, params.base_url)
    before = backends.state.watermark
    records = [load_batch(meta, preset, backends, params.max_reject_share)
               for meta in pending_batches(backends)]
    summary = {
        "batches": records,
        "rows": {key: sum(r[key] for r in records) for key in COUNT_KEYS},
        "watermark": {"before": before, "after": backends.state.watermark},
        "loaded_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    write_step_record(backends.storage, params.run_id, "load", summary)
    return summary
