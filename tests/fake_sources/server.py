"""A Socrata- and ArcGIS-compatible HTTP server on 127.0.0.1 for tests, with injectable faults.

SODA 2.1 at `/resource/<id>.json`: `$select` (`:*,*`, a field list, `count(*)`), `$where`
(`:updated_at >= '<floating timestamp>'`, optionally `AND :updated_at < '...'`), `$order`,
`$limit`/`$offset`; every value a string, nulls omitted; 4xx bodies are SODA error JSON
(`query.soql.no-such-column` for an unknown field). Dataset metadata at `/api/views/<id>.json`
(`columns[].fieldName` and `dataTypeName`, `rowsUpdatedAt`).
ArcGIS FeatureServer at `/arcgis/rest/services/<name>/FeatureServer/0`: `?f=json` layer metadata with
its fields, object-id field, edit-date field (if any) and maxRecordCount, and `/query` with `where`
(rows may carry a geometry, sent with `returnGeometry=true`)
(a conjunction of `1=1`, `<field> >= TIMESTAMP '...'` and `<field> > <number>`), `objectIds`,
`outFields`, `orderByFields`, `resultOffset`/`resultRecordCount`/`exceededTransferLimit`,
`returnCountOnly`, `returnIdsOnly`; errors come inside HTTP 200 bodies.

Faults (`server.faults.add(kind, on=..., after=..., times=..., **options)`), on the request kinds
"page", "count", "ids" (ArcGIS returnIdsOnly), "probe" (a Socrata field-list select), "meta" (ArcGIS
layer or Socrata dataset metadata) or "any":
  status    status=429|500|404|401|403..., retry_after=seconds, body=JSON to send
  hang      seconds=... before answering
  truncate  mode="cut" (half the JSON, honest length) or "short" (half the body, then hang up)
  error     ArcGIS error inside HTTP 200: code=..., message=..., details=[...]
  shift     rows=k: from now on every page starts k rows early (k rows were inserted before it)
  update    row=index (in the current order), changes={field: value}: the row changes, newest edit
  rename    field=old, to=new: the dataset renames a field (schema drift)
  delete    rows=k: the first k rows (in id order) are deleted from the dataset
  repeat    the previous page is sent again in place of this one (a stale cache)
  skip      the page after this one is sent in its place (a page goes missing)
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FLOATING = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?$")
SODA_TERM = re.compile(r"^\s*:updated_at\s*(>=|<)\s*'([^']*)'\s*$")
ARCGIS_TIME = re.compile(r"^\s*(\w+)\s*>=\s*TIMESTAMP\s*'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)'\s*$", re.IGNORECASE)
ARCGIS_ABOVE = re.compile(r"^\s*(\w+)\s*>\s*(-?\d+)\s*$")
AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
COUNT_SELECT = re.compile(r"^\s*count\(\s*\*\s*\)(?:\s+as\s+(\w+))?\s*$", re.IGNORECASE)
SYSTEM_FIELDS = (":id", ":created_at", ":updated_at", ":version")
KINDS = ("status", "hang", "truncate", "error", "shift", "update", "rename", "delete", "repeat", "skip")
DATA_CHANGES = ("shift", "update", "rename", "delete")
SOCRATA_TYPES = {"offense_ts": "calendar_date", "reported_ts": "calendar_date", "latitude": "number",
                 "longitude": "number"}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
GEOMETRY = "__geometry__"  # a row's geometry (not an attribute), sent with returnGeometry=true


@dataclass
class Fault:
    """One injected fault: fires on requests of kind `on`, after `after` of them, `times` times."""

    kind: str
    on: str = "any"
    after: int = 0
    times: int | None = 1
    options: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0

    def fires(self, request_kind: str) -> bool:
        if self.on not in ("any", request_kind):
            return False
        self.seen += 1
        if self.seen <= self.after or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class Faults:
    """The faults waiting for requests; each fires on its matching requests after `after` of them."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self, kind: str, *, on: str = "any", after: int = 0, times: int | None = 1, **options: Any
    ) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
        fault = Fault(kind, on, after, times, options)
        self._faults.append(fault)
        return fault

    def firing(self, request_kind: str) -> list[Fault]:
        return [fault for fault in self._faults if fault.fires(request_kind)]


