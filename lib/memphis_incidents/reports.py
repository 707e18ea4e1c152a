"""Run reports: the shareable HTML pages of executed notebooks, run.json, and the runs index.

Every page is self-contained: images inline, styles inline, no scripts or fonts from the network,
so a report can be mailed, archived or opened offline and looks the same.
"""
from __future__ import annotations

import html
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter
from nbconvert.exporters.templateexporter import TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbformat import NotebookNode

from .layout import INDEX_PAGE, REPORT_PAGE, RUN_MANIFEST, TEMPLATES
from .pages import macro, render
from .storage import Storage, write_atomically

ERROR_CHARS = 300  # of an error message shown in the runs index
INDEX_COUNTS = ("received", "loaded", "quarantined")
CHANGE_COUNTS = ("inserted", "updated", "unchanged", "deleted_at_source")  # what the load did to the table
INDEX_HEADINGS = ("started", "run", "status", "profile", "source", "steps", *INDEX_COUNTS, "warehouse change",
                  "duration", "pages")


HEADING = re.compile(r"<h(?P<level>[12])(?P<attrs>[^>]*)>(?P<inner>.*?)</h(?P=level)>", re.S)
ANCHOR_LINK = re.compile(r'<a class="anchor-link"[^>]*>.*?</a>', re.S)
TAG = re.compile(r"<[^>]+>")
ID = re.compile(r'\bid="([^"]*)"')
IMG_WITHOUT_ALT = re.compile(r"<img(?![^>]*\balt=)")
FOCUSABLE = re.compile(r'(<div\b[^>]*?\bclass="[^"]*\b(?:jp-Cell-inputWrapper|jp-OutputArea-output)\b[^"]*")')
RUN_NOTICE = re.compile(r'<nav class="mi-run".*?</nav>', re.S)  # ours: nothing nested in it
BODY = re.compile(r"<body[^>]*>")


class PageExporter(HTMLExporter):
    """nbconvert's HTML exporter without its last pass, a BeautifulSoup parse and rewrite of the
    whole page (about 0.6 s for a page of inline SVG figures, most of the report's rendering). That
    pass gives an <img> without alt text a placeholder and makes cells' input and output areas
    focusable (tabindex="0"); the same is done here on the markup as text. The rest is
    HTMLExporter.from_notebook_node as it stands in nbconvert 7."""

    def from_notebook_node(self, nb: NotebookNode, resources: dict[str, Any] | None = None,  # type: ignore[override]
                           **kw: Any) -> tuple[str, dict[str, Any]]:
        language = nb.metadata.get("language_info", {})
        lexer = language.get("pygments_lexer", language.get("name", None))
        self.register_filter("highlight_code", self.filters.get(
            "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        page = IMG_WITHOUT_ALT.sub('<img alt="No description has been provided for this image"', page)
        return FOCUSABLE.sub(r'\1 tabindex="0"', page), resources


def notebook_html(notebook_path: str | Path, hide_code: bool = True) -> str:
    """A self-contained HTML page of an executed notebook, code hidden by default, titled by its
    first heading, with a table of contents when it has sections.

    Title and contents are placed in nbconvert's markup as text (headings `<h1 id=...>`, cells
    `<div ... class="jp-Cell ...">`): a parser of the whole page costs about half a second a page."""
    exporter = PageExporter(template_name="report", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input=hide_code, exclude_input_prompt=hide_code,
                            exclude_output_prompt=hide_code)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook_path), as_version=4),
                                          resources={"metadata": {"name": Path(notebook_path).stem}})
    return with_table_of_contents(titled_from_heading(body))


def headings(page: str, level: int) -> list[re.Match[str]]:
    """The page's headings of `level` in its main part, in order."""
    main = page.find("<main")
    return [h for h in HEADING.finditer(page, max(main, 0)) if h["level"] == str(level)]


def heading_text(heading: re.Match[str]) -> str:
    """A heading's text without nbconvert's pilcrow anchor link."""
    return html.unescape(TAG.sub("", ANCHOR_LINK.sub("", heading["inner"]))).strip()


def titled_from_heading(page: str) -> str:
    """Name the page (browser tab, bookmarks) after its first h1, when it has one."""
    first = next(iter(headings(page, 1)), None)
    if first is None:
        return page
    return re.sub(r"<title>.*?</title>", lambda _: f"<title>{html.escape(heading_text(first))}</title>", page,
                  count=1, flags=re.S)


