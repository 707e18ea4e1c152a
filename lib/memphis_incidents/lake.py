"""The data lake: immutable raw batches, one per run, exactly as the source gave them.

A batch is a folder `raw/batch_id=<run_id>/` (layout.py) with the data and `_batch.json` (ingest metadata). The
metadata file is written last and marks the batch complete; a batch without it is ignored.
"""
from __future__ import annotations

from typing import Any, BinaryIO, Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from .layout import BATCH, BATCH_DATA, BATCH_META, RAW
from .storage import Storage, object_reader, object_writer, read_json, write_json


class Lake:
    """Raw batches in a storage back end (local folder or GCS bucket)."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def write_batch(self, batch_id: str, rows: pa.Table | Iterable[pa.Table],
                    meta: dict[str, Any] | Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Land a batch: data first (written page by page as `rows` yields them, all in one schema),
        then the metadata that marks it complete. `meta` may be a function, called once every page
        is written: if it raises (say, the pull does not reconcile), nothing is landed."""
        if self.batch_meta(batch_id) is not None:
            raise FileExistsError(f"raw batch {batch_id} exists; raw data is never rewritten")
        prefix = BATCH.format(batch_id=batch_id)
        with object_writer(self.storage, f"{prefix}/{BATCH_DATA}") as sink:
            written = write_pages(sink, [rows] if isinstance(rows, pa.Table) else rows)
            details = meta() if callable(meta) else meta
        details = {**details, "batch_id": batch_id, "rows": written,
                   "data": self.storage.uri(f"{prefix}/{BATCH_DATA}")}
        write_json(self.storage, f"{prefix}/{BATCH_META}", details)
        return details

    def batch_meta(self, batch_id: str) -> dict[str, Any] | None:
        return read_json(self.storage, f"{BATCH.format(batch_id=batch_id)}/{BATCH_META}")

    def batches(self) -> list[dict[str, Any]]:
        """Metadata of every complete batch, oldest first."""
        metas = [read_json(self.storage, key) for key in self.storage.list(RAW)
                 if key.endswith(f"/{BATCH_META}")]
        return sorted(metas, key=lambda m: (m["ingested_at"], m["batch_id"]))

    def read_batch(self, batch_id: str) -> pa.Table:
        """A whole batch in memory (to explore one; the load reads `batch_chunks`)."""
        with object_reader(self.storage, f"{BATCH.format(batch_id=batch_id)}/{BATCH_DATA}") as source:
            return pq.read_table(source)

    def head(self, batch_id: str, rows: int = 5) -> pa.Table:
        """A batch's first rows, read without the rest."""
        return next(self.batch_chunks(batch_id, rows), pa.table({})).slice(0, rows)

    def batch_chunks(self, batch_id: str, rows: int) -> Iterator[pa.Table]:
        """A batch's rows, at most `rows` at a time, read as they are needed (a local lake streams
        its file; a bucket's object is fetched whole, then decoded chunk by chunk)."""
        with object_reader(self.storage, f"{BATCH.format(batch_id=batch_id)}/{BATCH_DATA}") as source, \
                pq.ParquetFile(source) as data:
            for batch in data.iter_batches(batch_size=rows):
                yield pa.Table.from_batches([batch])


def write_pages(sink: BinaryIO, pages: Iterable[pa.Table]) -> int:
    """Pages of one schema as one Parquet file (a row group per page); returns the rows written."""
    writer, written = None, 0
    for page in pages:
        writer = writer or pq.ParquetWriter(sink, page.schema, compression="zstd")
        writer.write_table(page)
        written += page.num_rows
    if writer is None:
        raise ValueError("a batch needs at least one page, if an empty one, to give the file its schema")
    writer.close()
    return written
