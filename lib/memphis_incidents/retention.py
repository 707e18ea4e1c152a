"""Retention of run reports: keep the newest N runs plus every failed one; raw batches stay."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .reports import run_manifests
from .storage import Storage


def runs_to_prune(manifests: list[dict[str, Any]], keep: int) -> list[str]:
    """Run ids beyond the newest `keep` that did not fail (manifests newest first)."""
    kept = 0
    prune = []
    for doc in manifests:
        if doc.get("status") == "failed":
            continue
        kept += 1
        if kept > keep:
            prune.append(doc["run_id"])
    return prune


def prune_reports(reports_dir: Path, keep: int, archive: Storage | None = None) -> list[str]:
    """Delete old run report folders locally and in the archive; returns the run ids removed."""
    removed = runs_to_prune(run_manifests(reports_dir), keep)
    for run_id in removed:
        shutil.rmtree(reports_dir / run_id, ignore_errors=True)
        if archive is not None:
            for key in archive.list(run_id):
                archive.delete(key)
    return removed
