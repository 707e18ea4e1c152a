"""Socrata SODA 2.1 client: raw rows as Arrow pages of strings, ordered by :updated_at then :id.

Paging is $limit/$offset within `:updated_at >= <last timestamp read>`, re-reading the last row as an
anchor: a row that changes mid-pull moves to the end of that order, and the anchor shows whether
the rows before the offset moved, so nothing is skipped. Rows read twice are kept once, last version.
"""
from __future__ import annotations

import json
import os
from datetime import timezone
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..config import Preset
from ..errors import ConfigError, SchemaDriftError
from .base import iso_utc, parse_watermark
from .http import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    JsonClient,
    Progress,
    Timeouts,
    arrow_text,
    last_versions,
    missing_fields_error,
    page_progress,
)

TOKEN_ENV = "SOCRATA_APP_TOKEN"
UPDATED = ":updated_at"
ROW_ID = ":id"
ORDER = f"{UPDATED},{ROW_ID}"
ACCESS_HINT = (
    f"If {TOKEN_ENV} is set, check it is a valid app token for this portal, or unset it (public "
    "datasets need none); otherwise the dataset may have been made private."
)
THROTTLE_HINT = f"Setting {TOKEN_ENV} to an app token raises the rate limit."


def soql_timestamp(text: str) -> str:
    """A SoQL floating timestamp literal ('2024-01-02T03:04:05.000') for an ISO time, in UTC."""
    return parse_watermark(text).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def as_text(value: Any) -> str | None:
    """A SODA value as a string: strings as sent, the rare object (a location, a boolean) as JSON."""
    if value is None:
        return None
    return arrow_text(value if isinstance(value, str) else
                      json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False))


def page_table(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> pa.Table:
    """A page as string columns: every mapped field (null where omitted), then the others received."""
    others = sorted({name for row in rows for name in row} - set(fields))
    names = [*fields, *others]
    return pa.table({name: pa.array([as_text(row.get(name)) for row in rows], pa.string()) for name in names})


def lower_bound(since: str | None) -> str | None:
    """The SoQL literal for a watermark, or None for a full pull."""
    return soql_timestamp(since) if since else None


def is_rows(body: Any) -> bool:
    return isinstance(body, list) and all(isinstance(row, dict) for row in body)



def is_page(body: Any) -> bool:
    return is_rows(body) and all(ROW_ID in row and UPDATED in row for row in body)


def row_key(row: dict[str, Any]) -> tuple[Any, Any]:
    return row[UPDATED], row[ROW_ID]


class SocrataSource:
    """A SODA 2.1 resource (`.../resource/<id>.json`); the app token comes from SOCRATA_APP_TOKEN."""

    def __init__(
        self,
        preset: Preset,
        *,
        page_size: int = 50_000,
        timeout: Timeouts = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF,
        progress: Progress | bool = True,
    ) -> None:
        if page_size < 2:
            raise ConfigError("page_size must be at least 2 (each page re-reads one row as an anchor)")
        token = os.environ.get(TOKEN_ENV, "").strip()
        self.preset = preset
        self.page_size = page_size
        self.progress = progress
        self.fields = list(dict.fromkeys([ROW_ID, UPDATED, *preset.fields.values()]))
        self.http = JsonClient(
            preset,
            access_hint=ACCESS_HINT,
            throttle_hint=THROTTLE_HINT,
            headers={"X-App-Token": token} if token else None,
            timeout=timeout,
            retries=retries,
            backoff_factor=backoff_factor,
        )

    def pull(self, since: str | None) -> Iterator[pa.Table]:
        """Pages of rows updated at or after `since`; held until the end so each row comes once."""
        self.check_fields()
        tables = []
        with page_progress(self.progress, lambda: self.count(since), self.preset.name) as advance:
            for rows in self._pages(since):
                tables.append(page_table(rows, self.fields))
                advance(len(rows))
        yield from last_versions(tables, ROW_ID)

    def count(self, since: str | None) -> int:
        params = {"$select": "count(*)", **self._where(lower_bound(since))}
        body = self.http.get(self.preset.url, params, is_count)
        return int(next(iter(body[0].values())))

    def watermark_of(self, table: pa.Table) -> str | None:
        if UPDATED not in table.column_names:
            return None
        latest = pc.max(table.column(UPDATED)).as_py()
        return iso_utc(parse_watermark(latest)) if latest else None

    def describe(self, since: str | None) -> str:
        where = "".join(f" {name}={value}" for name, value in self._where(lower_bound(since)).items())
        return (
            f"SODA 2.1 GET {self.preset.url} $select=:*,*{where} $order={ORDER} "
            f"$limit={self.page_size} paged by $offset (preset {self.preset.name})"
        )

    def check_fields(self) -> None:
        """Raise SchemaDriftError naming every mapped field the dataset no longer has."""
        wanted = [name for name in dict.fromkeys(self.preset.fields.values()) if not name.startswith(":")]
        try:
            self._probe(wanted)
        except SchemaDriftError:
            missing = [name for name in wanted if not self._selects(name)]
            if not missing:
                raise
            raise missing_fields_error(self.preset, missing) from None

    def _selects(self, field: str) -> bool:
        try:
            self._probe([field])
        except SchemaDriftError:
            return False
        return True

    def _probe(self, fields: Sequence[str]) -> None:
        self.http.get(self.preset.url, {"$select": ",".join(fields), "$limit": 1}, is_rows)

    def _pages(self, since: str | None) -> Iterator[list[dict[str, Any]]]:
        """Raw pages; each request re-reads the last row read, to see whether earlier rows moved."""
        lower = lower_bound(since)
        position, anchor = 0, None
        while True:
            start = max(position - 1, 0)
            rows = self._page(lower, start)
            keys = [row_key(row) for row in rows]
            if anchor is not None and anchor not in keys and start > 0:
                position = 0  # rows before the anchor changed: read this timestamp's rows again
                continue
            cut = keys.index(anchor) + 1 if anchor in keys else 0
            yield rows[cut:]
            if len(rows) < self.page_size:
                return
            last = rows[-1][UPDATED]
            if soql_timestamp(last) == lower:
                position = start + len(rows)
            else:
                lower, position = soql_timestamp(last), sum(1 for row in rows if row[UPDATED] == last)
            anchor = keys[-1]

    def _page(self, lower: str | None, offset: int) -> list[dict[str, Any]]:
        params = {"$select": ":*,*", **self._where(lower), "$order": ORDER, "$limit": self.page_size}
        return self.http.get(self.preset.url, {**params, "$offset": offset}, is_page)

    def _where(self, lower: str | None) -> dict[str, str]:
        """The $where for rows updated at or after a SoQL timestamp literal (none for all rows)."""
        return {"$where": f"{UPDATED} >= '{lower}'"} if lower else {}


def is_count(body: Any) -> bool:
    return is_rows(body) and len(body) == 1 and len(body[0]) == 1
