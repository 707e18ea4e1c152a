"""Stage 1: pull new and changed rows from the source and land them as one immutable raw batch."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Iterable

import pyarrow as pa

from .config import RunParameters, load_preset
from .errors import ReconciliationError
from .profiles import Backends
from .runlog import new_run_id
from .sources import Source, make_source
from .sources.base import iso_utc


def unified(pages: Iterable[pa.Table]) -> pa.Table:
    """Concatenate raw pages; a column whose type differs between pages becomes text."""
    pages = [p for p in pages if p.num_columns]
    if not pages:
        return pa.table({})
    try:
        return pa.concat_tables(pages, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        names = sorted({n for p in pages for n in p.column_names})
        return pa.concat_tables([_as_text(p, names) for p in pages], promote_options="permissive")


def _as_text(page: pa.Table, names: list[str]) -> pa.Table:
    columns = {n: page.column(n).cast(pa.string()) if n in page.column_names
               else pa.nulls(page.num_rows, pa.string()) for n in names}
    return pa.table(columns)


def with_ingest_metadata(table: pa.Table, batch_id: str, ingested_at: datetime) -> pa.Table:
    """The raw rows plus the batch id and ingest time on every row."""
    n = table.num_rows
    table = table.append_column("_ingest_batch_id", pa.repeat(pa.scalar(batch_id, pa.string()), n))
    return table.append_column("_ingest_at", pa.repeat(pa.scalar(ingested_at, pa.timestamp("us", tz="UTC")), n))


def reconciled(source: Source, since: str | None, landed: int) -> int | None:
    """The server's count for the pull; raises if it disagrees with the rows landed."""
    expected = source.count(since)
    if expected is not None and expected != landed:
        raise ReconciliationError(
            f"source reports {expected} rows for this pull but {landed} were received; "
            "nothing was landed, re-run the pipeline (the source may have been updating)")
    return expected


def run_ingest(params: RunParameters, backends: Backends, now: datetime | None = None) -> dict[str, Any]:
    """Land the run's raw batch (once: a re-run of the same run id reuses it) and return its metadata.

    The batch id is the run id; without one (an interactive session) a new id is made.
    """
    run_id = params.run_id or new_run_id(now)
    existing = backends.lake.batch_meta(run_id)
    if existing is not None:
        return {**existing, "reused": True}
    preset = load_preset(params.source, params.base_url)
    source = make_source(preset, params)
    since = None if params.full_refresh else backends.state.watermark
    started = time.perf_counter()
    ingested_at = now or datetime.now(timezone.utc)
    pages = list(source.pull(since))
    table = unified(pages)
    server_count = reconciled(source, since, table.num_rows)
    meta = {
        "source": preset.name,
        "title": preset.title,
        "synthetic": preset.is_synthetic,
        "query": source.describe(since),
        "mode": "full" if since is None else "incremental",
        "watermark_before": since,
        "watermark": source.watermark_of(table) if table.num_rows else since,
        "ingested_at": iso_utc(ingested_at),
        "pages": len(pages),
        "server_count": server_count,
        "pull_seconds": round(time.perf_counter() - started, 3),
    }
    return backends.lake.write_batch(run_id, with_ingest_metadata(table, run_id, ingested_at), meta)
