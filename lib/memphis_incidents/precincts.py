"""Precinct outlines for the report's map: MPD's station areas, kept in the lake as reference data.

Live presets name the ArcGIS layer of station areas (`precincts_url`, MPD's `MPD_Station_Areas`
layer 1); it is pulled with the same HTTP client as the incidents, in WGS 84, and stored with its
URL and retrieval time. The demo has no such layer: its outlines are the Voronoi cells of the
demo's own station-area centres, clipped to the city box, and are marked synthetic.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from .config import Preset
from .layout import OUTLINES
from .schema import CITY_BOX
from .sources.base import iso_utc
from .sources.demo_world import vocabulary
from .sources.http import JsonClient, Timeouts, place
from .storage import Storage, read_json, write_json

if TYPE_CHECKING:
    from matplotlib.path import Path as PolygonPath

NAME_FIELDS = ("prct_code", "precinct", "station", "name")  # the name field, in order of preference
Ring = list[list[float]]  # [[lon, lat], ...]


@dataclass
class Outlines:
    """Precinct polygons (each a list of rings of lon/lat points) and where they came from."""

    names: list[str]
    rings: list[list[Ring]]
    source: str
    retrieved_at: str
    synthetic: bool
    notes: list[str] = field(default_factory=list)

    def paths(self) -> list[PolygonPath]:
        """One matplotlib path per precinct (its rings joined), for drawing and point tests."""
        from matplotlib.path import Path as PolygonPath  # here: the ingest step need not import matplotlib
        return [PolygonPath.make_compound_path(*(PolygonPath(np.asarray(ring)) for ring in rings))
                for rings in self.rings]


def name_field(fields: list[dict]) -> str:
    """The layer's precinct-name field: a known name (any case), else its first text field."""
    names = {str(f.get("name")).casefold(): str(f.get("name")) for f in fields}
    for wanted in NAME_FIELDS:
        if wanted in names:
            return names[wanted]
    text = [str(f.get("name")) for f in fields if f.get("type") == "esriFieldTypeString"]
    if not text:
        raise ValueError("the station-area layer has no text field to name precincts by")
    return text[0]


def is_polygon_page(body: object) -> bool:
    return isinstance(body, dict) and isinstance(body.get("features"), list)


def fetch_outlines(url: str, timeout: Timeouts, retries: int, now: datetime | None = None) -> Outlines:
    """The station-area polygons of an ArcGIS layer, in WGS 84 longitude/latitude."""
    preset = Preset("precinct outlines", "arcgis", "MPD station areas", url, "epoch_ms_utc", "", "")
    http = JsonClient(preset, timeout=timeout, retries=retries)
    layer = http.get(url, {"f": "json"}, lambda body: isinstance(body, dict) and isinstance(body.get("fields"), list))
    label = name_field(layer["fields"])
    body = http.get(url.rstrip("/") + "/query", {"where": "1=1", "outFields": label, "returnGeometry": "true",
                                                 "outSR": "4326", "f": "json"}, is_polygon_page)
    named = [(str(f["attributes"].get(label) or "").strip().upper(), (f.get("geometry") or {}).get("rings") or [])
             for f in body["features"] if isinstance(f, dict)]
    named = [(name, rings) for name, rings in named if name and rings]
    return Outlines([n for n, _ in named], [r for _, r in named], place(url),
                    iso_utc(now or datetime.now(timezone.utc)), synthetic=False)


def synthetic_outlines(now: datetime | None = None) -> Outlines:
    """Voronoi cells of the demo's station-area centres, clipped to the city box (NOT MPD's outlines).

    Each centre is mirrored across the four sides of the box, so every real centre's cell is finite
    and ends exactly at the box's edges."""
    from scipy.spatial import Voronoi  # here: scipy is the demo's alone (0.6 s of a live ingest's start)
    precincts = vocabulary()["precincts"]
    names = sorted(precincts)
    points = np.array([precincts[n]["centre"][::-1] for n in names])  # lon, lat
    (lat0, lat1), (lon0, lon1) = CITY_BOX["lat"], CITY_BOX["lon"]
    mirrors = [points * [-1, 1] + [2 * lon0, 0], points * [-1, 1] + [2 * lon1, 0],
               points * [1, -1] + [0, 2 * lat0], points * [1, -1] + [0, 2 * lat1]]
    diagram = Voronoi(np.vstack([points, *mirrors]))
    rings = []
    for index in range(len(names)):
        corners = diagram.vertices[diagram.regions[diagram.point_region[index]]]
        order = np.argsort(np.arctan2(*(corners - corners.mean(0)).T[::-1]))
        ring = corners[order].round(5).tolist()
        rings.append([ring + ring[:1]])
    return Outlines(names, rings, "synthetic: Voronoi cells of the demo's station-area centres",
                    iso_utc(now or datetime.now(timezone.utc)), synthetic=True,
                    notes=["These outlines are synthetic, made for the synthetic demo data: they are not MPD's."])


def save_outlines(storage: Storage, outlines: Outlines) -> None:
    write_json(storage, OUTLINES, asdict(outlines))


def load_outlines(storage: Storage) -> Outlines | None:
    doc = read_json(storage, OUTLINES)
    return Outlines(**doc) if doc else None


def precinct_of(longitude: np.ndarray, latitude: np.ndarray, outlines: Outlines) -> np.ndarray:
    """The precinct each point falls in, or "" for a point outside every precinct."""
    points = np.column_stack([longitude, latitude])
    found = np.full(len(points), "", dtype=object)
    for name, path in zip(outlines.names, outlines.paths()):
        inside = path.contains_points(points) & (found == "")
        found[inside] = name
    return found
