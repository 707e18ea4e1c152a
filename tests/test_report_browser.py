"""The shareable pages: report.html and reports/index.html, rendered in headless Chromium.

One real pipeline run (run_pipeline.py on a small demo) and one failing run feed the browser tests, and
one run of the live ArcGIS preset against the test server on 127.0.0.1 (real data's wording: citation,
staleness). Pages are looked at 1400 and 420 px wide (a laptop, a phone). Chromium is Debian's package,
driven over the DevTools protocol; screenshots go to test-artifacts/.
"""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import nbformat
from nbconvert import HTMLExporter
import pandas as pd
import pytest
import requests
import websocket
from fake_sources import FakeServer
from fake_sources.rows import arcgis_fields
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image
from pipeline_runs import ROWS, run_pipeline

from memphis_incidents import reports
from memphis_incidents.config import load_preset
from memphis_incidents.labels import label
from memphis_incidents.precincts import synthetic_outlines
from memphis_incidents.sources.demo import demo_snapshot
from memphis_incidents.warehouse.local import LocalWarehouse

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
LAPTOP_WIDTH = 1366
WIDTHS = (1400, 420)  # a laptop, a phone held upright
STALE_DAYS = 7
ONE_PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--remote-debugging-port=0"]


# ---- report pages, no browser --------------------------------------------------------------------
def executed_notebook(path: Path) -> Path:
    """A small executed notebook: a title, two sections and one image with alt text."""
    image = new_output("display_data", data={"image/png": ONE_PIXEL_PNG},
                       metadata={"image/png": {"alt": "Chart. A & B", "width": 500}})
    cells = [new_markdown_cell("# Title"), new_markdown_cell("## First: part"),
             new_code_cell("show_figure(fig)", outputs=[image]), new_markdown_cell("## Second")]
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_report_page_is_self_contained_with_alt_text_and_contents(tmp_path):
    page = reports.notebook_html(executed_notebook(tmp_path / "04_analysis.ipynb"))
    assert "<script" not in page and "https://" not in page.split("<body")[1]
    assert 'alt="Chart. A &amp; B"' in page and 'width="500"' in page
    assert "show_figure" not in page and "Generated from <code>04_analysis.ipynb</code>" in page
    assert page.count('class="mi-toc"') == 1
    assert '<li><a href="#First:-part">First: part</a></li><li><a href="#Second">Second</a></li>' in page
    assert page.index("mi-toc") < page.index('id="First:-part"')
    assert re.search(r'</nav><div [^>]*class="jp-Cell ', page)  # before the section's cell, not inside it
    assert "<title>Title</title>" in page


def test_pages_give_an_image_without_alt_text_a_placeholder_and_cells_a_tab_stop_as_nbconvert_does(tmp_path):
    """reports.PageExporter does on the markup as text what nbconvert's HTMLExporter does in its
    BeautifulSoup pass: the same placeholders and tab stops, on the same elements."""
    image = new_output("display_data", data={"image/png": ONE_PIXEL_PNG})
    cells = [new_markdown_cell("# Title"), new_code_cell("1 + 1", outputs=[image, image]), new_code_cell("x = 1")]
    notebook = new_notebook(cells=cells)
    options = {"template_name": "report", "extra_template_basedirs": [str(reports.TEMPLATES)]}
    ours, _ = reports.PageExporter(**options).from_notebook_node(notebook)
    theirs, _ = HTMLExporter(**options).from_notebook_node(notebook)
    placeholder = 'alt="No description has been provided for this image"'
    assert ours.count(placeholder) == theirs.count(placeholder) == 2
    focusable = re.compile(r'<div class="[^"]*\b(jp-Cell-inputWrapper|jp-OutputArea-output)\b[^>]*tabindex="0"')
    assert focusable.findall(ours) == focusable.findall(theirs)
    assert sorted(focusable.findall(ours)) == ["jp-Cell-inputWrapper"] * 3 + ["jp-OutputArea-output"] * 2


def test_notebook_pages_show_code_and_sit_beside_each_notebook(tmp_path):
    executed_notebook(tmp_path / "01_ingest.ipynb")
    pages = reports.write_notebook_pages(tmp_path)
    assert pages == [tmp_path / "01_ingest.html"]
    assert "show_figure" in pages[0].read_text()


def manifest(run_id: str, status: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "status": status, "profile": "embedded", "source": "demo", "synthetic": True,
            "started_at": "2026-11-01T03:00:00+00:00", "finished_at": "2026-11-01T03:01:14+00:00",
            "steps": steps, "rows": {"received": 1200, "loaded": 1190, "quarantined": 7}, **extra}


