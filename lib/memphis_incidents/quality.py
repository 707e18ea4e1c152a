"""Validation of canonical rows: duplicates dropped and counted, bad rows quarantined with a reason.

Every row received ends in exactly one bucket: valid (to be upserted), rejected (quarantined with
a reason) or duplicate (another row of the same batch carries the same row id), so
received = valid + rejected + duplicates always holds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import Preset
from .schema import INGEST_PREFIX, canonical_incidents, text_array, text_series

EARLIEST = pd.Timestamp("1970-01-01", tz="UTC")
FUTURE_SLACK = timedelta(days=1)
REASONS = {  # why a row is quarantined, in order of precedence, and what that means for a reader
    "missing_row_id": "no source row id, so the row cannot be tracked",
    "missing_offense_date": "no offense date",
    "unparseable_offense_date": "offense date not readable",
    "offense_date_before_1970": "offense date before 1970 (impossible)",
    "offense_date_in_future": "offense date in the future (impossible)",
}
QUARANTINE_SCHEMA = pa.schema([
    ("batch_id", pa.string()),
    ("row_id", pa.string()),
    ("reason", pa.string()),
    ("raw_json", pa.string()),
])


@dataclass
class BatchSplit:
    """A raw batch split into valid canonical rows, rejected rows and a duplicate count."""

    valid: pd.DataFrame
    rejected: pa.Table
    duplicates: int

    @property
    def received(self) -> int:
        return len(self.valid) + self.rejected.num_rows + self.duplicates


def rejection_reasons(canon: pd.DataFrame, raw_offense: pd.Series, ingested_at: datetime) -> pd.Series:
    """The first rule each row breaks, or null for a valid row (rules in order of precedence)."""
    ts = canon["offense_ts_utc"]
    horizon = pd.Timestamp(ingested_at) + FUTURE_SLACK
    rule = np.select(
        [canon["row_id"].isna(), raw_offense.isna(), ts.isna(), ts < EARLIEST, ts > horizon],
        np.arange(1, len(REASONS) + 1),
        default=0,
    )
    return text_series(pa.array([None, *REASONS], pa.large_string()).take(rule), canon.index)  # 0: valid


def duplicate_mask(canon: pd.DataFrame) -> pd.Series:
    """Rows another row of the batch supersedes: same row id, kept is the latest update, then last."""
    row = pc.fill_null(pc.dictionary_encode(text_array(canon["row_id"])).indices, -1).to_numpy()
    updated = canon["source_updated_ts_utc"].array.asi8  # NaT is the smallest value: sorts first
    order = np.lexsort((np.arange(len(row)), updated, row))
    ranked = row[order]
    superseded = np.zeros(len(row), bool)
    superseded[order[:-1]] = ranked[:-1] == ranked[1:]  # a later version of the same row id follows
    return pd.Series(superseded & (row >= 0), index=canon.index)


def string_array(values: pd.Series) -> pa.Array:
    """A nullable pandas text column as an Arrow string array."""
    return pa.array(values.astype(object).where(values.notna(), None).tolist(), pa.string())


def source_fields(columns: list[str]) -> list[str]:
    """The raw columns the source sent (not the ingest's own)."""
    return [c for c in columns if not c.startswith(INGEST_PREFIX)]


def records_json(records: list[dict[str, Any]]) -> list[str]:
    """Raw rows as compact JSON text, kept with quarantined rows."""
    return [json.dumps(rec, default=str, ensure_ascii=False) for rec in records]


def raw_records_json(raw: pd.DataFrame) -> list[str]:
    """Each raw row of a pandas frame as JSON (source fields only)."""
    fields = source_fields(list(raw.columns))
    return records_json(raw[fields].astype(object).where(raw[fields].notna(), None).to_dict("records"))


def checked_rows(raw: pd.DataFrame, preset: Preset, batch_id: str,
                 ingested_at: datetime) -> tuple[pd.DataFrame, pd.Series]:
    """Raw rows normalised (same index), and the first rule each breaks (null: valid), before
    duplicates are looked for: a row's checks depend on the row alone, so chunks can be checked apart."""
    canon = canonical_incidents(raw, preset, batch_id)
    offense_field = preset.fields["offense_ts"]
    raw_offense = raw[offense_field] if offense_field in raw else pd.Series(None, index=raw.index)
    return canon, rejection_reasons(canon, raw_offense, ingested_at)


def quarantine_rows(batch_id: str, canon: pd.DataFrame, reasons: pd.Series, raw_json: list[str]) -> pa.Table:
    """The quarantine's rows for rejected rows: row id, reason and the raw row as JSON."""
    return pa.table({
        "batch_id": pa.array([batch_id] * len(canon), pa.string()),
        "row_id": string_array(canon["row_id"]),
        "reason": string_array(reasons),
        "raw_json": pa.array(raw_json, pa.string()),
    }, schema=QUARANTINE_SCHEMA)


def split_batch(raw: pd.DataFrame, preset: Preset, batch_id: str, ingested_at: datetime) -> BatchSplit:
    """Normalise a raw batch held in memory and split it into valid, rejected and duplicate rows.

    The load does the same chunk by chunk (spill.py), with the duplicates found across chunks by
    DuckDB; tests hold the two to the same answer."""
    raw = raw.reset_index(drop=True)
    canon, reasons = checked_rows(raw, preset, batch_id, ingested_at)
    dupes = duplicate_mask(canon)
    bad = reasons.notna() & ~dupes
    rejected = quarantine_rows(batch_id, canon.loc[bad], reasons[bad], raw_records_json(raw.loc[bad]))
    return BatchSplit(valid=canon.loc[~bad & ~dupes], rejected=rejected, duplicates=int(dupes.sum()))