@dataclass
class SocrataDataset:
    """A SODA dataset: its columns and its rows (system fields included, values strings or None)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    shift: int = 0
    types: dict[str, str] = field(default_factory=dict)
    last_page: Any = None

    def rename(self, old: str, new: str) -> None:
        self.types = {new if name == old else name: kind for name, kind in self.types.items()}
        self.columns = [new if name == old else name for name in self.columns]
        for row in self.rows:
            if old in row:
                row[new] = row.pop(old)

    def update(self, index: int, changes: dict[str, Any]) -> None:
        ordered = sorted(self.rows, key=lambda row: (row[":updated_at"], row[":id"]))
        newest = max(parse_time(row[":updated_at"]) for row in self.rows) + timedelta(seconds=1)
        ordered[index].update({**changes, ":updated_at": soda_time(newest)})

    def delete(self, count: int) -> None:
        self.rows = sorted(self.rows, key=lambda row: row[":id"])[count:]

    def view(self) -> dict[str, Any]:
        newest = max((parse_time(row[":updated_at"]) for row in self.rows), default=EPOCH)
        return {"id": "puh4-eea4", "name": "MPD Public Safety Incidents", "rowsUpdatedAt": int(newest.timestamp()),
                "columns": [{"fieldName": name, "name": name, "dataTypeName": self.types.get(name, "text")}
                            for name in self.columns]}


@dataclass
class ArcGISLayer:
    """A FeatureServer layer: field definitions and rows of attributes (epoch ms dates)."""

    fields: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    object_id: str = "ObjectId"
    edit_field: str | None = "EditDate"
    max_records: int = 1000
    shift: int = 0
    last_page: Any = None

    def rename(self, old: str, new: str) -> None:
        self.fields = [{**f, "name": new, "alias": new} if f["name"] == old else f for f in self.fields]
        for row in self.rows:
            if old in row:
                row[new] = row.pop(old)

    def update(self, index: int, changes: dict[str, Any]) -> None:
        ordered = sorted(self.rows, key=lambda row: row[self.object_id])
        if self.edit_field:
            newest = max(row[self.edit_field] or 0 for row in self.rows)
            changes = {**changes, self.edit_field: newest + 60_000}
        ordered[index].update(changes)

    def delete(self, count: int) -> None:
        self.rows = sorted(self.rows, key=lambda row: row[self.object_id])[count:]


@dataclass
class SeenRequest:
    """A request as the server saw it (the only headers kept are the token and the user agent)."""

    path: str
    params: dict[str, str]
    kind: str
    app_token: str | None
    user_agent: str | None


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def soda_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def soda_error(status: int, code: str, message: str, data: dict[str, Any] | None = None) -> tuple[int, Any]:
    return status, {"code": code, "error": True, "message": message, "errorCode": code, "data": data or {}}


def no_such_column(name: str) -> tuple[int, Any]:
    message = f"No such column: {name}; position: Map(row -> 1, column -> 1, line -> \"{name}\")"
    return soda_error(400, "query.soql.no-such-column", message, {"column": name, "dataset": "alpha.1"})


def arcgis_error(code: int, message: str, details: list[str]) -> tuple[int, Any]:
    return 200, {"error": {"code": code, "message": message, "details": details}}


def sort_rows(rows: list[dict[str, Any]], order: str) -> list[dict[str, Any]] | str:
    """Rows sorted by an `$order`/`orderByFields` list, or the first unknown field's name."""
    known = {name for row in rows for name in row}
    for term in reversed([t.split() for t in order.split(",") if t.strip()]):
        name, descending = term[0].strip("`"), len(term) > 1 and term[1].upper() == "DESC"
        if rows and name not in known:
            return name
        rows = sorted(rows, key=lambda row: null_last(row.get(name)), reverse=descending)
    return rows


