"""The report's maps: located offense rows as hexagons, and offense rows per precinct inside MPD's
precinct outlines, with the precincts named. No map tiles, so the report stays offline; the
hexagons are drawn as pixels (thousands of shapes would make the page heavy), every word as text.
On a phone (figures.NARROW) the two maps stack.
"""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch

from .figures import COLOURS, COUNT_FORMAT, NARROW, SEQUENTIAL, WIDE, count_ticks, is_narrow, panel_grid
from .labels import label
from .precincts import Outlines
from .schema import CITY_BOX

DOWNTOWN = (35.1495, -90.0490)  # latitude, longitude of downtown Memphis, a landmark for the map
LAT, LON = CITY_BOX["lat"], CITY_BOX["lon"]
CHOROPLETH = "YlOrBr"  # light to dark with no grey in between: a precinct with no rows is hatched, not grey
ASPECT = 1 / math.cos(math.radians(sum(LAT) / 2))  # degrees of latitude are longer than of longitude here


def hex_width_km(gridsize: int) -> float:
    """Width of one map hexagon, in km, for a hexbin with `gridsize` hexagons across the city box."""
    return (LON[1] - LON[0]) / gridsize * 111.32 / ASPECT


def inside_city(geo_grid: pd.DataFrame) -> pd.DataFrame:
    """Grid cells inside the city box."""
    return geo_grid[geo_grid["latitude"].between(*LAT) & geo_grid["longitude"].between(*LON)]


def hexagons(ax: Axes, inside: pd.DataFrame, gridsize: int) -> PolyCollection:
    """Offense rows per hexagon on a log colour scale, drawn as pixels."""
    return ax.hexbin(inside["longitude"], inside["latitude"], C=inside["offense_rows"], reduce_C_function=np.sum,
                     gridsize=gridsize, extent=(*LON, *LAT), cmap=SEQUENTIAL, bins="log", mincnt=1,
                     linewidths=0.2, rasterized=True)


def map_axes(ax: Axes, title: str) -> None:
    """The city box in degrees, true to shape."""
    ax.set_aspect(ASPECT)
    ax.set(xlim=LON, ylim=LAT, xlabel="longitude (degrees east)", ylabel="latitude (degrees north)")
    ax.set_title(title, wrap=True)


def figure_hexbin_map(geo_grid: pd.DataFrame, gridsize: int = 50, width: float = WIDE) -> Figure:
    """Hexbin map of located offense rows inside the city box (axes in degrees)."""
    narrow = is_narrow(width)
    inside = inside_city(geo_grid)
    fig = Figure(figsize=(width, width * 0.66 + (1.6 if narrow else 0)), layout="constrained")
    ax = fig.subplots()
    if inside.empty:  # a publication without coordinates (or none usable): say so, draw no map
        ax.text(0.5, 0.5, "No offense row in this data has usable coordinates: no map.", ha="center",
                va="center", transform=ax.transAxes, wrap=True)
        ax.set_axis_off()
        return fig
    fig.colorbar(hexagons(ax, inside, gridsize), ax=ax, label="offense rows per hexagon (log scale)", shrink=0.8,
                 format=COUNT_FORMAT, location="bottom" if narrow else "right")
    ax.plot(DOWNTOWN[1], DOWNTOWN[0], marker="*", markersize=12, color=COLOURS[3], linestyle="none",
            label="downtown Memphis")
    map_axes(ax, f"Where located offenses were reported, all years (each hexagon ≈ "
                 f"{hex_width_km(gridsize):.1f} km across)")
    fig.legend(loc="outside lower center", frameon=False)
    return fig


def figure_precinct_map(geo_grid: pd.DataFrame, outlines: Outlines, precinct_rows: pd.Series,
                        gridsize: int = 50, width: float = WIDE + 1) -> Figure:
    """Two maps with precinct outlines and names: located offense rows as hexagons, and offense rows
    per precinct (last 12 complete months) as a choropleth."""
    narrow = is_narrow(width)
    fig = Figure(figsize=(width, 2 * (width * 0.58 + 1.5) + 0.4 if narrow else 5.0), layout="constrained")
    hexmap, choropleth = panel_grid(fig, 2, 1 if narrow else 2, sharex=True, sharey=True)
    inside = inside_city(geo_grid)
    if len(inside):
        fig.colorbar(hexagons(hexmap, inside, gridsize), ax=hexmap, label="offense rows per hexagon (log scale)",
                     shrink=0.7, format=COUNT_FORMAT, location="bottom")
    values = precinct_rows.reindex([name.upper() for name in outlines.names])
    scale = Normalize(0, max(float(values.max()), 1.0) if values.notna().any() else 1.0)
    for name, path, value in zip(outlines.names, outlines.paths(), values):
        colour = "white" if pd.isna(value) else matplotlib.colormaps[CHOROPLETH](scale(value))
        choropleth.add_patch(PathPatch(path, facecolor=colour, linewidth=1.2, edgecolor="0.6" if pd.isna(value)
                                       else "white", hatch="///" if pd.isna(value) else None))
        for ax in (hexmap, choropleth):
            ax.add_patch(PathPatch(path, fill=False, edgecolor="0.25", linewidth=0.8))
            ax.annotate(label(name), np.asarray(path.vertices).mean(0), ha="center", va="center", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75, "linewidth": 0})
    shading = fig.colorbar(ScalarMappable(scale, CHOROPLETH), ax=choropleth, shrink=0.7, location="bottom",
                           label="offense rows per precinct, last 12 complete months")
    count_ticks(shading.ax.xaxis, NARROW)  # a short bar: few ticks, as on a phone
    map_axes(hexmap, "Located offense rows, all years")
    map_axes(choropleth, "Offense rows by precinct")
    (hexmap.set_xlabel if narrow else choropleth.set_ylabel)("")  # the two maps share that axis
    outlines_said = "synthetic precinct outlines (not MPD's)" if outlines.synthetic else "MPD precinct outlines"
    fig.suptitle(f"Where offenses were reported, with {outlines_said}", wrap=True)
    return fig
