"""ArcGIS FeatureServer client: raw feature attributes as Arrow pages, paged by object id.

The layer's `?f=json` metadata is read once per run: its fields (checked against the preset), its
object-id field, its edit-date field (`editFieldsInfo.editDateField`) and its `maxRecordCount`.
Pages are asked for by key (`<oid> > last seen ORDER BY <oid>`), so rows inserted or deleted during
the pull cannot shift a page; a page that does not move forward is asked for again. If the rows
still disagree with the server's count, the layer's id list (`returnIdsOnly`) names the missing
rows and they are fetched by id (`objectIds`). Times in `where` are UTC, as are epoch milliseconds.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..config import Preset
from ..errors import SourceError
from .base import iso_utc, parse_watermark
from .fields import NUMBER_FIELDS, TIME_FIELDS, SourceSchema, check_mapping, incremental, substitute
from .http import arrow_text, place
from .remote import RemoteSource, rows_in

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
NUMBERS = ("esriFieldTypeDouble", "esriFieldTypeSingle", "esriFieldTypeInteger", "esriFieldTypeSmallInteger",
           "esriFieldTypeBigInteger", "esriFieldTypeOID")
READABLE = {**dict.fromkeys(TIME_FIELDS, ("esriFieldTypeDate", *NUMBERS)), **dict.fromkeys(NUMBER_FIELDS, NUMBERS)}
INFERRED = {
    frozenset({int}): pa.int64(),
    frozenset({float}): pa.float64(),
    frozenset({int, float}): pa.float64(),
    frozenset({str}): pa.string(),
    frozenset({bool}): pa.bool_(),
}
STALE_PAGES = 3  # pages in a row that do not move past the last id before the pull gives up
IDS_PER_REQUEST = 200  # objectIds per GET, short enough for any proxy's URL limit


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


def is_id_list(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("objectIds") or [], list)


def whole_id(value: Any) -> int | None:
    """An object id as an int (a layer may send 5.0); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if value == int(value) else None


def epoch_text(millis: Any) -> str | None:
    return iso_utc(EPOCH + timedelta(milliseconds=millis)) if isinstance(millis, (int, float)) else None