def null_last(value: Any) -> tuple[bool, Any]:
    return value is None, 0 if value is None else value


def soda_answer(dataset: SocrataDataset, params: dict[str, str]) -> tuple[int, Any]:
    names = [*SYSTEM_FIELDS, *dataset.columns]
    rows = dataset.rows
    where = params.get("$where")
    for term in AND.split(where) if where else []:
        found = SODA_TERM.match(term)
        if not found:
            return soda_error(400, "query.compiler.malformed", f"Could not parse $where: {where}")
        if not FLOATING.match(found.group(2)):
            return soda_error(400, "query.soql.type-mismatch", f"Not a floating timestamp: {found.group(2)}")
        bound, below = parse_time(found.group(2)), found.group(1) == "<"
        rows = [row for row in rows if (parse_time(row[":updated_at"]) < bound) == below]
    select = params.get("$select", "*")
    counted = COUNT_SELECT.match(select)
    if counted:
        return 200, [{counted.group(1) or "count": str(len(rows))}]
    chosen: list[str] = []
    for term in (t.strip().strip("`") for t in select.split(",")):
        if term in (":*", "*"):
            chosen += list(SYSTEM_FIELDS) if term == ":*" else dataset.columns
        elif term in names:
            chosen.append(term)
        else:
            return no_such_column(term)
    ordered = sort_rows(rows, params.get("$order", ":id"))
    if isinstance(ordered, str):
        return no_such_column(ordered)
    offset = max(int(params.get("$offset", 0)) - dataset.shift, 0)
    page = ordered[offset : offset + int(params.get("$limit", 1000))]
    return 200, [{name: row[name] for name in chosen if row.get(name) is not None} for row in page]


def arcgis_answer(layer: ArcGISLayer, query: bool, params: dict[str, str]) -> tuple[int, Any]:
    if params.get("f") not in ("json", "pjson"):
        return 400, {"error": "f=json expected"}
    names = [f["name"] for f in layer.fields]
    if not query:
        return 200, layer_metadata(layer)
    rows = arcgis_rows(layer, params.get("where", ""))
    if rows is None:
        return arcgis_error(400, "Unable to complete operation.",
                            ["Unable to perform query. Please check your parameters."])
    if params.get("objectIds"):
        wanted = {int(value) for value in params["objectIds"].split(",")}
        rows = [row for row in rows if row.get(layer.object_id) in wanted]
    if params.get("returnCountOnly") == "true":
        return 200, {"count": len(rows)}
    if params.get("returnIdsOnly") == "true":
        ids = [row[layer.object_id] for row in rows if row.get(layer.object_id) is not None]
        return 200, {"objectIdFieldName": layer.object_id, "objectIds": sorted(ids)}
    out = params.get("outFields", "*")
    chosen = names if out.strip() == "*" else [name.strip() for name in out.split(",")]
    unknown = [name for name in chosen if name not in names]
    ordered = sort_rows(rows, params.get("orderByFields", layer.object_id))
    if isinstance(ordered, str) or unknown:
        bad = unknown[0] if unknown else ordered
        return arcgis_error(400, "Unable to complete operation.",
                            [f"'Invalid field: {bad}' parameter is invalid"])
    offset = max(int(params.get("resultOffset", 0)) - layer.shift, 0)
    size = min(int(params.get("resultRecordCount", layer.max_records)), layer.max_records)
    page = ordered[offset : offset + size]
    body = {"objectIdFieldName": layer.object_id, "fields": [f for f in layer.fields if f["name"] in chosen],
            "features": [feature(row, chosen, params.get("returnGeometry") == "true") for row in page]}
    if offset + size < len(ordered):
        body["exceededTransferLimit"] = True
    return 200, body


