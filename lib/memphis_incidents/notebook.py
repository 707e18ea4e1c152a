"""Small helpers the notebooks share, so the notebooks stay a parameters cell and calls."""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
from IPython.display import Markdown, display

from .config import Preset, RunParameters


def run_parameters(namespace: Mapping[str, Any]) -> RunParameters:
    """RunParameters from the notebook's parameter variables (the names RunParameters declares)."""
    names = RunParameters.__dataclass_fields__
    return RunParameters.from_mapping({k: v for k, v in namespace.items() if k in names})


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