def test_index_row_shows_the_failing_step_and_links_what_exists(tmp_path):
    folder = tmp_path / "r1"
    folder.mkdir()
    (folder / "01_ingest.html").write_text("")
    (folder / "02_warehouse_load.ipynb").write_text("{}")
    error = {"ename": "DataQualityError", "evalue": "batch r1: 9% rejected\n<b>limit</b> 5%", "cell": 4}
    doc = manifest("r1", "failed", [
        {"name": "ingest", "notebook": "01_ingest.ipynb", "status": "succeeded", "error": None},
        {"name": "load", "notebook": "02_warehouse_load.ipynb", "status": "failed", "error": error},
        {"name": "aggregate", "notebook": "03_spark_aggregate.ipynb", "status": "skipped", "error": None}])
    row = reports.index_row(doc, tmp_path)
    assert "failed at load (cell 4): DataQualityError: batch r1: 9% rejected &lt;b&gt;limit&lt;/b&gt; 5%" in row
    assert '<a href="r1/01_ingest.html">ingest</a> · <a href="r1/02_warehouse_load.ipynb">load</a>' in row
    assert ">aggregate</a>" not in row and ">report</a>" not in row  # no page: no link
    assert "load: failed" in row and "aggregate: skipped" in row
    assert '<td class="num">1,190</td>' in row and "1 min 14 s" in row


def test_index_row_says_which_steps_ran_were_skipped_or_reused_and_what_the_load_changed(tmp_path):
    steps = [{"name": "ingest", "notebook": "01_ingest.ipynb", "status": "succeeded", "reason": "always asks the source"},
             {"name": "load", "notebook": "02_warehouse_load.ipynb", "status": "succeeded", "reason": "new batch"},
             {"name": "aggregate", "notebook": "03_spark_aggregate.ipynb", "status": "skipped",
              "reason": "inputs unchanged", "reused_from": "r1"},
             {"name": "analysis", "notebook": "04_analysis.ipynb", "status": "skipped", "reason": "not selected"}]
    rows = {"received": 4, "loaded": 4, "quarantined": 0, "inserted": 1, "updated": 0, "unchanged": 3}
    row = reports.index_row(manifest("r2", "succeeded", steps, rows=rows), tmp_path)
    assert "<div>ingest: ran</div><div>load: ran</div>" in row
    assert "aggregate: reused from r1 (nothing it reads changed)" in row and "analysis: skipped (not selected)" in row
    assert "<td>1 new · 3 unchanged</td>" in row


def test_a_reused_report_says_so_and_links_the_index_and_the_previous_report(tmp_path):
    for run_id, started in (("r1", "2026-11-01T03:00:00+00:00"), ("r2", "2026-11-02T03:00:00+00:00")):
        (tmp_path / run_id).mkdir()
        reports.write_manifest(tmp_path / run_id / "run.json", manifest(run_id, "succeeded", [], started_at=started))
        (tmp_path / run_id / "report.html").write_text(f"<html><body><main>{run_id}</main></body></html>")
    report = tmp_path / "r2" / "report.html"
    assert reports.previous_report(tmp_path, "r2") == "r1" and reports.previous_report(tmp_path, "r1") is None
    page = reports.with_run_notice(report, "r2", "r1", "r1").read_text()
    assert 'href="../index.html"' in page and 'href="../r1/report.html"' in page
    assert "Reused report.</strong> Nothing this report reads changed since run r1" in page
    again = reports.with_run_notice(report, "r2", None, "r1").read_text()
    assert again.count('class="mi-run"') == 1 and "Reused report" not in again


def test_index_lists_runs_newest_first(tmp_path):
    for run_id, started in (("old", "2026-10-01T03:00:00+00:00"), ("new", "2026-11-01T03:00:00+00:00")):
        (tmp_path / run_id).mkdir()
        reports.write_manifest(tmp_path / run_id / "run.json", manifest(run_id, "succeeded", [], started_at=started))
    page = reports.write_index(tmp_path).read_text()
    assert page.index('data-run-id="new"') < page.index('data-run-id="old"')
    assert "2 run(s)" in page and "<script" not in page


# ---- a real run, in a real browser ---------------------------------------------------------------


