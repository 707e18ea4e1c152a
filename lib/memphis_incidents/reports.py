"""Run reports: the shareable HTML pages of executed notebooks, run.json, and the runs index.

Every page is self-contained: images inline, styles inline, no scripts or fonts from the network,
so a report can be mailed, archived or opened offline and looks the same.
"""
from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter

from .layout import INDEX_PAGE, REPORT_PAGE, RUN_MANIFEST, TEMPLATES
from .storage import Storage, write_atomically

ERROR_CHARS = 300  # of an error message shown in the runs index
INDEX_COUNTS = ("received", "loaded", "quarantined")
INDEX_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;
  margin:0 auto;max-width:90rem;padding:1rem 1.5rem}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid #d0d7de;padding:.4rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{display:inline-block;border-radius:1em;padding:0 .6em;font-weight:600;font-size:13px}
.succeeded{background:#dafbe1;color:#116329}.failed{background:#ffebe9;color:#a40e26}
.running{background:#fff8c5;color:#7d4e00}
.synthetic{font-size:12px;color:#8a3b00}
.error{color:#a40e26;font-size:13px;margin-top:.2rem;max-width:40rem;overflow-wrap:anywhere}
a{color:#0969da}
code{white-space:nowrap}
"""


def notebook_html(notebook_path: str | Path, hide_code: bool = True) -> str:
    """A self-contained HTML page of an executed notebook, code hidden by default, titled by its
    first heading, with a table of contents when it has sections."""
    exporter = HTMLExporter(template_name="report", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input=hide_code, exclude_input_prompt=hide_code,
                            exclude_output_prompt=hide_code)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook_path), as_version=4),
                                          resources={"metadata": {"name": Path(notebook_path).stem}})
    soup = BeautifulSoup(body, "html.parser")
    title_from_heading(soup)
    add_table_of_contents(soup)
    return str(soup)


def heading_text(heading: Any) -> str:
    """A heading's text without nbconvert's pilcrow anchor link."""
    return "".join(t for t in heading.find_all(string=True)
                   if not t.find_parent("a", class_="anchor-link")).strip()


def title_from_heading(soup: BeautifulSoup) -> None:
    """Name the page (browser tab, bookmarks) after its first h1, when it has one."""
    first = soup.select_one("main h1")
    if first is not None and soup.title is not None:
        soup.title.string = heading_text(first)


def add_table_of_contents(soup: BeautifulSoup) -> None:
    """Put a linked list of the page's sections (h2 headings) before the first, if there are two or more."""
    sections = [h for h in soup.select("main h2") if h.get("id")]
    if len(sections) < 2:
        return
    items = "".join(f'<li><a href="#{html.escape(str(h["id"]))}">{html.escape(heading_text(h))}</a></li>'
                    for h in sections)
    nav = BeautifulSoup(f'<nav class="mi-toc" aria-label="Contents"><h2>Contents</h2><ol>{items}</ol></nav>',
                        "html.parser")
    (sections[0].find_parent(class_="jp-Cell") or sections[0]).insert_before(nav)


def write_report(notebook_path: str | Path, html_path: str | Path) -> Path:
    """Export the executed analysis notebook to the shareable report page (no code)."""
    return write_atomically(Path(html_path), notebook_html(notebook_path).encode("utf-8"))


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


def index_row(doc: dict[str, Any], reports_dir: Path) -> str:
    """One run as a table row: when, which, status (and why it failed), rows, duration, links."""
    esc = html.escape
    rows = doc.get("rows") or {}
    status, error = esc(doc.get("status", "")), failure_text(doc)
    why = f'<div class="error">{esc(error)}</div>' if error else ""
    synthetic = '<div class="synthetic">synthetic demo data</div>' if doc.get("synthetic") else ""
    links = " · ".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in run_links(doc, reports_dir))
    cells = [
        ("", esc((doc.get("started_at") or "").replace("T", " ").replace("+00:00", " UTC"))),
        ("", f"<code>{esc(doc['run_id'])}</code>"),
        ("", f'<span class="status {status}">{status}</span>{why}'),
        ("", esc(str(doc.get("profile", "")))),
        ("", esc(str(doc.get("source", ""))) + synthetic),
        *(("num", "" if rows.get(key) is None else f"{rows[key]:,}") for key in INDEX_COUNTS),
        ("num", esc(run_duration(doc))),
        ("", links),
    ]
    return (f'<tr data-run-id="{esc(doc["run_id"])}">'
            + "".join(f'<td class="{kind}">{value}</td>' if kind else f"<td>{value}</td>" for kind, value in cells)
            + "</tr>")


def write_index(reports_dir: Path) -> Path:
    """reports/index.html: every run, newest first, with its status and links to its pages."""
    docs = run_manifests(reports_dir)
    header = "".join(f"<th>{h}</th>" for h in ("started", "run", "status", "profile", "source", *INDEX_COUNTS,
                                                "duration", "pages"))
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>memphis-incidents runs</title><style>{INDEX_CSS}</style></head><body>"
            "<h1>memphis-incidents: pipeline runs</h1>"
            f"<p>{len(docs)} run(s), newest first. Rows are this run's: received from the source, loaded "
            "into the warehouse, quarantined with a reason. Each run links its report (no code) and every "
            "executed notebook (with code).</p>"
            f"<table><thead><tr>{header}</tr></thead><tbody>"
            + "".join(index_row(doc, reports_dir) for doc in docs) + "</tbody></table></body></html>")
    return write_atomically(reports_dir / INDEX_PAGE, page.encode("utf-8"))
