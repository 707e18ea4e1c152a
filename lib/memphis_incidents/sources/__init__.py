"""Sources of raw incident rows, chosen by preset kind: demo, socrata or arcgis."""
from __future__ import annotations

from typing import Any

from ..config import Preset, RunParameters
from .base import Pull, Source

__all__ = ["Pull", "Source", "make_source"]


def make_source(preset: Preset, params: RunParameters, progress: bool = True) -> Source:
    """The source client for a preset, configured from the run parameters."""
    if preset.kind == "demo":
        from .demo import DemoSource

        return DemoSource(preset, rows=params.demo_rows, seed=params.demo_seed, day=params.demo_day)
    http: dict[str, Any] = {"retries": params.http_retries, "backoff_factor": params.http_backoff, "progress": progress,
            "timeout": (min(10.0, params.http_timeout), params.http_timeout)}
    if preset.kind == "socrata":
        from .socrata import SocrataSource

        return SocrataSource(preset, **http)
    from .arcgis import ArcGISSource

    return ArcGISSource(preset, **http)
