"""The load's spill: a raw batch normalised and checked chunk by chunk into local Parquet files, then
split by DuckDB into valid rows, rejected rows and duplicates. The load's memory holds one chunk (and
DuckDB's bounded buffers), never the whole batch.

Each chunk is written with every canonical column, the rule the row breaks (`reason`, null when
valid), its position in the batch, and for rejected rows the raw row as JSON (from the Arrow values,
so a number reads the same whatever other rows share its chunk); rows sorted by offense
month, one row group per month, so a reader of one month skips the others by their statistics.
Duplicates (rows another row of the batch supersedes: same row id, the latest source update wins,
then the last row) are found across all chunks at once, as `quality.duplicate_mask` finds them in
one batch held in memory.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .config import Preset
from .duckdb_session import bounded_connection
from .layout import PARTITION_COLUMN
from .quality import (QUARANTINE_SCHEMA, checked_rows, quarantine_rows, records_json, source_fields,
                      string_array)
from .schema import CANONICAL_SCHEMA, to_arrow

CHUNK_ROWS = 200_000  # raw rows normalised at a time (about 0.2 GiB of pandas and Arrow memory)
CHECK_COLUMNS = [pa.field("reason", pa.string()), pa.field("position", pa.int64()), pa.field("raw_json", pa.string())]
SPILL_SCHEMA = pa.schema([*CANONICAL_SCHEMA, *CHECK_COLUMNS])
SUPERSEDED = """
    SELECT position FROM (
        SELECT position, row_number() OVER (PARTITION BY row_id
            ORDER BY source_updated_ts_utc DESC NULLS LAST, position DESC) AS newest_first
        FROM read_parquet($files)
        WHERE row_id IN (SELECT row_id FROM read_parquet($files) WHERE row_id IS NOT NULL
                         GROUP BY row_id HAVING count(*) > 1))
    WHERE newest_first > 1 ORDER BY position"""
REJECTED = """
    SELECT $batch_id AS batch_id, row_id, reason, raw_json FROM read_parquet($files)
    WHERE reason IS NOT NULL AND position NOT IN (SELECT position FROM superseded) ORDER BY position"""


@dataclass
class Spill:
    """A batch split on disk: its chunk files, the positions of its duplicates and its rejected rows."""

    files: list[str]
    received: int
    superseded: pa.Array
    rejected: pa.Table

    @property
    def duplicates(self) -> int:
        return len(self.superseded)

    @property
    def loaded(self) -> int:
        return self.received - self.rejected.num_rows - self.duplicates

    def valid_rows(self) -> ds.Dataset:
        """The rows to upsert (canonical columns and the check columns), read lazily from the files."""
        keep = pc.field("reason").is_null() & ~pc.field("position").isin(self.superseded)
        return ds.dataset(self.files, schema=SPILL_SCHEMA, format="parquet").filter(keep)

    def row_ids(self) -> ds.Dataset:
        """Every row id the batch holds (rejected and duplicate rows too): for a full refresh."""
        return ds.dataset(self.files, schema=SPILL_SCHEMA, format="parquet").filter(pc.field("row_id").is_valid())


def spilled_batch(chunks: Iterable[pa.Table], preset: Preset, batch_id: str, ingested_at: datetime,
                  folder: Path) -> Spill:
    """Normalise and check a raw batch chunk by chunk into `folder`, then split it with DuckDB.

    Each chunk is written by a second thread while the next one is checked (pyarrow's writer
    releases the GIL), so memory holds two chunks at most."""
    files, received = [], 0
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future | None = None
        for number, raw in enumerate(chunks):
            checked = checked_chunk(raw, preset, batch_id, ingested_at, received)
            if pending is not None:
                pending.result()
            files.append(str(folder / f"chunk-{number:05d}.parquet"))
            pending = writer.submit(write_by_month, checked, Path(files[-1]))
            received += raw.num_rows
        if pending is not None:
            pending.result()
    if not files:
        files.append(str(folder / "chunk-00000.parquet"))
        pq.write_table(SPILL_SCHEMA.empty_table(), files[0])
    with bounded_connection(folder / "duckdb") as con:
        superseded = con.sql(SUPERSEDED, params={"files": files}).to_arrow_table()
        con.register("superseded", superseded)
        rejected = con.sql(REJECTED, params={"files": files, "batch_id": batch_id}).to_arrow_table()
    return Spill(files, received, superseded.column("position").combine_chunks(), rejected.cast(QUARANTINE_SCHEMA))


def checked_chunk(raw: pa.Table, preset: Preset, batch_id: str, ingested_at: datetime, first: int) -> pa.Table:
    """One chunk of raw rows as canonical rows with their check columns (positions from `first`)."""
    frame = raw.to_pandas()
    canon, reasons = checked_rows(frame, preset, batch_id, ingested_at)
    bad = reasons.notna().to_numpy()
    raw_json = records_json(raw.filter(pa.array(bad)).select(source_fields(raw.column_names)).to_pylist())
    quarantined = quarantine_rows(batch_id, canon.loc[bad], reasons[bad], raw_json)
    slot = np.where(bad, np.cumsum(bad) - 1, 0)  # each rejected row's line in `quarantined`
    checks = {"reason": string_array(reasons),
              "position": pa.array(np.arange(first, first + raw.num_rows)),
              "raw_json": quarantined.column("raw_json").take(pa.array(slot, mask=~bad))}
    table = to_arrow(canon)
    for field in CHECK_COLUMNS:
        table = table.append_column(field, checks[field.name])
    return table


def write_by_month(table: pa.Table, target: Path) -> None:
    """The rows sorted by offense month (rows without one last), one row group per month."""
    months = pc.fill_null(table.column(PARTITION_COLUMN).cast(pa.int32()), np.iinfo(np.int32).max).to_numpy()
    order = np.argsort(months, kind="stable")
    table, months = table.take(order), months[order]
    starts = np.flatnonzero(np.r_[True, months[1:] != months[:-1]]) if len(months) else np.array([], int)
    with pq.ParquetWriter(target, SPILL_SCHEMA, compression="lz4") as writer:
        for start, end in zip(starts, np.r_[starts[1:], len(months)]):
            writer.write_table(table.slice(start, end - start).cast(SPILL_SCHEMA), row_group_size=end - start)
        if not len(months):
            writer.write_table(SPILL_SCHEMA.empty_table())
