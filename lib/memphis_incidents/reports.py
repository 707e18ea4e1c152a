"""Run reports: the shareable HTML export of the analysis and the run.json manifest."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
