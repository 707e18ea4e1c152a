"""The package's HTML templates (templates/): the report's headline and exclusions, the runs index.

Every page and fragment is rendered here with autoescaping, so Python code passes values, never
markup.
"""
from __future__ import annotations

from typing import Any, Callable

import jinja2

from .layout import TEMPLATES

ENVIRONMENT = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


def render(template: str, **values: Any) -> str:
    """A template under templates/ (for example "report/headline.html.j2") filled with `values`."""
    return ENVIRONMENT.get_template(template).render(**values)


def macro(template: str, name: str) -> Callable[..., str]:
    """A macro of a template (for example one row of a table), to render a piece on its own."""
    found: Callable[..., str] = getattr(ENVIRONMENT.get_template(template).module, name)
    return lambda *args: str(found(*args))