def with_table_of_contents(page: str) -> str:
    """Put a linked list of the page's sections (h2 headings with an id) before the cell of the
    first, if there are two or more."""
    found = [(ID.search(h["attrs"]), h) for h in headings(page, 2)]
    sections = [(anchor[1], h) for anchor, h in found if anchor]
    if len(sections) < 2:
        return page
    items = "".join(f'<li><a href="#{anchor}">{html.escape(heading_text(h))}</a></li>' for anchor, h in sections)
    nav = f'<nav class="mi-toc" aria-label="Contents"><h2>Contents</h2><ol>{items}</ol></nav>'
    first = sections[0][1].start()
    cell_class = page.rfind('class="jp-Cell ', 0, first)
    at = page.rfind("<div ", 0, cell_class) if cell_class >= 0 else first  # the cell's tag, attributes in any order
    return page[:at] + nav + page[at:]


def write_report(notebook_path: str | Path, html_path: str | Path) -> Path:
    """Export the executed analysis notebook to the shareable report page (no code)."""
    return write_atomically(Path(html_path), notebook_html(notebook_path).encode("utf-8"))


def with_run_notice(report: Path, run_id: str, reused_from: str | None, previous: str | None) -> Path:
    """Put (or replace) the report's run line at its top: which run it belongs to, links to the runs
    index and the previous run's report, and, for a report reused unchanged, the run that made it."""
    page = RUN_NOTICE.sub("", report.read_text(encoding="utf-8"))
    links = [f'<a href="../{INDEX_PAGE}">all runs</a>']
    if previous:
        links.append(f'<a href="../{html.escape(previous)}/{REPORT_PAGE}">previous run\'s report ({html.escape(previous)})</a>')
    reused = (f'<p class="mi-reused"><strong>Reused report.</strong> Nothing this report reads changed since run '
              f'{html.escape(reused_from)}, so run {html.escape(run_id)} shows that run\'s report unchanged.</p>'
              if reused_from and reused_from != run_id else "")
    notice = (f'<nav class="mi-run" aria-label="Run">Run <code>{html.escape(run_id)}</code> · '
              f'{" · ".join(links)}{reused}</nav>')
    body = BODY.search(page)
    at = body.end() if body else 0
    return write_atomically(report, (page[:at] + notice + page[at:]).encode("utf-8"))


def previous_report(reports_dir: Path, run_id: str) -> str | None:
    """The newest run before `run_id` that has a report."""
    runs = [doc["run_id"] for doc in run_manifests(reports_dir) if doc.get("run_id")]
    earlier = runs[runs.index(run_id) + 1:] if run_id in runs else runs
    return next((other for other in earlier if (reports_dir / other / REPORT_PAGE).exists()), None)


def write_notebook_page(notebook: Path) -> Path:
    """Render an executed notebook, code shown, to `<name>.html` beside it."""
    return write_atomically(notebook.with_suffix(".html"), notebook_html(notebook, hide_code=False).encode("utf-8"))


def write_notebook_pages(run_folder: str | Path) -> list[Path]:
    """Render every executed notebook of a run whose page is missing or older than the notebook."""
    return [write_notebook_page(notebook) for notebook in sorted(Path(run_folder).glob("*.ipynb"))
            if not page_is_current(notebook)]


def page_is_current(notebook: Path) -> bool:
    page = notebook.with_suffix(".html")
    return page.exists() and page.stat().st_mtime_ns >= notebook.stat().st_mtime_ns


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> None:
    """Write run.json atomically (a reader never sees half a manifest)."""
    write_atomically(Path(path), (json.dumps(manifest, indent=2, default=str) + "\n").encode("utf-8"))


def archive_run(folder: Path, storage: Storage | None) -> None:
    """Copy a run's report folder to the archive storage (GCS on the gcp profile)."""
    if storage is None:
        return
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            storage.write_bytes(f"{folder.name}/{path.name}", path.read_bytes())


def run_manifests(reports_dir: Path) -> list[dict[str, Any]]:
    """Every run.json under the reports folder, newest first."""
    docs = []
    for path in reports_dir.glob(f"*/{RUN_MANIFEST}"):
        try:
            docs.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(docs, key=lambda d: d.get("started_at") or "", reverse=True)


