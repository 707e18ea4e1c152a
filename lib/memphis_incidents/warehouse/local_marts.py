"""The marts of the embedded warehouse: versions of `<mart>/part-0.parquet` folders published together,
each with the hidden per-month partials the all-time marts come from (`_<partial>/part-0.parquet`,
see marts.py) and what the version was computed from (`_basis.json`), so that the next night can
recompute only the months that changed and publish the rest unchanged in the same atomic swap.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import PipelineError
from ..layout import MARTS_BASIS, PARTITION
from .versions import VersionedDir

TABLE_FILE = "part-0.parquet"


class LocalMarts:
    """The marts versions under `marts_dir` (a mixin of LocalWarehouse)."""

    marts_dir: VersionedDir

    def save_marts(self, marts: dict[str, pa.Table], partials: dict[str, pa.Table] | None = None,
                   basis: dict[str, Any] | None = None) -> str:
        """Write the marts, the hidden partials and the basis into one new version and publish it.

        A partial named like a mart is that mart (a monthly mart is its own partial): written once.
        """
        staged = self.marts_dir.staging()
        hidden = {name: table for name, table in (partials or {}).items() if name not in marts}
        for name, table in {**marts, **hidden}.items():
            (staged / name).mkdir()
            pq.write_table(table, staged / name / TABLE_FILE, compression="zstd")
        if basis is not None:
            (staged / MARTS_BASIS).write_text(json.dumps(basis, sort_keys=True))
        return str(self.marts_dir.publish(staged))

    def read_mart(self, name: str) -> pd.DataFrame:
        """One mart of the live marts version as pandas."""
        current = self.marts_dir.current
        if current is None or not (current / name).exists():
            raise PipelineError(f"mart {name} not found: run the Spark aggregation first")
        return pd.read_parquet(current / name)

    def marts_basis(self) -> dict[str, Any] | None:
        """What the live marts were computed from (None: no marts, or marts without partials)."""
        current = self.marts_dir.current
        if current is None or not (current / MARTS_BASIS).exists():
            return None
        basis: dict[str, Any] = json.loads((current / MARTS_BASIS).read_text())
        return basis

    def read_partials(self, names: Sequence[str]) -> dict[str, pa.Table]:
        """The partials `names` of the live marts version, as Arrow."""
        current = self.marts_dir.current
        if current is None:
            raise PipelineError("no marts to merge into: run the aggregation with --full-refresh")
        return {name: pq.read_table(current / name / TABLE_FILE) for name in names}


def month_tokens(table: Path | None) -> dict[str, str]:
    """What identifies each month partition of a table version: its files' inode, size and
    modification time. An upsert rewrites the months it touches into new files and hard-links the
    others, so a month's token changes exactly when its rows may have."""
    if table is None:
        return {}
    prefix = PARTITION.format(month="")
    return {part.name.removeprefix(prefix): ",".join(file_token(f) for f in sorted(part.glob("*.parquet")))
            for part in sorted(table.iterdir()) if part.is_dir() and part.name.startswith(prefix)}


def file_token(path: Path) -> str:
    """A file's inode, size and modification time (nanoseconds)."""
    stat = path.stat()
    return f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"
