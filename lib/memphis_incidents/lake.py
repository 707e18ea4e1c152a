"""The data lake: immutable raw batches, one per run, exactly as the source gave them.

A batch is a folder `raw/batch_id=<run_id>/` (layout.py) with the data and `_batch.json` (ingest metadata). The
metadata file is written last and marks the batch complete; a batch without it is ignored.
"""
from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .layout import BATCH, BATCH_DATA, BATCH_META, RAW
from .storage import Storage, read_json, write_json


class Lake:
    """Raw batches in a storage back end (local folder or GCS bucket)."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def write_batch(self, batch_id: str, table: pa.Table, meta: dict[str, Any]) -> dict[str, Any]:
        """Land a batch: data first, then the metadata that marks it complete."""
        if self.batch_meta(batch_id) is not None:
            raise FileExistsError(f"raw batch {batch_id} exists; raw data is never rewritten")
        prefix = BATCH.format(batch_id=batch_id)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        self.storage.write_bytes(f"{prefix}/{BATCH_DATA}", buffer.getvalue())
        meta = {**meta, "batch_id": batch_id, "rows": table.num_rows,
                "data": self.storage.uri(f"{prefix}/{BATCH_DATA}")}
        write_json(self.storage, f"{prefix}/{BATCH_META}", meta)
        return meta

    def batch_meta(self, batch_id: str) -> dict[str, Any] | None:
        return read_json(self.storage, f"{BATCH.format(batch_id=batch_id)}/{BATCH_META}")

    def batches(self) -> list[dict[str, Any]]:
        """Metadata of every complete batch, oldest first."""
        metas = [read_json(self.storage, key) for key in self.storage.list(RAW)
                 if key.endswith(f"/{BATCH_META}")]
        return sorted(metas, key=lambda m: (m["ingested_at"], m["batch_id"]))

    def read_batch(self, batch_id: str) -> pa.Table:
        data = self.storage.read_bytes(f"{BATCH.format(batch_id=batch_id)}/{BATCH_DATA}")
        return pq.read_table(io.BytesIO(data))
