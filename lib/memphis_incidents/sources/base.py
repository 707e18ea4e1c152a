"""The interface every source implements: pull raw pages since a watermark, count, and say how.

A source yields raw rows exactly as the publication gives them (field names and value types of the
source), one Arrow table per page. Normalising to the canonical schema happens later (schema.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Protocol

import pyarrow as pa

from ..config import Preset
from .fields import SourceSchema


@dataclass
class Pull:
    """The raw pages of one pull, each row once, and the server's count they were reconciled with.
    A live source's pages are a list (held in memory to be reconciled and mended); the demo's are a
    stream, generated as the ingest writes them."""

    tables: Iterable[pa.Table]
    server_count: int | None
    repairs: list[str] = field(default_factory=list)


class Source(Protocol):
    """A publication of the incident data that can be pulled in pages."""

    @property
    def preset(self) -> Preset:
        """The preset with the field mapping the service supports (raw batches are read with it)."""

    @property
    def inspected(self) -> SourceSchema:
        """The service's fields checked against the preset, read once, whatever the verdict."""

    @property
    def schema(self) -> SourceSchema:
        """The service's fields checked against the preset, read once (SchemaDriftError if unusable)."""

    def pull(self, since: str | None) -> Pull:
        """Rows updated at or after `since` (an ISO UTC watermark), all rows if None, reconciled."""

    def sample(self) -> dict[str, Any] | None:
        """One row as the service sends it (None if it holds none)."""

    def count(self, since: str | None) -> int | None:
        """The server's own count of the rows `pull(since)` returns, or None if it cannot say."""

    def watermark_of(self, table: pa.Table) -> str | None:
        """The highest update time in a raw table, as an ISO UTC watermark."""

    def describe(self, since: str | None) -> str:
        """A one-line, secret-free description of the pull, for batch metadata and logs."""


def iso_utc(moment: datetime) -> str:
    """A watermark string: ISO-8601 UTC with milliseconds and a Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_watermark(text: str) -> datetime:
    """Parse a watermark written by `iso_utc` (or any ISO-8601 string with an offset)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