class Chromium:
    """Headless Chromium over the DevTools protocol: open pages, read the DOM, note what went wrong."""

    def __init__(self, profile: Path):
        binary = shutil.which("chromium")
        if binary is None:
            pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
        self.process = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._devtools_port(profile / "DevToolsActivePort")
        target = next(t for t in requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
                      if t["type"] == "page")
        self.socket = websocket.create_connection(target["webSocketDebuggerUrl"], suppress_origin=True, timeout=60)
        self.calls = 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.resize(LAPTOP_WIDTH)

    def resize(self, width: int) -> None:
        """Lay pages out `width` CSS px wide, as a phone does below 600 px (its viewport meta tag obeyed)."""
        self.width = width
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                  mobile=width < 600)

    def _devtools_port(self, announce: Path) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if announce.exists() and announce.read_text().strip():
                return announce.read_text().split()[0]
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port within 30 s")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.calls:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def open(self, path: Path) -> None:
        """Load a local page and wait for its load event (all images fetched and decoded)."""
        self.events.clear()
        self.call("Page.navigate", url=path.resolve().as_uri())
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(json.loads(self.socket.recv()))

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries and failed loads since the last open."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(f"console: {params['args']}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']['text']}")
            elif method == "Network.loadingFailed":
                found.append(f"failed load: {params.get('errorText')}")
        return found

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, target: Path) -> None:
        """A full-page PNG at the current width."""
        height = self.evaluate("document.documentElement.scrollHeight")
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(self.capture({"x": 0, "y": 0, "width": self.width, "height": height}))

    def capture(self, box: dict[str, float]) -> bytes:
        """A PNG of a box of the page (page coordinates, CSS px)."""
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip={**box, "scale": 1})
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


IMAGES = "[...document.images].map(i => ({ok: i.complete && i.naturalWidth > 0, alt: i.alt}))"
HEADLINE = ("Object.fromEntries([...document.querySelectorAll('[data-key]')]"
            ".map(e => [e.dataset.key, e.dataset.value]))")
CONTENTS = ("[...document.querySelectorAll('nav.mi-toc a')]"
            ".map(a => !!document.getElementById(decodeURIComponent(a.hash.slice(1))))")
FITS_WIDTH = "document.documentElement.scrollWidth <= window.innerWidth"
FIGURES = ("[...document.querySelectorAll('figure.mi-figure svg')].filter(s => s.getBoundingClientRect().width)"
           ".map(s => s.getAttribute('aria-label'))")
SHOWN_TEXT = """[...document.querySelectorAll('figure.mi-figure svg')].filter(s => s.getBoundingClientRect().width)
  .flatMap(svg => [...svg.querySelectorAll('text')].map(t => ({
    figure: svg.getAttribute('aria-label'), text: t.textContent,
    px: parseFloat(getComputedStyle(t).fontSize) * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width})))"""
OVERFLOWING = """[...document.querySelectorAll('body *')].filter(e => {
  const box = e.getBoundingClientRect();
  return box.width > 0 && (box.left < -1 || box.right > window.innerWidth + 1) && !e.closest('.mi-scroll');
}).map(e => e.tagName + ' ' + (e.getAttribute('class') || '') + ' ' + (e.textContent || '').slice(0, 40))"""
TABLES = """[...document.querySelectorAll('main table')].map(t => {
  const box = t.closest('.mi-scroll');
  return {wrapped: !!box, scrolls: !!box && box.scrollWidth > box.clientWidth + 8,
          overflow: box ? getComputedStyle(box).overflowX : '', keyboard: !!box && box.tabIndex === 0};
})"""
STALE = ("[...document.querySelectorAll('.mi-stale[role=alert]')].filter(e => e.getBoundingClientRect().width)"
         ".map(e => e.innerText)")


def assert_renders_cleanly(browser: Chromium, page: Path) -> None:
    """No console errors, nothing fetched from the network, every image loaded, no sideways scrolling."""
    browser.open(page)
    assert browser.problems() == [], page.name
    assert all(url.startswith(("file:", "data:")) for url in browser.requested_urls()), browser.requested_urls()
    assert all(image["ok"] for image in browser.evaluate(IMAGES)), f"{page.name}: an image did not load"
    assert browser.evaluate(FITS_WIDTH), f"{page.name} scrolls sideways at {LAPTOP_WIDTH} px"


@pytest.mark.slow
def test_report_renders_offline_with_every_figure_and_a_working_contents(archive, browser):
    report = archive["reports"] / "good" / "report.html"
    browser.resize(LAPTOP_WIDTH)
    assert_renders_cleanly(browser, report)
    figures = browser.evaluate(FIGURES)
    assert len(figures) >= 9
    assert all(f.startswith("Chart. ") for f in figures), figures
    links = browser.evaluate(CONTENTS)
    assert len(links) >= 8 and all(links)
    text = browser.evaluate("document.body.innerText")
    assert "Synthetic data" in text and "sex crimes and juvenile-specific crime types" in text
    assert "import " not in text
    browser.screenshot(ARTIFACTS / "report.png")


