"""Stage 1: pull new and changed rows from the source and land them as one immutable raw batch."""
from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import pyarrow as pa

from .config import Preset, RunParameters, load_preset
from .errors import ReconciliationError, SourceError
from .precincts import fetch_outlines, load_outlines, save_outlines, synthetic_outlines
from .backends import Backends
from .runlog import new_run_id
from .schema import INGEST_PREFIX
from .sources import Pull, Source, make_source
from .sources.base import iso_utc, parse_watermark
from .sources.fields import Incremental
from .state import State


def unified_pages(pages: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """Raw pages in one schema, as they come: a column a page lacks is null in it, a column whose
    type differs between pages becomes text. A list of pages (a live pull, held in memory) is unified
    over every page; a stream (the demo source) keeps its first page's schema. No page with columns:
    one empty table."""
    stream: Iterator[pa.Table] = (page for page in pages if page.num_columns)
    if isinstance(pages, list):
        listed = list(stream)
        schema, stream = (common_schema(listed) if listed else None), iter(listed)
    else:
        first = next(stream, None)
        schema, stream = (None, stream) if first is None else (first.schema, itertools.chain([first], stream))
    if schema is None:
        yield pa.table({})
    for page in stream:
        yield conformed(page, schema)


def common_schema(pages: list[pa.Table]) -> pa.Schema:
    """The schema every page fits: types promoted where they can be, else every column as text."""
    try:
        return pa.unify_schemas([p.schema for p in pages], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.schema([(name, pa.string()) for name in sorted({n for p in pages for n in p.column_names})])


def conformed(page: pa.Table, schema: pa.Schema) -> pa.Table:
    """A page with exactly `schema`'s columns and types (a column it lacks as nulls)."""
    return pa.table([page.column(f.name).cast(f.type) if f.name in page.column_names
                     else pa.nulls(page.num_rows, f.type) for f in schema], schema=schema)


@dataclass
class Tally:
    """What the pages of a pull held, counted as they pass on their way to the lake."""

    source: Source
    pages: int = 0
    rows: int = 0
    watermark: str | None = None

    def counted(self, pages: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """`pages` unchanged, each counted (pages with columns), with the newest update time seen kept."""
        for page in pages:
            self.pages, self.rows = self.pages + bool(page.num_columns), self.rows + page.num_rows
            found = self.source.watermark_of(page) if page.num_rows else None
            if found and (self.watermark is None or parse_watermark(found) > parse_watermark(self.watermark)):
                self.watermark = found
            yield page


def with_ingest_metadata(table: pa.Table, batch_id: str, ingested_at: datetime) -> pa.Table:
    """The raw rows plus the batch id and ingest time on every row. A source field named like the
    ingest's own columns is kept under `_source` + its name (`_ingest_at` as `_source_ingest_at`)."""
    n, names = table.num_rows, table.column_names
    table = table.rename_columns([unreserved(name, names) for name in names])
    table = table.append_column(INGEST_PREFIX + "batch_id", pa.repeat(pa.scalar(batch_id, pa.string()), n))
    return table.append_column(INGEST_PREFIX + "at", pa.repeat(pa.scalar(ingested_at, pa.timestamp("us", tz="UTC")), n))


def unreserved(name: str, taken: list[str]) -> str:
    """`name`, or a free name for it if the ingest reserves it."""
    if not name.startswith(INGEST_PREFIX):
        return name
    renamed = "_source" + name
    while renamed in taken:
        renamed = "_source" + renamed
    return renamed


def reconciled(pulled: Pull, landed: int) -> None:
    """Refuse a pull whose rows disagree with the server's count (the sources mend what they can first)."""
    if pulled.server_count is not None and pulled.server_count != landed:
        raise ReconciliationError(
            f"source reports {pulled.server_count} rows for this pull but {landed} were received; "
            "nothing was landed, re-run the pipeline (the source may have been updating)")


def pull_start(params: RunParameters, state: State, mode: Incremental, now: datetime) -> tuple[str | None, str]:
    """Where this pull starts (None: everything) and why, in words for run.json and the notebook."""
    if params.full_refresh:
        return None, "full pull: full_refresh was asked for"
    if state.watermark is None:
        return None, "full pull: nothing has been loaded yet"
    previous = state.pull.get("incremental") or {}
    if previous and (previous.get("mode"), previous.get("field")) != (mode.mode, mode.field):
        return None, (f"full pull: the incremental mode changed from {previous.get('mode')} on "
                      f"{previous.get('field')} to {mode.mode} on {mode.field}")
    last_full = state.pull.get("last_full_at")
    if mode.mode == "overlap window" and params.reconcile_days and last_full:
        age = now - parse_watermark(last_full)
        if age >= timedelta(days=params.reconcile_days):
            return None, (f"full pull: the periodic reconcile (every {params.reconcile_days} days; the last full "
                          f"pull was {age.days} days ago) finds rows edited or deleted outside the overlap window")
    return state.watermark, f"incremental: {mode.reason}"


def run_ingest(params: RunParameters, backends: Backends, now: datetime | None = None) -> dict[str, Any]:
    """Land the run's raw batch (once: a re-run of the same run id reuses it) and return its metadata.

    The batch id is the run id; without one (an interactive session) a new id is made. The source's
    schema is checked before any page is pulled: a missing required field stops here, a missing
    optional one is a warning in the metadata.
    """
    run_id = params.run_id or new_run_id(now)
    existing = backends.lake.batch_meta(run_id)
    if existing is not None:
        return {**existing, "reused": True}
    preset = load_preset(params.source, params.base_url)
    source = make_source(preset, params)
    schema = source.schema
    ingested_at = now or datetime.now(timezone.utc)
    since, why = pull_start(params, backends.state, schema.incremental, ingested_at)
    started = time.perf_counter()
    pulled = source.pull(since)
    tally = Tally(source)
    pages = (with_ingest_metadata(page, run_id, ingested_at) for page in tally.counted(unified_pages(pulled.tables)))

    def landed_meta() -> dict[str, Any]:
        """Once every page is written: reconcile, refresh the outlines, describe the batch."""
        reconciled(pulled, tally.rows)
        warnings = [*schema.warnings, *refreshed_outlines(preset, params, backends, ingested_at)]
        return {
            "source": preset.name,
            "title": preset.title,
            "url": preset.url,
            "synthetic": preset.is_synthetic,
            "query": source.describe(since),
            "mode": "full" if since is None else "incremental",
            "mode_reason": why,
            "incremental": dataclasses.asdict(schema.incremental),
            "fields": schema.fields,
            "source_warnings": warnings,
            "repairs": pulled.repairs,
            "watermark_before": since,
            "watermark": tally.watermark if tally.rows else since,
            "ingested_at": iso_utc(ingested_at),
            "pages": tally.pages,
            "server_count": pulled.server_count,
            "pull_seconds": round(time.perf_counter() - started, 3),
        }

    return backends.lake.write_batch(run_id, pages, landed_meta)


def refreshed_outlines(preset: Preset, params: RunParameters, backends: Backends, now: datetime) -> list[str]:
    """Store the precinct outlines the map draws: synthetic for the demo, else from `precincts_url` (the
    run parameter, or the preset's unless base_url points the run elsewhere). A failure keeps the
    outlines stored before and returns a warning: it never fails the run."""
    if preset.is_synthetic:
        save_outlines(backends.lake.storage, synthetic_outlines(now))
        return []
    url = params.precincts_url or ("" if params.base_url else preset.precincts_url)
    if not url:
        return []
    try:
        outlines = fetch_outlines(url, (min(10.0, params.http_timeout), params.http_timeout),
                                  params.http_retries, now)
    except (SourceError, ValueError) as problem:
        kept = load_outlines(backends.lake.storage)
        since = f"those retrieved {kept.retrieved_at}" if kept else "none"
        return [f"precinct outlines could not be refreshed ({problem}): the map uses {since}"]
    save_outlines(backends.lake.storage, outlines)
    return []


def source_warnings(batch: dict[str, Any]) -> list[str]:
    """What a batch's source lacked or spelled differently, and what its pull mended."""
    return [*batch.get("source_warnings", []), *batch.get("repairs", [])]


def pull_summary(batch: dict[str, Any]) -> str:
    """Markdown for the ingest notebook: how this pull was made, and every warning about the source."""
    lines = [f"**Pull:** {batch.get('mode_reason') or batch.get('mode')}."]
    lines += [f"- **Warning:** {warning}." for warning in source_warnings(batch)]
    return "\n".join(lines)


def source_notes_markdown(notes: list[str]) -> str:
    """The report's data-quality line about the source itself."""
    if not notes:
        return "The source published every field the preset maps, and the last pull needed no repair."
    return "**About the source** (as of the last pull):\n\n" + "\n".join(f"- {note[:1].upper()}{note[1:]}." for note in notes)


def latest_batch(backends: Backends) -> dict[str, Any]:
    """The metadata of the newest loaded batch (empty before any load)."""
    loaded = backends.state.loaded_batches
    return (backends.lake.batch_meta(loaded[-1]) if loaded else None) or {}


def latest_source_notes(backends: Backends) -> list[str]:
    """The warnings of the newest loaded batch: what the report's data-quality section says."""
    return source_warnings(latest_batch(backends))

