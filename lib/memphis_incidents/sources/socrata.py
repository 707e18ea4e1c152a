"""Socrata SODA 2.1 client: raw rows as Arrow pages of strings, ordered by :updated_at then :id.

The dataset's metadata (`/api/views/<id>.json`: `columns[].fieldName`, `rowsUpdatedAt`) is read once
per run to check the preset's fields; where it cannot be read, each field is probed with `$select`.
Paging is $limit/$offset within `:updated_at >= <last timestamp read>`, re-reading the last row as an
anchor: a row that changes mid-pull moves to the end of that order, and the anchor shows whether
the rows before the offset moved, so nothing is skipped. Rows read twice are kept once, last version.
If the rows still disagree with the server's count, the :updated_at ranges whose counts differ are
pulled again, once.
"""
from __future__ import annotations

import bisect
import json
import os
import re
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..config import Preset
from ..errors import ConfigError, DatasetNotFound, MalformedResponse, SchemaDriftError
from .base import iso_utc, parse_watermark
from .fields import NUMBER_FIELDS, TIME_FIELDS, Incremental, SourceSchema, check_mapping
from .http import arrow_text, place
from .remote import RemoteSource, rows_in

TOKEN_ENV = "SOCRATA_APP_TOKEN"
UPDATED = ":updated_at"
ROW_ID = ":id"
SYSTEM_FIELDS = (ROW_ID, UPDATED, ":created_at", ":version")
ORDER = f"{UPDATED},{ROW_ID}"
RESOURCE = re.compile(r"^(?P<site>.*)/resource/(?P<id>[\w-]+)\.json$")
READABLE = {**dict.fromkeys(TIME_FIELDS, ("calendar_date", "floating_timestamp", "fixed_timestamp", "text")),
            **dict.fromkeys(NUMBER_FIELDS, ("number", "double", "money", "text"))}
ACCESS_HINT = (
    f"If {TOKEN_ENV} is set, check it is a valid app token for this portal, or unset it (public "
    "datasets need none); otherwise the dataset may have been made private."
)
THROTTLE_HINT = f"Setting {TOKEN_ENV} to an app token raises the rate limit."
Range = tuple[str | None, str | None]


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


def is_count(body: Any) -> bool:
    return is_rows(body) and len(body) == 1 and len(body[0]) == 1


def is_view(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("columns"), list)


def row_key(row: dict[str, Any]) -> tuple[Any, Any]:
    return row[UPDATED], row[ROW_ID]


def views_url(resource_url: str) -> str | None:
    """`.../api/views/<id>.json` for a `.../resource/<id>.json` URL (None for any other shape)."""
    found = RESOURCE.match(resource_url)
    return f"{found['site']}/api/views/{found['id']}.json" if found else None


def in_bounds(stamp: str, bounds: Range) -> bool:
    return (bounds[0] is None or stamp >= bounds[0]) and (bounds[1] is None or stamp < bounds[1])


def in_range(stamps: list[str], bounds: Range) -> int:
    """How many of the sorted `stamps` fall in [lower, upper)."""
    upper = bisect.bisect_left(stamps, bounds[1]) if bounds[1] else len(stamps)
    return upper - (bisect.bisect_left(stamps, bounds[0]) if bounds[0] else 0)


def where_clause(lower: str | None, upper: str | None) -> dict[str, str]:
    """The $where for rows updated in [lower, upper) (SoQL literals; None: unbounded)."""
    terms = [f"{UPDATED} >= '{lower}'"] * bool(lower) + [f"{UPDATED} < '{upper}'"] * bool(upper)
    return {"$where": " AND ".join(terms)} if terms else {}


