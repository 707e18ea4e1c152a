"""How to cite the data behind a run or a report: publisher, dataset title, URL, retrieval time."""
from __future__ import annotations

from typing import Any


def citation(batch: dict[str, Any]) -> dict[str, Any]:
    """How to cite the data a batch came from: publisher, title, URL and when it was retrieved."""
    if not batch:
        return {}
    publisher = "synthetic demo data (not real incidents)" if batch.get("synthetic") else "Memphis Police Department"
    return {"publisher": publisher, "title": batch.get("title"), "url": batch.get("url") or None,
            "retrieved_at": batch.get("ingested_at")}


def citation_markdown(cite: dict[str, Any], source_updated: Any) -> str:
    """The report's "how to cite" line."""
    if not cite:
        return ""
    updated = f"; the source was last updated {source_updated:%d %B %Y %H:%M} (Memphis time)" if source_updated else ""
    where = f", {cite['url']}" if cite["url"] else ""
    return (f"**How to cite the data:** {cite['publisher']}, *{cite['title']}*{where}, retrieved "
            f"{cite['retrieved_at']}{updated}. Processed with memphis-incidents.")
