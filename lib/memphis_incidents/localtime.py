"""Memphis time: the one conversion between UTC and America/Chicago wall-clock time, both ways.

Months, days and hours are binned in local time; the repeated fall-back hour is read as standard
time and a time in the spring-forward gap moves forward, so every wall-clock time has one instant.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

LOCAL_TZ = "America/Chicago"


def wall_clock(utc: Any) -> Any:
    """UTC times (aware, or naive meaning UTC) as naive Memphis wall-clock times: a column or one time."""
    if isinstance(utc, pd.Series):
        aware = utc if utc.dt.tz is not None else utc.dt.tz_localize("UTC")
        return aware.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    moment = pd.Timestamp(utc)
    return (moment if moment.tzinfo else moment.tz_localize("UTC")).tz_convert(LOCAL_TZ).tz_localize(None)


def utc_of(local: pd.Series) -> pd.Series:
    """Memphis wall-clock times as aware UTC times."""
    standard = np.zeros(len(local), dtype=bool)  # ambiguous hour: not daylight time
    return local.dt.tz_localize(LOCAL_TZ, ambiguous=standard, nonexistent="shift_forward").dt.tz_convert("UTC")


def wall_clock_ms(utc_ms: np.ndarray) -> np.ndarray:
    """UTC epoch milliseconds as Memphis wall-clock times, in naive epoch milliseconds."""
    local = wall_clock(pd.Series(utc_ms.astype("datetime64[ms]")))
    return local.dt.as_unit("ms").to_numpy().astype(np.int64)


def utc_ms(local_ms: np.ndarray) -> np.ndarray:
    """Memphis wall-clock times in naive epoch milliseconds as UTC epoch milliseconds."""
    aware = utc_of(pd.Series(local_ms.astype("datetime64[ms]")))
    return aware.dt.tz_localize(None).dt.as_unit("ms").to_numpy().astype(np.int64)
