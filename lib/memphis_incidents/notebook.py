"""What the notebooks share, so each is a parameters cell, one `ctx = setup(globals())` and calls.

It works the same under papermill (the runner) and in JupyterLab (an analyst running a notebook top
to bottom with its default parameters). The report's HTML lives in templates/report/.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import pandas as pd
from IPython.display import HTML, Markdown, display
from markupsafe import Markup

from .backends import Backends
from .config import Preset, RunParameters, load_preset
from .fingerprint import digest
from .labels import labelled, percent
from .marts import UNIT
from .significance import TOO_FEW
from .pages import render
from .profiles import backends_for
from .runlog import read_step_record, write_step_record
from .steps import step_named

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from pandas.io.formats.style import Styler

PROJECT_MARKER = "run_pipeline.py"
COLUMN_LABELS = {**UNIT, "pct_change": "% change", "z": "z-score", "crime_against": "NIBRS crime against",
                 "nibrs_group": "NIBRS group", "change_28_days": "% change, 28 days",
                 "change_year_to_date": "% change, year to date", "three_year_average": "3-year average, year to date"}
NAMED_FORMATS: dict[str, Any] = {"share": percent, "pct_change": "{:+.0%}", "z": "{:+.1f}", "change": "{:+,}",
                 "change_28_days": "{:+.0%}", "change_year_to_date": "{:+.0%}", "three_year_average": "{:,.1f}"}
UNTESTED_COLUMNS = {"reading": ("pct_change", "z"), "reading_28_days": ("change_28_days",),
                    "reading_year_to_date": ("change_year_to_date",)}  # a reading: the changes it judges
LABELLED = ("category", "precinct")  # columns shown in the report's label style (labels.py)


@dataclass(frozen=True)
class Context:
    """A notebook's run parameters, source preset and back ends."""

    params: RunParameters
    preset: Preset
    backends: Backends

    def run(self, step: str) -> dict[str, Any]:
        """Run a step's stage function (steps.py) and keep what it returns as the step's record."""
        stage = step_named(step).stage
        if stage is None:
            raise ValueError(f"step {step} declares no stage function to run")
        module, function = stage.split(":")
        result: dict[str, Any] = getattr(importlib.import_module(module), function)(self.params, self.backends)
        write_step_record(self.backends.storage, self.params.run_id, step, result)
        return result


def setup(namespace: Mapping[str, Any]) -> Context:
    """The notebook's context from its parameter variables; says where the data comes from."""
    params = run_parameters(namespace)
    preset = load_preset(params.source, params.base_url)
    data_notice(preset)
    return Context(params, preset, backends_for(params))


def prepare(target: str, namespace: Mapping[str, Any]) -> None:
    """Run a step's `prepare` function (steps.py) in its kernel as the kernel boots, with the
    parameters its notebook will get. It only saves time later, so a failure is left unsaid: the
    notebook's own cells meet the same problem and report it."""
    try:
        params = run_parameters(namespace)
        module, function = target.split(":")
        getattr(importlib.import_module(module), function)(params, backends_for(params))
    except Exception:  # noqa: BLE001 - see above
        pass


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
    names = {f.name for f in dataclasses.fields(RunParameters)}
    params = RunParameters.from_mapping({k: v for k, v in namespace.items() if k in names})
    return dataclasses.replace(params, data_dir=str(project_root() / params.data_dir))


def show_counts(counts: Mapping[str, Any], title: str = "") -> None:
    """Display a flat mapping as a two-column table."""
    if title:
        display(Markdown(f"**{title}**"))
    display(pd.DataFrame({"value": list(counts.values())}, index=list(counts)))


def data_notice(preset: Preset) -> None:
    """Say plainly where the data comes from, and that it is synthetic when it is."""
    if preset.is_synthetic:
        display(Markdown(
            "> **Synthetic data.** This run used the offline demo source: a generated dataset in "
            "the shape of the MPD publication. None of these numbers describe real incidents."))
    else:
        display(Markdown(f"> Source: {preset.title}."))


def load_counts(backends: Backends, run_id: str) -> tuple[str, dict[str, Any]]:
    """What the load did with the rows it received: this run's load, or (outside a run, or in a
    run without a load step) the latest load the warehouse committed. Returns (which, counts)."""
    record = read_step_record(backends.storage, run_id, "load") if run_id else None
    if record:
        return f"this run's load ({run_id})", record["rows"]
    batches = backends.state.loaded_batches
    latest = backends.state.load_record(batches[-1]) if batches else None
    return (f"the latest load (batch {batches[-1]})", latest) if latest else ("no load recorded", {})


def card(key: str, value: int | str, label: str, extra: str = "") -> dict[str, Any]:
    """One headline figure: its key, exact value, value as shown, and label."""
    return {"key": key, "value": value, "shown": f"{value:,}" if isinstance(value, int) else value,
            "label": label, "extra": extra}