def feature(row: dict[str, Any], chosen: list[str], geometry: bool) -> dict[str, Any]:
    """A feature: the chosen attributes, and the row's `GEOMETRY` when asked for."""
    shape = {"geometry": row[GEOMETRY]} if geometry and GEOMETRY in row else {}
    return {"attributes": {name: row.get(name) for name in chosen}, **shape}


def layer_metadata(layer: ArcGISLayer) -> dict[str, Any]:
    edit = {"editFieldsInfo": {"editDateField": layer.edit_field}} if layer.edit_field else {}
    newest = max((row.get(layer.edit_field) or 0 for row in layer.rows), default=0) if layer.edit_field else None
    return {"id": 0, "name": "MPD_Public_Safety_Incidents", "type": "Feature Layer",
            "objectIdField": layer.object_id, "maxRecordCount": layer.max_records,
            "advancedQueryCapabilities": {"supportsPagination": True, "supportsOrderBy": True},
            "editingInfo": {"lastEditDate": newest} if newest else {}, "fields": layer.fields, **edit}


def arcgis_rows(layer: ArcGISLayer, where: str) -> list[dict[str, Any]] | None:
    """The rows a conjunction of `1=1`, `f >= TIMESTAMP '...'` and `f > n` selects (None: cannot parse)."""
    names = {f["name"] for f in layer.fields}
    rows = layer.rows
    for term in AND.split(where.replace("(", " ").replace(")", " ").strip()):
        if term.strip() == "1=1":
            continue
        timed, above = ARCGIS_TIME.match(term), ARCGIS_ABOVE.match(term)
        found = timed or above
        if not found or found.group(1) not in names:
            return None
        if timed:
            lower = datetime.strptime(timed.group(2), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
            bound, strict = int((lower - EPOCH).total_seconds() * 1000), False
        else:
            bound, strict = int(found.group(2)), True
        name = found.group(1)
        rows = [row for row in rows if row.get(name) is not None
                and (row[name] > bound if strict else row[name] >= bound)]
    return rows


class FakeServer:
    """The test server: register datasets, start it (a context manager), point presets at its URLs."""

    def __init__(self) -> None:
        self.socrata: dict[str, SocrataDataset] = {}
        self.arcgis: dict[str, ArcGISLayer] = {}
        self.faults = Faults()
        self.requests: list[SeenRequest] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None, "start the server first"
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add_socrata(self, dataset_id: str, rows: list[dict[str, Any]], columns: list[str],
                    types: dict[str, str] | None = None) -> str:
        """Serve a SODA dataset (with `types`: dataTypeName by column for its metadata); returns its URL."""
        self.socrata[dataset_id] = SocrataDataset(list(columns), [dict(row) for row in rows], types=dict(types or {}))
        return f"{self.url}/resource/{dataset_id}.json"

    def add_arcgis(self, rows: list[dict[str, Any]], fields: list[dict[str, Any]], *,
                   name: str = "MPD_Public_Safety_Incidents", **layer: Any) -> str:
        """Serve a FeatureServer layer; returns the layer URL (without /query)."""
        path = f"/arcgis/rest/services/{name}/FeatureServer/0"
        self.arcgis[path] = ArcGISLayer(list(fields), [dict(row) for row in rows], **layer)
        return self.url + path

    def start(self) -> "FakeServer":
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        serve = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        serve.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests_of(self, kind: str) -> list[SeenRequest]:
        return [request for request in self.requests if request.kind == kind]

    def answer(self, path: str, params: dict[str, str], headers: Any) -> tuple[int, Any, list[Fault]]:
        """Status, JSON body and the per-response faults for one request (dataset faults applied)."""
        with self.lock:
            target, kind, respond = self._route(path, params)
            token, agent = headers.get("X-App-Token"), headers.get("User-Agent")
            self.requests.append(SeenRequest(path, params, kind, token, agent))
            later, kinds = [], set()
            for fault in self.faults.firing(kind):
                if fault.kind in DATA_CHANGES and target is not None:
                    apply_change(target, fault)
                else:
                    later.append(fault)
                    kinds.add(fault.kind)
            status, body = respond(skip="skip" in kinds)
            if kind == "page" and target is not None:
                status, body = (200, target.last_page) if "repeat" in kinds and target.last_page else (status, body)
                target.last_page = body if status == 200 else target.last_page
        return status, body, later

    def _route(self, path: str, params: dict[str, str]) -> tuple[Any, str, Any]:
        soda = re.fullmatch(r"/(resource|api/views)/([\w-]+)\.json", path)
        if soda:
            dataset = self.socrata.get(soda.group(2))
            select = params.get("$select", "")
            kind = "meta" if soda.group(1) != "resource" else "count" if COUNT_SELECT.match(select) \
                else "page" if ":*" in select else "probe"
            if dataset is None:
                message = f"Dataset {soda.group(2)} not found"
                return None, kind, lambda skip: soda_error(404, "not_found", message)
            if kind == "meta":
                return dataset, kind, lambda skip: (200, dataset.view())
            return dataset, kind, lambda skip: soda_answer(dataset, skipped(params, skip, "$offset", "$limit"))
        layer_path = path.removesuffix("/query")
        layer = self.arcgis.get(layer_path)
        query = path.endswith("/query")
        kind = "meta" if not query else "count" if params.get("returnCountOnly") == "true" \
            else "ids" if params.get("returnIdsOnly") == "true" else "page"
        if layer is None:
            return None, kind, lambda skip: arcgis_error(400, "Invalid URL", ["Invalid URL"])
        return layer, kind, lambda skip: arcgis_answer(
            layer, query, skipped(params, skip, "resultOffset", "resultRecordCount", layer.max_records))


def skipped(params: dict[str, str], skip: bool, offset: str, size: str, default: int = 1000) -> dict[str, str]:
    """The parameters of the page after this one, when a `skip` fault fires."""
    if not skip:
        return params
    return {**params, offset: str(int(params.get(offset, 0)) + int(params.get(size, default)))}


def apply_change(target: SocrataDataset | ArcGISLayer, fault: Fault) -> None:
    options = fault.options
    if fault.kind == "shift":
        target.shift += options.get("rows", 1)
    elif fault.kind == "delete":
        target.delete(options.get("rows", 1))
    elif fault.kind == "update":
        target.update(options.get("row", 0), dict(options.get("changes", {})))
    else:
        target.rename(options["field"], options["to"])


class Handler(BaseHTTPRequestHandler):
    """Answers GETs from the owning FakeServer, applying the faults that fire."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        owner: FakeServer = self.server.owner  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        status, body, faults = owner.answer(parts.path, dict(parse_qsl(parts.query)), self.headers)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        mode = None
        for fault in faults:
            options = fault.options
            if fault.kind == "hang" and owner.stopping.wait(options.get("seconds", 5.0)):
                return
            if fault.kind == "status":
                status = options.get("status", 500)
                default = {"code": f"http_{status}", "error": True, "message": "injected fault"}
                body = options.get("body", default)
                if "retry_after" in options:
                    headers["Retry-After"] = str(options["retry_after"])
            if fault.kind == "error":
                status, body = arcgis_error(options.get("code", 500), options.get("message", "Error"),
                                            list(options.get("details", [])))
            if fault.kind == "truncate":
                mode = options.get("mode", "cut")
        self.send(status, json.dumps(body).encode(), headers, mode)

    def send(self, status: int, data: bytes, headers: dict[str, str], mode: str | None) -> None:
        sent = data[: len(data) // 2] if mode else data
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data) if mode == "short" else len(sent)))
            self.end_headers()
            self.wfile.write(sent)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        pass
