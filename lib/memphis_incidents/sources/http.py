"""HTTP shared by the source clients: one retrying session, and GETs of JSON whose every failure
becomes one of the project's errors with a message a user can act on.

Also the page plumbing both clients share: progress reporting and keeping one version of each row.
No header is ever logged or put in a message (the Socrata app token travels in one).
"""
from __future__ import annotations

import json
import logging
import re
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Union
from urllib.parse import urlsplit

import pyarrow as pa
import requests
from requests.adapters import HTTPAdapter
from tqdm.auto import tqdm
from urllib3.util.retry import Retry

from .. import __version__
from ..config import PRESETS_ENV, Preset, load_preset, preset_names
from ..errors import DatasetNotFound, MalformedResponse, SchemaDriftError, SourceError, SourceUnreachable

log = logging.getLogger(__name__)

USER_AGENT = f"memphis-incidents/{__version__} (MPD Public Safety Incidents pipeline)"
RETRY_STATUSES = (429, 500, 502, 503, 504)
DEFAULT_TIMEOUT = (5.0, 60.0)
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 1.0
MAX_BACKOFF = 60.0
MAX_RETRY_AFTER = 300
MALFORMED_RETRIES = 2

Timeouts = Union[float, tuple[float, float]]
Progress = Callable[[int, int, Union[int, None]], None]
"""A progress callback: rows so far, pages so far, rows expected (None if unknown)."""


class MalformedPage(Exception):
    """A body that is cut off, not JSON, or not the expected shape: usually transient, so fetched again."""


def make_session(
    retries: int = DEFAULT_RETRIES,
    backoff_factor: float = DEFAULT_BACKOFF,
    headers: Mapping[str, str] | None = None,
) -> requests.Session:
    """A session retrying GETs on connection errors, timeouts, 429 and 5xx with jittered exponential
    backoff (honouring Retry-After), handing back the last response rather than raising."""
    retry = Retry(
        total=retries,
        backoff_factor=backoff_factor,
        backoff_jitter=backoff_factor,
        backoff_max=MAX_BACKOFF,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        retry_after_max=MAX_RETRY_AFTER,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})})
    return session


class JsonClient:
    """GETs JSON for one preset; failures raise SourceUnreachable, SchemaDriftError or SourceError."""

    def __init__(
        self,
        preset: Preset,
        *,
        access_hint: str = "",
        throttle_hint: str = "",
        headers: Mapping[str, str] | None = None,
        timeout: Timeouts = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF,
    ) -> None:
        self.preset = preset
        self.access_hint = access_hint
        self.throttle_hint = throttle_hint
        self.timeout = timeout
        self.read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        self.tries = retries + 1
        self.backoff_factor = backoff_factor
        self.session = make_session(retries, backoff_factor, headers)

    def get(self, url: str, params: Mapping[str, Any], valid: Callable[[Any], bool]) -> Any:
        """The JSON body of GET url?params, fetched again up to MALFORMED_RETRIES times if malformed."""
        for attempt in range(MALFORMED_RETRIES):
            try:
                return self._get_once(url, params, valid)
            except MalformedPage as problem:
                log.warning("malformed page from %s (%s); fetching it again", place(url), problem)
                time.sleep(self.backoff_factor * 2**attempt)
        try:
            return self._get_once(url, params, valid)
        except MalformedPage as problem:
            raise MalformedResponse(
                f"{self.preset.name}: malformed page from {place(url)} on all {MALFORMED_RETRIES + 1} "
                f"tries ({problem}); the source may be mid-update or a proxy is cutting responses. "
                "Re-run later."
            ) from None

    def _get_once(self, url: str, params: Mapping[str, Any], valid: Callable[[Any], bool]) -> Any:
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise MalformedPage("the body was cut off or garbled") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            reason = failure_reason(exc)
            waited = f"; waited {self.read_timeout:g} s each: raise -p http_timeout for a slow service" \
                if reason == "timed out" else ""
            raise SourceUnreachable(
                f"{self.preset.name}: cannot reach {urlsplit(url).netloc} ({reason} on all {self.tries} tries"
                f"{waited}). Check the network (proxy, VPN, firewall) and that the service is up, then re-run."
            ) from None
        except requests.RequestException as exc:
            raise SourceError(
                f"{self.preset.name}: cannot request {place(url)} ({type(exc).__name__}); "
                "check the preset's url"
            ) from None
        if response.status_code >= 400:
            raise self._status_error(response)
        try:
            body = json.loads(response.content)
        except ValueError:
            raise MalformedPage("not valid JSON") from None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            raise self._arcgis_error(url, body["error"])
        if not valid(body):
            raise MalformedPage("not the expected JSON shape")
        return body

    def _status_error(self, response: requests.Response) -> SourceError:
        status, name, where = response.status_code, self.preset.name, place(response.url)
        if status in RETRY_STATUSES:
            hint = f" {self.throttle_hint}" if status == 429 and self.throttle_hint else ""
            return SourceUnreachable(
                f"{name}: {urlsplit(response.url).netloc} still answered HTTP {status} after {self.tries} "
                f"tries; the service is overloaded or failing. Wait and re-run.{hint}"
            )
        if status == 404:
            return self._retired(where)
        if status in (401, 403):
            return SourceError(f"{name}: {where} refused access (HTTP {status}). {self.access_hint}")
        body = json_or_empty(response)
        code = body.get("errorCode") or body.get("code")
        if code == "query.soql.no-such-column":
            return missing_fields_error(self.preset, [soda_column(body)])
        detail = f" {code}" if isinstance(code, str) else ""
        return SourceError(
            f"{name}: {where} rejected the query (HTTP {status}{detail}): "
            f"{short(body.get('message') or response.reason)}"
        )

    def _arcgis_error(self, url: str, error: Mapping[str, Any]) -> Exception:
        """An ArcGIS error reported inside an HTTP 200 body (5xx ones are fetched again)."""
        code = error.get("code")
        parts = [error.get("message"), *(error.get("details") or [])]
        text = "; ".join(str(part) for part in parts if part)
        lowered = text.lower()
        if code in (401, 403, 498, 499):
            return SourceError(
                f"{self.preset.name}: {place(url)} refused access (code {code}). {self.access_hint}"
            )
        if code == 404 or "not found" in lowered or "invalid url" in lowered:
            return self._retired(place(url))
        if "invalid field" in lowered:
            field = re.search(r"invalid field:?\s*'?([\w.:]+)", text, re.IGNORECASE)
            return missing_fields_error(self.preset, [field.group(1) if field else "(unnamed)"])
        if isinstance(code, int) and code >= 500:
            return MalformedPage(f"server error {code}: {short(text)}")
        return SourceError(f"{self.preset.name}: {place(url)} answered with error {code}: {short(text)}")

    def _retired(self, where: str) -> DatasetNotFound:
        others = "; ".join(f"{name} ({load_preset(name).title})" for name in preset_names()
                           if name != self.preset.name)
        return DatasetNotFound(
            f"{self.preset.name}: {where} was not found (404): the dataset is retired or its id is wrong. "
            f"Check the preset's url (or the base_url parameter), or use another source: {others}."
        )


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def arrow_text(value: str) -> str:
    """Text Arrow can store: a lone UTF-16 surrogate (a \\udXXX escape that some servers send for
    a broken character) becomes U+FFFD, instead of failing the whole pull."""
    return LONE_SURROGATE.sub("\ufffd", value)


