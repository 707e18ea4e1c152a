"""Small helpers the notebooks share, so the notebooks stay a parameters cell and calls.

They work the same under papermill (the runner) and in JupyterLab (an analyst running a notebook
top to bottom with its default parameters).
"""
from __future__ import annotations

import dataclasses
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pandas as pd
from IPython.display import Image, Markdown, display

from .config import Preset, RunParameters

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROJECT_MARKER = "run_pipeline.py"
FIGURE_DPI = 144
CSS_PIXELS_PER_INCH = 96
COLUMN_LABELS = {"offense_rows": "offense rows", "incidents": "distinct incidents", "pct_change": "% change",
                 "z": "z-score", "crime_against": "NIBRS crime against"}
NAMED_FORMATS = {"share": "{:.1%}", "pct_change": "{:+.0%}", "z": "{:+.1f}", "change": "{:+,}"}
HEADLINE_CSS = """<style>
.mi-headline{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.6rem;margin:.4rem 0 1rem}
.mi-kpi{border:1px solid #d0d7de;border-radius:6px;padding:.55rem .75rem;background:#f6f8fa}
.mi-kpi-value{display:block;font-size:1.45rem;font-weight:600;line-height:1.25;color:#0b3d66}
.mi-kpi-label{display:block;font-size:.85rem;color:#444}
.mi-synthetic{background:#fff4e5;border-color:#d55e00}
.mi-synthetic .mi-kpi-value{color:#8a3b00}
</style>"""


def project_root(start: Path | None = None) -> Path:
    """The project folder: the nearest one from `start` (default: the working directory) upwards
    that holds run_pipeline.py; `start` itself when there is none."""
    here = (start or Path.cwd()).resolve()
    return next((p for p in (here, *here.parents) if (p / PROJECT_MARKER).is_file()), here)


def run_parameters(namespace: Mapping[str, Any]) -> RunParameters:
    """RunParameters from the notebook's parameter variables (the names RunParameters declares).

    A relative data_dir is relative to the project folder, not to the kernel's working directory,
    so the default "data" finds `make demo`'s data from papermill (cwd: the project) and from
    JupyterLab (cwd: notebooks/) alike.
    """
    names = RunParameters.__dataclass_fields__
    params = RunParameters.from_mapping({k: v for k, v in namespace.items() if k in names})
    return dataclasses.replace(params, data_dir=str(project_root() / params.data_dir))


def show_counts(counts: Mapping[str, Any], title: str = "") -> None:
    """Display a flat mapping as a two-column table."""
    if title:
        display(Markdown(f"**{title}**"))
    display(pd.DataFrame({"value": [v for v in counts.values()]}, index=list(counts)))


def data_notice(preset: Preset) -> None:
    """Say plainly where the data comes from, and that it is synthetic when it is."""
    if preset.is_synthetic:
        display(Markdown(
            "> **Synthetic data.** This run used the offline demo source: a generated dataset in "
            "the shape of the MPD publication. None of these numbers describe real incidents."))
    else:
        display(Markdown(f"> Source: {preset.title}."))


def load_counts(stores: Any, run_id: str) -> tuple[str, dict[str, Any]]:
    """What the load did with the rows it received: this run's load, or (outside a run, or in a
    run without a load step) the latest load the warehouse committed. Returns (which, counts)."""
    from .runlog import read_step_record

    record = read_step_record(stores.storage, run_id, "load") if run_id else None
    if record:
        return f"this run's load ({run_id})", record["rows"]
    batches = stores.state.loaded_batches
    latest = stores.state.load_record(batches[-1]) if batches else None
    return (f"the latest load (batch {batches[-1]})", latest) if latest else ("no load recorded", {})


def kpi(key: str, value: int | str, label: str, extra_class: str = "") -> str:
    """One headline figure as HTML; `data-key`/`data-value` let a test read the exact number."""
    shown = f"{value:,}" if isinstance(value, int) else value
    return (f'<div class="mi-kpi {extra_class}" data-key="{key}" data-value="{html.escape(str(value))}">'
            f'<span class="mi-kpi-value">{html.escape(shown)}</span>'
            f'<span class="mi-kpi-label">{html.escape(label)}</span></div>')


