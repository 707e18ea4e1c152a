"""Run reports: the shareable HTML export of the analysis and the run.json manifest."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .storage import Storage

import nbformat
from nbconvert import HTMLExporter


def notebook_html(notebook_path: str | Path, hide_code: bool = True) -> str:
    """A self-contained HTML page of an executed notebook (images inline), code hidden by default."""
    exporter = HTMLExporter(template_name="lab", exclude_input=hide_code,
                            exclude_input_prompt=hide_code, exclude_output_prompt=hide_code)
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook_path), as_version=4))
    return body


def write_report(notebook_path: str | Path, html_path: str | Path) -> Path:
    """Export the executed analysis notebook to the report page."""
    target = Path(html_path)
    target.write_text(notebook_html(notebook_path), encoding="utf-8")
    return target


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> None:
    """Write run.json atomically (a reader never sees half a manifest)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(target)


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
    for path in reports_dir.glob("*/run.json"):
        try:
            docs.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(docs, key=lambda d: d.get("started_at") or "", reverse=True)


def write_index(reports_dir: Path) -> Path:
    """reports/index.html: one line per run with its status and links to its report."""
    rows = []
    for doc in run_manifests(reports_dir):
        run_id = html.escape(doc["run_id"])
        report = f'<a href="{run_id}/report.html">report</a>' if doc.get("report") else ""
        counts = doc.get("rows") or {}
        rows.append(f"<tr><td>{run_id}</td><td>{html.escape(doc.get('status', ''))}</td>"
                    f"<td>{html.escape(str(doc.get('source')))}</td><td>{counts.get('received')}</td>"
                    f"<td>{counts.get('loaded')}</td><td>{counts.get('quarantined')}</td><td>{report}</td></tr>")
    page = ("<!doctype html><meta charset='utf-8'><title>memphis-incidents runs</title>"
            "<h1>Runs</h1><table><tr><th>run</th><th>status</th><th>source</th><th>received</th>"
            "<th>loaded</th><th>quarantined</th><th></th></tr>" + "".join(rows) + "</table>")
    target = reports_dir / "index.html"
    target.write_text(page, encoding="utf-8")
    return target