def missing_fields_error(preset: Preset, missing: Sequence[str], hint: str = "") -> SchemaDriftError:
    """Schema drift naming the fields the preset maps but the source no longer has."""
    return SchemaDriftError(
        f"{preset.name}: the source has no field {', '.join(missing)} that the preset maps (renamed or "
        f"removed at the source{hint}). Update the preset's fields in presets.toml, or in a presets file "
        f"named by {PRESETS_ENV}."
    )


def soda_column(body: Mapping[str, Any]) -> str:
    """The column a SODA no-such-column error names (in data.column, or in the message)."""
    data = body.get("data") or {}
    column = data.get("column") or (data.get("data") or {}).get("column")
    if not column:
        found = re.search(r"no such column:?\s*`?([\w:@]+)", str(body.get("message", "")), re.IGNORECASE)
        column = found.group(1) if found else "(unnamed)"
    return str(column)


def json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def failure_reason(exc: Exception) -> str:
    text = str(exc).lower()
    if isinstance(exc, requests.Timeout) or "timed out" in text or "timeout" in text:
        return "timed out"
    if "refused" in text:
        return "connection refused"
    if "resolve" in text or "name or service not known" in text or "getaddrinfo" in text:
        return "host name not found"
    return "connection failed"


def place(url: str) -> str:
    """Host and path of a URL, without the query: what a message needs to say where."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def short(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def page_progress(
    progress: Progress | bool, expected: Callable[[], int | None], desc: str
) -> Iterator[Callable[[int], None]]:
    """A function to call once per page with its row count: feeds a callback, a tqdm bar, or nothing."""
    if progress is False:
        yield lambda rows: None
        return
    total = expected()
    done = {"rows": 0, "pages": 0}
    if callable(progress):
        def report(rows: int) -> None:
            done["rows"] += rows
            done["pages"] += 1
            progress(done["rows"], done["pages"], total)

        yield report
        return
    with tqdm(total=total, desc=desc, unit=" rows") as bar:
        def advance(rows: int) -> None:
            done["pages"] += 1
            bar.set_postfix(pages=done["pages"], refresh=False)
            bar.update(rows)

        yield advance


def last_versions(tables: Iterable[pa.Table], key: str) -> Iterator[pa.Table]:
    """The pages with every row whose key comes again later dropped: each row once, as last received."""
    pages = list(tables)
    seen: set[Any] = set()
    kept: list[pa.Table] = []
    for table in reversed(pages):
        keep = []
        for value in reversed(table.column(key).to_pylist()):
            keep.append(value is None or value not in seen)
            seen.add(value)
        kept.append(table.filter(pa.array(keep[::-1], pa.bool_())))
    yield from (table for table in reversed(kept) if table.num_rows)