def headline_html(head: Mapping[str, Any]) -> str:
    """The headline figures as cards, and the counting units."""
    updated = head["last_source_update"]
    cards = [
        kpi("offense_rows", head["offense_rows"], "offense rows reported"),
        kpi("incidents", head["incidents"], "distinct incidents (Crime IDs)"),
        kpi("span", f"{head['first_offense_date']:%b %Y} – {head['last_offense_date']:%b %Y}",
            "offense dates covered"),
        kpi("latest_full_month", f"{head['latest_full_month']:%B %Y}", "latest complete month"),
        kpi("last_offense_date", day_text(head["last_offense_date"]), "latest offense date"),
        kpi("last_source_update", f"{day_text(updated)} {updated:%H:%M}" if updated is not None else "unknown",
            "last source update (Memphis time)"),
    ]
    if head["synthetic"]:
        cards.append(kpi("synthetic", "Synthetic", "demo data, not real incidents", "mi-synthetic"))
    return (HEADLINE_CSS + f'<div class="mi-headline">{"".join(cards)}</div>'
            f"<p>One incident can carry several offenses (on average {head['offenses_per_incident']:.2f} "
            f"offense rows per incident), so every figure below names its unit. "
            f"Source: {html.escape(head['source'])}.</p>")


def exclusions_html(head: Mapping[str, Any], load_label: str, load_rows: Mapping[str, Any]) -> str:
    """What the headline figures leave out, and what the load did with the rows it received."""
    left_out = [
        f"the partial current month ({head['partial_month']:%B %Y}: "
        f"{head['partial_month_offense_rows']:,} offense rows so far) is in the totals but not in "
        f"monthly charts or seasonality;",
        f'<span data-key="quarantined_rows" data-value="{head["quarantined_rows"]}">'
        f"{head['quarantined_rows']:,}</span> rows were quarantined and are not counted, "
        f"{head['bad_date_rows']:,} of them for a null or impossible offense date;",
        f"{head['unlocated_rows']:,} offense rows have no usable coordinates: counted everywhere "
        f"but on the map;",
        html.escape(head["omissions"]),
    ]
    counts = {k: load_rows.get(k) for k in ("received", "loaded", "quarantined", "duplicates")}
    run_line = ", ".join(f'<span data-key="{k}" data-value="{v}">{v:,}</span> {k}'
                         for k, v in counts.items() if v is not None)
    return (f"<p><strong>Left out:</strong></p><ul>{''.join(f'<li>{item}</li>' for item in left_out)}</ul>"
            + (f"<p>Rows in {html.escape(load_label)}: {run_line}.</p>" if run_line else ""))


def day_text(moment: Any) -> str:
    """A date as "9 Nov 2026" (no leading zero, on every platform)."""
    return f"{moment.day} {moment:%b %Y}"


def table_formats(frame: pd.DataFrame) -> dict[str, str]:
    """Display formats by column: thousands separators for counts, percentages for shares."""
    formats = {}
    for column in frame.columns:
        if column in NAMED_FORMATS:
            formats[column] = NAMED_FORMATS[column]
        elif pd.api.types.is_integer_dtype(frame[column]):
            formats[column] = "{:,}"
        elif pd.api.types.is_float_dtype(frame[column]):
            formats[column] = "{:,.2f}"
    return formats


def show_table(frame: pd.DataFrame, caption: str) -> None:
    """Display a frame as a captioned table: readable column names, number formats, text left-aligned."""
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    styler = (frame.style.format(table_formats(frame), na_rep="–").hide(axis="index")
              .relabel_index([COLUMN_LABELS.get(c, c.replace("_", " ")) for c in frame.columns], axis=1)
              .set_properties(subset=text, **{"text-align": "left"})
              .set_table_styles([{"selector": f"th.col{frame.columns.get_loc(c)}",
                                  "props": "text-align: left"} for c in text]))
    display(styler.set_caption(caption))


def show_figure(fig: Figure) -> None:
    """Display a figure as a PNG with alt text (from its titles and axis labels), at a size that
    reads on a laptop screen and stays sharp on high-density ones."""
    from .analysis import figure_alt_text

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
    display(Image(data=buffer.getvalue(), alt=figure_alt_text(fig),
                  width=round(fig.get_figwidth() * CSS_PIXELS_PER_INCH)))
