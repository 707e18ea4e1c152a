"""Figures as the report shows them: inline SVG whose words stay text (a reader can find, select and
zoom them; a screen reader gets the alt text), drawn twice, for a laptop's report column and for a
phone, with CSS showing the one that fits the screen (templates/report/figure.html.j2).

The SVG carries no date and ids salted by the figure, so the same figure gives the same bytes and
two figures on one page never share an id.
"""
from __future__ import annotations

import io
import re
from typing import Any, Callable

from markupsafe import Markup, escape
from matplotlib import rc_context
from matplotlib.figure import Figure

from .fingerprint import digest
from .figures import NARROW, figure_alt_text
from .pages import render

RASTER_DPI = 110  # for the artists drawn as pixels (the map's hexagons)
CSS_PIXELS_PER_POINT = 96 / 72
SVG_SIZE = re.compile(r'<svg ([^>]*?)width="([\d.]+)pt" height="[\d.]+pt"')


def svg_markup(fig: Figure, salt: str) -> Markup:
    """The figure as an <svg> element to put in a page: text as text, no XML prolog or metadata, no
    fixed size (it fills its column up to its own width), no ids but those the figure refers to."""
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg", dpi=RASTER_DPI, metadata={"Date": None})
    svg = buffer.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[svg.index("<svg"):], flags=re.DOTALL)
    referenced = set(re.findall(r"#([^\s\")]+)", svg))
    svg = re.sub(r' id="([^"]*)"', lambda m: m[0] if m[1] in referenced else "", re.sub(r"\n\s+", "\n", svg))
    alt = escape(figure_alt_text(fig))
    return Markup(SVG_SIZE.sub(lambda m: f'<svg {m[1]}role="img" aria-label="{alt}" style="max-width: '
                               f'{float(m[2]) * CSS_PIXELS_PER_POINT:.0f}px"', svg, count=1))


def figure_html(build: Callable[..., Figure], *args: Any, **kwargs: Any) -> str:
    """The figure `build(*args, **kwargs)` draws at its own width, and again at the phone's width."""
    wide = build(*args, **kwargs)
    salt = digest(figure_alt_text(wide))
    return render("report/figure.html.j2", wide=svg_markup(wide, f"{salt}-wide"),
                  narrow=svg_markup(build(*args, **kwargs, width=NARROW), f"{salt}-narrow"))