@pytest.mark.slow
def test_headline_numbers_match_run_json_and_the_marts(archive, browser):
    browser.resize(LAPTOP_WIDTH)
    browser.open(archive["reports"] / "good" / "report.html")
    shown = browser.evaluate(HEADLINE)
    summary, rows = archive["summary"], archive["run"]["rows"]
    assert int(shown["offense_rows"]) == summary["offense_rows"] == rows["loaded"]
    assert int(shown["incidents"]) == summary["incidents"]
    last = pd.Timestamp(summary["last_offense_date"])
    assert shown["last_offense_date"] == f"{last.day} {last:%b %Y}"
    assert shown["latest_full_month"] == (last.to_period("M") - 1).strftime("%B %Y")
    for key in ("received", "loaded", "quarantined", "duplicates"):
        assert int(shown[key]) == rows[key], key
    assert int(shown["quarantined_rows"]) == rows["quarantined"]
    assert rows["received"] == ROWS


@pytest.mark.slow
def test_index_lists_both_runs_and_every_linked_page_renders(archive, browser):
    index = archive["reports"] / "index.html"
    browser.resize(LAPTOP_WIDTH)
    assert_renders_cleanly(browser, index)
    rows = browser.evaluate("[...document.querySelectorAll('tr[data-run-id]')].map(r => r.innerText)")
    good, bad = (next(r for r in rows if run_id in r) for run_id in ("good", "bad"))
    assert "succeeded" in good and f"{ROWS:,}" in good and "synthetic" in good
    assert "failed at load" in bad and "DataQualityError" in bad
    browser.screenshot(ARTIFACTS / "index.png")
    links = browser.evaluate("[...document.querySelectorAll('td a')].map(a => a.getAttribute('href'))")
    expected = {"good/report.html", "good/01_ingest.html", "good/02_warehouse_load.html",
                "good/03_spark_aggregate.html", "good/04_analysis.html", "bad/01_ingest.html",
                "bad/02_warehouse_load.html"}
    assert set(links) == expected, "each executed notebook should be linked as its rendered page " \
        "(the runner renders them with reports.write_notebook_pages)"
    for link in sorted(expected - {"good/report.html"}):
        assert_renders_cleanly(browser, archive["reports"] / link)
        assert browser.evaluate("document.querySelectorAll('.jp-InputArea').length") > 0, f"{link} hides its code"


# ---- a laptop and a phone ------------------------------------------------------------------------
def edge_darkness(png: bytes) -> tuple[float, float]:
    """How much darker than white the leftmost and rightmost 3 px of a screenshot are (0-255)."""
    pixels = Image.open(io.BytesIO(png)).convert("L")

    def darkness(x0: int) -> float:
        return 255 - sum(pixels.crop((x0, 0, x0 + 3, pixels.height)).getdata()) / (3 * pixels.height)
    return darkness(0), darkness(pixels.width - 3)


def scroll_edges(browser: Chromium, index: int, to_end: bool) -> tuple[float, float]:
    """Edge darkness of the index-th table box, scrolled to its start or its end."""
    box = browser.evaluate(f"""(() => {{ const box = document.querySelectorAll('.mi-scroll')[{index}];
        box.scrollLeft = {'box.scrollWidth' if to_end else 0}; box.scrollIntoView();
        const r = box.getBoundingClientRect();
        return {{x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}}; }})()""")
    return edge_darkness(browser.capture(box))


