"""ArcGIS FeatureServer client: raw feature attributes as Arrow pages, ordered by the layer's row id.

Incremental pulls filter on the preset's `updated_field` (an edit date). A preset without one gets
an overlap window instead: rows whose offense time is within `overlap_days` before the watermark
are pulled again, and the warehouse upsert on the row id keeps one version of each.
Times in `where` are UTC, as are the layer's epoch milliseconds.
"""
from __future__ import annotations

import difflib
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..config import Preset
from ..errors import SourceError
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

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ACCESS_HINT = "The layer may have been made private or moved; open the preset's url in a browser to check."
ESRI_TYPES = {
    "esriFieldTypeOID": pa.int64(),
    "esriFieldTypeSmallInteger": pa.int64(),
    "esriFieldTypeInteger": pa.int64(),
    "esriFieldTypeBigInteger": pa.int64(),
    "esriFieldTypeDate": pa.int64(),
    "esriFieldTypeSingle": pa.float64(),
    "esriFieldTypeDouble": pa.float64(),
    "esriFieldTypeString": pa.string(),
    "esriFieldTypeGUID": pa.string(),
    "esriFieldTypeGlobalID": pa.string(),
}
INFERRED = {
    frozenset({int}): pa.int64(),
    frozenset({float}): pa.float64(),
    frozenset({int, float}): pa.float64(),
    frozenset({str}): pa.string(),
    frozenset({bool}): pa.bool_(),
}


def column_type(values: Sequence[Any], declared: pa.DataType | None) -> pa.DataType | None:
    """The type of a column as received (the layer's if all null), or None when its values disagree."""
    kinds = frozenset(type(value) for value in values if value is not None)
    if not kinds:
        return declared or pa.string()
    if kinds == {int} and declared == pa.float64():
        return declared  # a double field sent as whole numbers, such as 0 for a missing coordinate
    return INFERRED.get(kinds)


def typed_column(values: Sequence[Any], declared: pa.DataType | None) -> pa.Array:
    """Ints stay int64 (epoch ms too), floats float64, strings string; a mixed column becomes string."""
    kind = column_type(values, declared)
    if kind is not None:
        try:
            return pa.array(values, kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
            pass
    texts = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
    return pa.array([v if v is None else arrow_text(v) for v in texts], pa.string())


def page_table(
    rows: Sequence[Mapping[str, Any]], fields: Sequence[str], declared: Mapping[str, pa.DataType | None]
) -> pa.Table:
    """A page of attributes: every mapped field (null where absent), then the others received."""
    names = list(dict.fromkeys([*fields, *(name for row in rows for name in row)]))
    columns = {name: typed_column([row.get(name) for row in rows], declared.get(name)) for name in names}
    return pa.table(columns)


def is_feature_page(body: Any) -> bool:
    features = body.get("features") if isinstance(body, dict) else None
    return isinstance(features, list) and all(isinstance(f, dict) and isinstance(f.get("attributes"), dict)
                                              for f in features)


def is_layer(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("fields"), list)


def is_count(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("count"), int)


class ArcGISSource:
    """A FeatureServer layer (`.../FeatureServer/<n>`), queried through `<layer>/query`."""

    def __init__(
        self,
        preset: Preset,
        *,
        page_size: int = 1000,
        timeout: Timeouts = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF,
        overlap_days: float = 7,
        progress: Progress | bool = True,
    ) -> None:
        self.preset = preset
        self.page_size = page_size
        self.progress = progress
        self.row_id = preset.fields["row_id"]
        self.time_field = preset.updated_field or preset.fields["offense_ts"]
        self.lookback = timedelta(days=0 if preset.updated_field else overlap_days)
        self.fields = list(dict.fromkeys([*preset.fields.values(), self.time_field]))
        self.query_url = preset.url.rstrip("/") + "/query"
        self.http = JsonClient(
            preset, access_hint=ACCESS_HINT, timeout=timeout, retries=retries, backoff_factor=backoff_factor
        )

    def pull(self, since: str | None) -> Iterator[pa.Table]:
        """Pages of rows changed at or after `since`; held until the end so each row comes once."""
        declared = self.layer_types()
        tables = []
        with page_progress(self.progress, lambda: self.count(since), self.preset.name) as advance:
            for rows in self._pages(since):
                tables.append(page_table(rows, self.fields, declared))
                advance(len(rows))
        yield from last_versions(tables, self.row_id)

    def count(self, since: str | None) -> int:
        params = {"where": self._where(since), "returnCountOnly": "true", "f": "json"}
        return self.http.get(self.query_url, params, is_count)["count"]

    def watermark_of(self, table: pa.Table) -> str | None:
        if self.time_field not in table.column_names:
            return None
        if not pa.types.is_integer(table.schema.field(self.time_field).type):
            return None
        latest = pc.max(table.column(self.time_field)).as_py()
        return None if latest is None else iso_utc(EPOCH + timedelta(milliseconds=latest))

    def describe(self, since: str | None) -> str:
        return (
            f"ArcGIS GET {self.query_url} where={self._where(since)} outFields=* "
            f"orderByFields={self.row_id} resultRecordCount={self.page_size} paged by resultOffset "
            f"(preset {self.preset.name})"
        )

    def layer_types(self) -> dict[str, pa.DataType | None]:
        """The layer's field types, after checking it still has every mapped field (SchemaDriftError)."""
        layer = self.http.get(self.preset.url, {"f": "json"}, is_layer)
        fields = [field for field in layer["fields"] if isinstance(field, dict)]
        types = {str(field.get("name")): ESRI_TYPES.get(str(field.get("type"))) for field in fields}
        missing = [name for name in self.fields if name not in types]
        if missing:
            close = {name: difflib.get_close_matches(name, types, 1) for name in missing}
            guesses = [f"{name} -> {match[0]}" for name, match in close.items() if match]
            hint = f"; did it become {', '.join(guesses)}?" if guesses else ""
            raise missing_fields_error(self.preset, missing, hint)
        return types

    def _pages(self, since: str | None) -> Iterator[list[dict[str, Any]]]:
        offset = 0
        query = {
            "where": self._where(since),
            "outFields": "*",
            "orderByFields": self.row_id,
            "returnGeometry": "false",
            "resultRecordCount": self.page_size,
            "f": "json",
        }
        while True:
            body = self.http.get(self.query_url, {**query, "resultOffset": offset}, is_feature_page)
            rows = [feature["attributes"] for feature in body["features"]]
            yield rows
            if not body.get("exceededTransferLimit"):
                return
            if not rows:
                raise SourceError(
                    f"{self.preset.name}: {self.query_url} says more rows follow offset {offset} but sent "
                    "none; the layer may be mid-update. Re-run later."
                )
            offset += len(rows)

    def _where(self, since: str | None) -> str:
        if not since:
            return "1=1"
        start = parse_watermark(since).astimezone(timezone.utc) - self.lookback
        return f"{self.time_field} >= TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}'"