class ArcGISSource(RemoteSource):
    """A FeatureServer layer (`.../FeatureServer/<n>`), queried through `<layer>/query`."""

    access_hint = ACCESS_HINT

    def __init__(self, preset: Preset, *, page_size: int = 1000, **options: Any) -> None:
        super().__init__(preset, page_size=page_size, **options)
        self.query_url = preset.url.rstrip("/") + "/query"

    def read_schema(self) -> SourceSchema:
        layer = self.http.get(self.preset.url, {"f": "json"}, is_layer)
        esri = {str(f.get("name")): str(f.get("type")) for f in layer["fields"] if isinstance(f, dict)}
        edit = (layer.get("editFieldsInfo") or {}).get("editDateField")
        mode = incremental(self.preset, esri, edit if isinstance(edit, str) else None, self.overlap_days)
        checks = check_mapping(self.preset, esri, READABLE)
        if mode.mode == "edit date":
            checks = substitute(checks, "source_updated_ts", mode.field)
        oid = layer.get("objectIdField")
        capabilities = layer.get("advancedQueryCapabilities") or {}
        details = {
            "object_id_field": oid if oid in esri else None,
            "max_record_count": layer.get("maxRecordCount"),
            "supports_pagination": capabilities.get("supportsPagination"),
            "supports_order_by": capabilities.get("supportsOrderBy"),
            "newest_edit": epoch_text((layer.get("editingInfo") or {}).get("lastEditDate")),
            "arrow_types": {name: ESRI_TYPES.get(kind) for name, kind in esri.items()},
        }
        return SourceSchema(tuple(checks), mode, f"{place(self.preset.url)}?f=json", tuple(esri), details)

    @property
    def time_field(self) -> str:
        return self.inspected.incremental.field

    @property
    def object_id(self) -> str:
        return str(self.inspected.details["object_id_field"] or self.key)

    @property
    def fields(self) -> list[str]:
        return list(dict.fromkeys([*self.mapped.fields.values(), self.time_field]))

    @property
    def request_size(self) -> int:
        """Rows per page: the preset's page size, capped by the layer's maxRecordCount."""
        most = self.inspected.details.get("max_record_count")
        return min(self.page_size, most) if isinstance(most, int) and most > 0 else self.page_size

    def sample(self) -> dict[str, Any] | None:
        rows = self.query({"where": "1=1", "resultRecordCount": 1})["features"]
        return rows[0]["attributes"] if rows else None

    def page(self, rows: list[dict[str, Any]]) -> pa.Table:
        return page_table(rows, self.fields, self.inspected.details["arrow_types"])  # type: ignore[arg-type]

    def count(self, since: str | None) -> int:
        params = {"where": self.where(since), "returnCountOnly": "true", "f": "json"}
        return self.http.get(self.query_url, params, is_count)["count"]

    def watermark_of(self, table: pa.Table) -> str | None:
        if self.time_field not in table.column_names:
            return None
        if not pa.types.is_integer(table.schema.field(self.time_field).type):
            return None
        return epoch_text(pc.max(table.column(self.time_field)).as_py())

    def describe(self, since: str | None) -> str:
        return (
            f"ArcGIS GET {self.query_url} where={self.where(since)} outFields=* orderByFields={self.object_id} "
            f"resultRecordCount={self.request_size} paged by {self.object_id} > last seen "
            f"(preset {self.preset.name}, {self.inspected.incremental.mode} on {self.time_field})"
        )

    def pages(self, since: str | None) -> Iterator[list[dict[str, Any]]]:
        """Pages by key; a page that does not move past the last id seen is asked for again."""
        base, last, stale = self.where(since), None, 0
        while True:
            where = base if last is None else f"({base}) AND {self.object_id} > {last}"
            body = self.query({"where": where, "orderByFields": self.object_id,
                               "resultRecordCount": self.request_size})
            rows = [feature["attributes"] for feature in body["features"]]
            more = bool(body.get("exceededTransferLimit")) or len(rows) >= self.request_size
            newest = max((i for i in (whole_id(row.get(self.object_id)) for row in rows) if i is not None), default=None)
            if newest is None or (last is not None and newest <= last):
                if not rows or not more:
                    return
                stale += 1
                if stale >= STALE_PAGES:
                    raise SourceError(
                        f"{self.preset.name}: {place(self.query_url)} sent {STALE_PAGES} pages in a row without "
                        f"rows past {self.object_id} {last}; the layer may be mid-update. Re-run later.")
                continue
            stale, last = 0, newest
            yield rows
            if not more:
                return

    def repair(self, since: str | None, tables: list[pa.Table], expected: int) -> tuple[list[pa.Table], list[str]]:
        """Fetch by id the rows the layer lists (`returnIdsOnly`) but the pages missed, and drop the rows
        it no longer lists (deleted during the pull)."""
        listed = set(self.query({"where": self.where(since), "returnIdsOnly": "true"}, is_id_list)["objectIds"] or [])
        received = self.ids_in(tables)
        missing = sorted(i for i in listed - received if i is not None)
        fetched = [self.page(self.by_ids(missing[start:start + IDS_PER_REQUEST]))
                   for start in range(0, len(missing), IDS_PER_REQUEST)]
        gone = sorted(i for i in received - listed if i is not None)
        kept = [table.filter(pc.invert(pc.is_in(table.column(self.object_id),
                                                pa.array(gone).cast(table.schema.field(self.object_id).type))))
                for table in tables] if gone else tables
        repairs = [f"the server counted {expected} rows, the pages brought {rows_in(tables)}: "
                   f"{len(missing)} missing rows fetched by id"]
        if gone:
            repairs.append(f"{len(gone)} rows deleted at the source during the pull were left out")
        return kept + fetched, repairs

    def ids_in(self, tables: list[pa.Table]) -> set[int | None]:
        return {whole_id(value) for table in tables for value in table.column(self.object_id).to_pylist()}

    def by_ids(self, ids: list[int]) -> list[dict[str, Any]]:
        body = self.query({"where": "1=1", "objectIds": ",".join(map(str, ids))})
        return [feature["attributes"] for feature in body["features"]]

    def query(self, params: Mapping[str, Any], valid: Any = is_feature_page) -> Any:
        """GET <layer>/query with the common parameters."""
        common = {"outFields": "*", "returnGeometry": "false", "f": "json"}
        return self.http.get(self.query_url, {**common, **params}, valid)

    def where(self, since: str | None) -> str:
        if not since:
            return "1=1"
        lookback = timedelta(days=self.overlap_days if self.inspected.incremental.mode == "overlap window" else 0)
        start = parse_watermark(since).astimezone(timezone.utc) - lookback
        return f"{self.time_field} >= TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}'"
