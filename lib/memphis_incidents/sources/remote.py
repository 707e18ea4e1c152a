"""What the Socrata and ArcGIS clients share: the HTTP client, the service's schema read once per
run before paging, the pull loop with progress, and reconciliation that mends before it fails.

A pull lands each row once (its last version received). Its row count must equal the server's own
count; when it does not, the client's `repair` fetches exactly what the pages missed, and only if the
rows still disagree does the pull fail, landing nothing.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Any, Iterator, Mapping

import pyarrow as pa

from ..config import Preset
from ..errors import ReconciliationError
from .base import Pull
from .fields import SourceSchema, require
from .http import DEFAULT_BACKOFF, DEFAULT_RETRIES, DEFAULT_TIMEOUT, JsonClient, Progress, Timeouts, \
    last_versions, page_progress

OVERLAP_DAYS = 7.0


class RemoteSource(ABC):
    """Base of the HTTP sources; a subclass reads its service's schema, pages, counts and repairs."""

    access_hint = ""
    throttle_hint = ""

    def __init__(
        self,
        preset: Preset,
        *,
        page_size: int,
        timeout: Timeouts = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF,
        progress: Progress | bool = True,
        overlap_days: float = OVERLAP_DAYS,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.preset = preset
        self.page_size = page_size
        self.progress = progress
        self.overlap_days = overlap_days
        self.http = JsonClient(preset, access_hint=self.access_hint, throttle_hint=self.throttle_hint,
                               headers=headers, timeout=timeout, retries=retries, backoff_factor=backoff_factor)

    @functools.cached_property
    def inspected(self) -> SourceSchema:
        """The service's fields checked against the preset, read once, whatever the verdict."""
        return self.read_schema()

    @property
    def schema(self) -> SourceSchema:
        """The checked fields, or SchemaDriftError naming every required one the service cannot give."""
        return require(self.preset, self.inspected)

    @property
    def mapped(self) -> Preset:
        """The preset with the mapping this service supports: the one raw batches are read with."""
        return self.schema.resolved(self.preset)

    @property
    def key(self) -> str:
        """The field that identifies a row in a page (one version of each is landed)."""
        return self.mapped.fields["row_id"]

    def pull(self, since: str | None) -> Pull:
        """Every row changed at or after `since` (all if None), each once, reconciled with the server."""
        self.schema  # noqa: B018 - read (and check) the schema before the first page
        tables = []
        with page_progress(self.progress, lambda: self.count(since), self.preset.name) as advance:
            for rows in self.pages(since):
                tables.append(self.page(rows))
                advance(len(rows))
        return self.reconciled(since, list(last_versions(tables, self.key)))

    def reconciled(self, since: str | None, tables: list[pa.Table]) -> Pull:
        """The pull, once its rows agree with the server's count; mended once (`repair`) if they do not."""
        expected = self.count(since)
        if rows_in(tables) == expected:
            return Pull(tables, expected)
        mended, repairs = self.repair(since, tables, expected)
        mended = list(last_versions(mended, self.key))
        recount = self.count(since)
        if rows_in(mended) != recount:
            raise self.mismatch(recount, rows_in(mended), " and ".join(repairs))
        return Pull(mended, recount, repairs)

    def mismatch(self, expected: int, received: int, tried: str) -> ReconciliationError:
        return ReconciliationError(
            f"{self.preset.name}: the source reports {expected} rows for this pull but {received} were "
            f"received, even after {tried}; nothing was landed. Re-run the pipeline (the source may have "
            "been updating)."
        )

    @abstractmethod
    def sample(self) -> dict[str, Any] | None:
        """One row as the service sends it (None if it holds none)."""

    @abstractmethod
    def read_schema(self) -> SourceSchema:
        """The service's own field list and types, checked against the preset."""

    @abstractmethod
    def pages(self, since: str | None) -> Iterator[list[dict[str, Any]]]:
        """Raw pages (lists of row dicts) of the rows changed at or after `since`."""

    @abstractmethod
    def page(self, rows: list[dict[str, Any]]) -> pa.Table:
        """One raw page as an Arrow table in the source's own field names and types."""

    @abstractmethod
    def count(self, since: str | None) -> int:
        """The server's own count of the rows `pull(since)` should land."""

    @abstractmethod
    def repair(self, since: str | None, tables: list[pa.Table], expected: int) -> tuple[list[pa.Table], list[str]]:
        """Fetch what the pages missed and drop what the source no longer has: the mended tables and one
        line per repair (ReconciliationError if there is nothing to mend with)."""


def rows_in(tables: list[pa.Table]) -> int:
    return sum(table.num_rows for table in tables)