def run_duration(doc: dict[str, Any]) -> str:
    """Wall time of a finished run as "1 min 14 s", or an empty string while it runs."""
    if not doc.get("started_at") or not doc.get("finished_at"):
        return ""
    seconds = round((datetime.fromisoformat(doc["finished_at"]) -
                     datetime.fromisoformat(doc["started_at"])).total_seconds())
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def failure_text(doc: dict[str, Any]) -> str:
    """The failing step and its error, in one line, for a failed run."""
    failed = next((s for s in doc.get("steps", []) if s.get("status") == "failed"), None)
    if failed is None:
        return ""
    error = failed.get("error") or {}
    cell = f" (cell {error['cell']})" if error.get("cell") else ""
    message = " ".join(str(error.get("evalue", "")).split())
    if len(message) > ERROR_CHARS:
        message = message[:ERROR_CHARS - 1] + "…"
    return f"failed at {failed['name']}{cell}: {error.get('ename', 'error')}: {message}"


def run_links(doc: dict[str, Any], reports_dir: Path) -> list[tuple[str, str]]:
    """(label, href relative to the index) for the run's report and each notebook its folder holds,
    rendered page first, else the notebook file."""
    folder = reports_dir / doc["run_id"]
    links = [("report", REPORT_PAGE)] if (folder / REPORT_PAGE).exists() else []
    for step in doc.get("steps", []):
        candidates = [Path(step["notebook"]).with_suffix(".html").name, step["notebook"]]
        found = next((name for name in candidates if (folder / name).exists()), None)
        if found:
            links.append((step["name"], found))
    return [(label, f"{doc['run_id']}/{href}") for label, href in links]


def step_notes(doc: dict[str, Any]) -> list[str]:
    """What happened to each step: ran, failed, skipped and why, or reused from which run."""
    notes = []
    for step in doc.get("steps", []):
        status, reason = step.get("status", ""), step.get("reason") or ""
        if step.get("reused_from"):
            notes.append(f"{step['name']}: reused from {step['reused_from']} (nothing it reads changed)")
        elif status == "skipped":
            notes.append(f"{step['name']}: skipped ({reason})" if reason else f"{step['name']}: skipped")
        elif status:
            notes.append(f"{step['name']}: {'ran' if status == 'succeeded' else status}")
    return notes


def change_text(rows: dict[str, Any]) -> str:
    """What this run's load changed in the warehouse, e.g. "12 new · 3 updated · 980 unchanged"."""
    words = {"inserted": "new", "updated": "updated", "unchanged": "unchanged", "deleted_at_source": "deleted"}
    parts = [f"{rows[key]:,} {words[key]}" for key in CHANGE_COUNTS if rows.get(key)]
    return " · ".join(parts) if parts else ("no change" if "inserted" in rows else "")


def index_entry(doc: dict[str, Any], reports_dir: Path) -> dict[str, Any]:
    """What the runs index shows of one run: when, which, status (and why it failed), what each step
    did, this run's rows and what its load changed, duration, links."""
    rows = doc.get("rows") or {}
    return {"run_id": doc["run_id"], "status": doc.get("status", ""), "error": failure_text(doc),
            "started": (doc.get("started_at") or "").replace("T", " ").replace("+00:00", " UTC"),
            "profile": str(doc.get("profile", "")), "source": str(doc.get("source", "")),
            "synthetic": bool(doc.get("synthetic")),
            "steps": step_notes(doc), "change": change_text(rows),
            "counts": ["" if rows.get(key) is None else f"{rows[key]:,}" for key in INDEX_COUNTS],
            "duration": run_duration(doc), "links": run_links(doc, reports_dir)}


def index_row(doc: dict[str, Any], reports_dir: Path) -> str:
    """One run as a row of the runs index."""
    return macro("runs/row.html.j2", "row")(index_entry(doc, reports_dir))


def write_index(reports_dir: Path) -> Path:
    """reports/index.html: every run, newest first, with its status and links to its pages."""
    runs = [index_entry(doc, reports_dir) for doc in run_manifests(reports_dir)]
    page = render("runs/index.html.j2", runs=runs, headings=INDEX_HEADINGS)
    return write_atomically(reports_dir / INDEX_PAGE, page.encode("utf-8"))