class SocrataSource(RemoteSource):
    """A SODA 2.1 resource (`.../resource/<id>.json`); the app token comes from SOCRATA_APP_TOKEN."""

    access_hint = ACCESS_HINT
    throttle_hint = THROTTLE_HINT

    def __init__(self, preset: Preset, *, page_size: int = 50_000, **options: Any) -> None:
        if page_size < 2:
            raise ConfigError("page_size must be at least 2 (each page re-reads one row as an anchor)")
        token = os.environ.get(TOKEN_ENV, "").strip()
        super().__init__(preset, page_size=page_size, headers={"X-App-Token": token} if token else None, **options)

    def read_schema(self) -> SourceSchema:
        url = views_url(self.preset.url)
        view = self.view(url) if url else None
        if view is None:
            types: dict[str, str | None] = dict.fromkeys(self.probed(), None)
            metadata, newest = f"probing each field with $select on {place(self.preset.url)}", None
        else:
            types = {str(c.get("fieldName")): c.get("dataTypeName") for c in view["columns"] if isinstance(c, dict)}
            metadata, updated = f"{place(url or '')} columns", view.get("rowsUpdatedAt")
            newest = iso_utc(datetime.fromtimestamp(updated, timezone.utc)) if isinstance(updated, int) else None
        types.update(dict.fromkeys(SYSTEM_FIELDS, None))
        mode = Incremental("edit date", UPDATED, "Socrata's system field :updated_at orders every change")
        checks = check_mapping(self.preset, types, READABLE)
        return SourceSchema(tuple(checks), mode, metadata, tuple(types), {"newest_edit": newest})

    def view(self, url: str) -> dict[str, Any] | None:
        """The dataset's metadata, or None when the portal will not give it (then fields are probed)."""
        try:
            return self.http.get(url, {}, is_view)
        except (DatasetNotFound, MalformedResponse):
            return None

    def probed(self) -> list[str]:
        """The mapped fields a `$select` accepts: all in one request, one by one if some are refused."""
        wanted = [name for name in dict.fromkeys(self.preset.fields.values()) if not name.startswith(":")]
        if self.selects(wanted):
            return wanted
        return [name for name in wanted if self.selects([name])]

    def selects(self, fields: Sequence[str]) -> bool:
        try:
            self.http.get(self.preset.url, {"$select": ",".join(fields), "$limit": 1}, is_rows)
        except SchemaDriftError:
            return False
        return True

    @property
    def key(self) -> str:
        return ROW_ID

    def sample(self) -> dict[str, Any] | None:
        rows = self.http.get(self.preset.url, {"$select": ":*,*", "$limit": 1}, is_rows)
        return rows[0] if rows else None

    @property
    def fields(self) -> list[str]:
        return list(dict.fromkeys([ROW_ID, UPDATED, *self.mapped.fields.values()]))

    def page(self, rows: list[dict[str, Any]]) -> pa.Table:
        return page_table(rows, self.fields)

    def count(self, since: str | None) -> int:
        return self.count_range((lower_bound(since), None))

    def count_range(self, bounds: Range) -> int:
        body = self.http.get(self.preset.url, {"$select": "count(*)", **where_clause(*bounds)}, is_count)
        return int(next(iter(body[0].values())))

    def watermark_of(self, table: pa.Table) -> str | None:
        if UPDATED not in table.column_names:
            return None
        latest = pc.max(table.column(UPDATED)).as_py()
        return iso_utc(parse_watermark(latest)) if latest else None

    def describe(self, since: str | None) -> str:
        where = "".join(f" {name}={value}" for name, value in where_clause(lower_bound(since), None).items())
        return (
            f"SODA 2.1 GET {self.preset.url} $select=:*,*{where} $order={ORDER} "
            f"$limit={self.page_size} paged by $offset (preset {self.preset.name})"
        )

    def pages(self, since: str | None) -> Iterator[list[dict[str, Any]]]:
        return self.range_pages((lower_bound(since), None))

    def range_pages(self, bounds: Range) -> Iterator[list[dict[str, Any]]]:
        """Raw pages of one :updated_at range; each request re-reads the last row read, to see whether
        earlier rows moved."""
        lower, upper = bounds
        position, anchor = 0, None
        while True:
            start = max(position - 1, 0)
            rows = self.http.get(self.preset.url, {
                "$select": ":*,*", **where_clause(lower, upper), "$order": ORDER, "$limit": self.page_size,
                "$offset": start}, is_page)
            keys = [row_key(row) for row in rows]
            if anchor is not None and anchor not in keys and start > 0:
                position = 0  # rows before the anchor changed: read this timestamp's rows again
                continue
            cut = keys.index(anchor) + 1 if anchor is not None and anchor in keys else 0
            yield rows[cut:]
            if len(rows) < self.page_size:
                return
            last = rows[-1][UPDATED]
            if soql_timestamp(last) == lower:
                position = start + len(rows)
            else:
                lower, position = soql_timestamp(last), sum(1 for row in rows if row[UPDATED] == last)
            anchor = keys[-1]

    def repair(self, since: str | None, tables: list[pa.Table], expected: int) -> tuple[list[pa.Table], list[str]]:
        """Pull again, once, each :updated_at range whose server count differs from the rows received;
        the new pull replaces what was received in that range."""
        stamps = sorted(self.stamps(tables))
        ranges = self.ranges(lower_bound(since), stamps)
        wrong = [bounds for bounds in ranges if self.count_range(bounds) != in_range(stamps, bounds)]
        fetched = [self.page(rows) for bounds in wrong for rows in self.range_pages(bounds)]
        kept = [table.filter(pa.array([not any(in_bounds(stamp, bounds) for bounds in wrong)
                                       for stamp in self.stamps([table])], pa.bool_())) for table in tables]
        return kept + fetched, [f"the server counted {expected} rows, the pages brought {rows_in(tables)}: "
                                f"{len(wrong)} of {len(ranges)} :updated_at ranges pulled again"]

    @staticmethod
    def stamps(tables: list[pa.Table]) -> list[str]:
        """Every row's :updated_at as a SoQL literal, in row order."""
        return [soql_timestamp(v) if v else "" for t in tables for v in t.column(UPDATED).to_pylist()]

    def ranges(self, lower: str | None, stamps: list[str]) -> list[Range]:
        """Consecutive :updated_at ranges from `lower` on, each about a page of received rows."""
        cuts, since_cut = [], 0
        for here, after in zip(stamps, stamps[1:]):
            since_cut += 1
            if since_cut >= self.page_size and after != here:
                cuts.append(after)
                since_cut = 0
        bounds = [lower, *cuts, None]
        return list(zip(bounds[:-1], bounds[1:]))