def assert_fits_with_tables_that_show_they_scroll(browser: Chromium, page: Path) -> None:
    """Nothing wider than the screen but tables, each in a box that scrolls (by keyboard too) and, when
    it has more to show on a side, darkens that edge."""
    assert browser.evaluate(FITS_WIDTH), f"{page.name} scrolls sideways at {browser.width} px"
    assert browser.evaluate(OVERFLOWING) == [], f"{page.name}: content wider than {browser.width} px"
    tables = browser.evaluate(TABLES)
    assert tables and all(t["wrapped"] and t["overflow"] == "auto" and t["keyboard"] for t in tables), tables
    scrolling = [i for i, t in enumerate(tables) if t["scrolls"]]
    if browser.width < 600:
        assert scrolling, "no table is wider than a phone: the scroll cue went untested"
    for index in scrolling[:1]:
        left, right = scroll_edges(browser, index, to_end=False)
        assert right > left + 20, f"no shadow on the right edge of a table with more to its right ({left}, {right})"
        left, right = scroll_edges(browser, index, to_end=True)
        assert left > right + 20, f"no shadow on the left edge of a table scrolled to its end ({left}, {right})"


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_report_reads_on_a_laptop_and_a_phone(archive, browser, width):
    report = archive["reports"] / "good" / "report.html"
    browser.resize(width)
    browser.open(report)
    assert_fits_with_tables_that_show_they_scroll(browser, report)
    shown = browser.evaluate(SHOWN_TEXT)
    assert len(browser.evaluate(FIGURES)) >= 9 and shown
    small = sorted({(round(t["px"], 1), t["text"]) for t in shown if t["px"] < 8})
    assert small == [], f"figure text under 8 px at {width} px: {small[:10]}"
    on_map = {t["text"] for t in shown if t["figure"].startswith("Chart. Where offenses were reported")}
    assert {label(name) for name in synthetic_outlines().names} <= on_map  # the demo's precinct outlines, named
    text = browser.evaluate("document.body.innerText")
    assert "How to cite the data: synthetic demo data (not real incidents)" in text
    browser.screenshot(ARTIFACTS / f"report-{width}.png")


def made_on(run: dict[str, Any]) -> pd.Timestamp:
    """The Memphis day a run started (its report's "today")."""
    return pd.Timestamp(run["started_at"]).tz_convert("America/Chicago").tz_localize(None).normalize()


@pytest.mark.slow
def test_the_demo_report_warns_that_its_snapshot_is_stale(archive, browser):
    browser.resize(WIDTHS[-1])
    browser.open(archive["reports"] / "good" / "report.html")
    age = (made_on(archive["run"]) - pd.Timestamp(archive["summary"]["last_offense_date"])).days
    assert age > STALE_DAYS, "the demo's snapshot (DEMO_ANCHOR) is no longer in the past: pick a stale case"
    assert browser.evaluate(STALE) == [
        f"Stale data. The newest offense in this synthetic data is from "
        f"{pd.Timestamp(archive['summary']['last_offense_date']):%d %B %Y}, {age} days before this report was made: "
        "the demo is a fixed snapshot (-p demo_day N serves the days after it)."]


@pytest.fixture(scope="module")
def live_report(tmp_path_factory) -> dict[str, Any]:
    """A report of the live ArcGIS preset (the demo's rows, served by the test server on 127.0.0.1):
    real data's citation, and its newest offense weeks before the run."""
    root = tmp_path_factory.mktemp("live")
    rows = {row["ObjectId"]: row for row in demo_snapshot(ROWS, 42, 0).to_pylist()}  # one row per ObjectId
    with FakeServer() as server:
        url = server.add_arcgis(list(rows.values()), arcgis_fields(load_preset("memphis-arcgis")))
        run = run_pipeline("--source", "memphis-arcgis", "-p", "base_url", url, "--run-id", "live",
                           "-p", "http_retries", "1", "-p", "http_backoff", "0", "-p", "data_dir", str(root / "data"),
                           "--reports-dir", str(root / "reports"))
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads((root / "reports" / "live" / "run.json").read_text())
    summary = LocalWarehouse(Path(doc["data_root"]) / "warehouse").read_mart("summary").iloc[0]
    age = (made_on(doc) - pd.Timestamp(summary["last_offense_date"])).days
    assert age > STALE_DAYS, "the demo's rows (DEMO_ANCHOR) are no longer weeks old: pick a stale case"
    return {"report": root / "reports" / "live" / "report.html", "url": url, "run": doc, "summary": summary,
            "age": age}


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_a_live_report_cites_its_source_and_warns_when_the_data_is_stale(live_report, browser, width):
    browser.resize(width)
    browser.open(live_report["report"])
    assert_fits_with_tables_that_show_they_scroll(browser, live_report["report"])
    last = pd.Timestamp(live_report["summary"]["last_offense_date"])
    assert browser.evaluate(STALE) == [
        f"Stale data. The newest offense in this data is from {last:%d %B %Y}, {live_report['age']} days before this "
        "report was made: the source may have stopped updating, or this run could not reach it. Recent figures are "
        "out of date."]
    cite = live_report["run"]["citation"]
    assert (cite["publisher"], cite["url"]) == ("Memphis Police Department", live_report["url"])
    text = browser.evaluate("document.body.innerText")
    assert f"How to cite the data: Memphis Police Department, {cite['title']}, {cite['url']}, " \
           f"retrieved {cite['retrieved_at']}; the source was last updated " in text
    assert "Synthetic data" not in text
    browser.screenshot(ARTIFACTS / f"report-live-{width}.png")