def headline_html(head: Mapping[str, Any]) -> str:
    """The headline figures as cards, and the counting units."""
    updated = head["last_source_update"]
    ytd = head["year_to_date"]
    cards = [
        card("year_to_date", ytd["current"], f"offense rows from 1 Jan to {day_text(ytd['period'].end)}"),
        card("previous_year_to_date", ytd["previous"], f"the same days of {ytd['previous_period'].end.year}"),
        card("offense_rows", head["offense_rows"], "offense rows reported"),
        card("incidents", head["incidents"], "distinct incidents (Crime IDs)"),
        card("span", f"{head['first_offense_date']:%b %Y} – {head['last_offense_date']:%b %Y}",
             "offense dates covered"),
        card("latest_full_month", f"{head['latest_full_month']:%B %Y}", "latest complete month"),
        card("last_offense_date", day_text(head["last_offense_date"]), "latest offense date"),
        card("last_source_update", f"{day_text(updated)} {updated:%H:%M}" if updated is not None else "unknown",
             "last source update (Memphis time)"),
    ]
    if head["synthetic"]:
        cards.append(card("synthetic", "Synthetic", "demo data, not real incidents", "mi-synthetic"))
    return render("report/headline.html.j2", lead=lead_sentence(head), stale=head["stale"],
        cards=cards, per_incident=f"{head['offenses_per_incident']:.2f}", source=head["source"])


def lead_sentence(head: Mapping[str, Any]) -> str:
    """The report in one sentence: this year so far against last, to the last complete day."""
    ytd = head["year_to_date"]
    change = "no change" if pd.isna(ytd["pct_change"]) or not ytd["previous"] else \
        f"{abs(ytd['pct_change']):.1%} {'more' if ytd['pct_change'] > 0 else 'fewer'} than"
    return (f"From 1 January to {day_text(ytd['period'].end)}, the latest day complete enough to compare, "
            f"{ytd['current']:,} offenses were reported: {change} in the same days of "
            f"{ytd['previous_period'].end.year} ({ytd['reading']}).")


def exclusions_html(head: Mapping[str, Any], load_label: str, load_rows: Mapping[str, Any]) -> str:
    """What the headline figures leave out, and what the load did with the rows it received."""
    counts = [{"key": k, "value": load_rows[k], "shown": f"{load_rows[k]:,}"}
              for k in ("received", "loaded", "quarantined", "duplicates") if load_rows.get(k) is not None]
    return render("report/exclusions.html.j2",
        partial_month=f"{head['partial_month']:%B %Y}", partial_rows=f"{head['partial_month_offense_rows']:,}",
        quarantined=head["quarantined_rows"], quarantined_shown=f"{head['quarantined_rows']:,}",
        bad_dates=f"{head['bad_date_rows']:,}", unlocated=f"{head['unlocated_rows']:,}",
        omissions=head["omissions"], load_label=load_label, counts=counts)


def day_text(moment: Any) -> str:
    """A date as "9 Nov 2026" (no leading zero, on every platform)."""
    return f"{moment.day} {moment:%b %Y}"


def table_formats(frame: pd.DataFrame) -> dict[str, Any]:
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
    """Display a frame as the report shows tables (table_html)."""
    display(HTML(table_html(frame, caption)))


def table_html(frame: pd.DataFrame, caption: str) -> str:
    """A table under its caption, in a box that scrolls sideways (by keyboard too) when the table is
    wider than the screen, with a shadow at each edge that has more to show."""
    name = "t" + digest([caption, list(frame.columns), len(frame)])
    return render("report/table.html.j2", caption=caption, id=name,
                  table=Markup(styled_table(frame).set_uuid(name).to_html()))


def styled_table(frame: pd.DataFrame) -> Styler:
    """A frame as the report's tables show it: readable column names, number formats, text left-aligned,
    categories and precincts in the report's one label style."""
    frame = frame.assign(**{c: labelled(frame[c]) for c in LABELLED if c in frame.columns})
    frame = untested_blank(frame)
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    return (frame.style.format(table_formats(frame), na_rep="–").hide(axis="index")
            .relabel_index([COLUMN_LABELS.get(c, c.replace("_", " ")) for c in frame.columns], axis=1)
            .set_properties(subset=text, **{"text-align": "left"})
            .set_table_styles([{"selector": f"th.col{frame.columns.get_loc(c)}",
                                "props": "text-align: left"} for c in text]))


def untested_blank(frame: pd.DataFrame) -> pd.DataFrame:
    """No percent change or z-score beside a change too small to test (1 -> 0 is not "-100%")."""
    for reading, changes in UNTESTED_COLUMNS.items():
        if reading in frame.columns:
            untested = frame[reading] == TOO_FEW
            frame = frame.assign(**{c: frame[c].mask(untested) for c in changes if c in frame.columns})
    return frame


def show_html(page: str) -> None:
    """Display an HTML fragment rendered from the report templates."""
    display(HTML(page))


def show_figure(build: Callable[..., Figure], *args: Any, **kwargs: Any) -> None:
    """Display the figure `build(*args, **kwargs)` draws (a figures or maps function) as the report
    shows figures: inline SVG, for a laptop and for a phone (figure_html.py)."""
    from .figure_html import figure_html  # here, not at the top: notebooks that do not plot skip matplotlib

    display(HTML(figure_html(build, *args, **kwargs)))
