"""The warehouse interface both profiles implement: `LocalWarehouse` (Parquet + DuckDB) and
`BigQueryWarehouse`. Stages and the analysis see only this Protocol; a type check holds both to it."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Protocol, Sequence, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

# Rows to upsert: a table in memory, or a dataset read lazily (the load's spill, filtered to its
# valid rows); row ids: an array, or a dataset with a `row_id` column. Either may hold more columns.
StagedRows: TypeAlias = pa.Table | ds.Dataset
RowIds: TypeAlias = pa.Array | ds.Dataset


@dataclass
class UpsertResult:
    """What an upsert changed, in rows, and the version it produced."""

    inserted: int
    updated: int
    unchanged: int
    deleted_at_source: int
    withdrawn: int
    partitions_rewritten: int = 0
    version: str | None = None  # of the table it produced (None: nothing changed)

    @classmethod
    def nothing(cls) -> "UpsertResult":
        """An upsert of nothing: no rows, no new version."""
        return cls(inserted=0, updated=0, unchanged=0, deleted_at_source=0, withdrawn=0)

    def as_dict(self) -> dict[str, int | str | None]:
        return asdict(self)


class Warehouse(Protocol):
    """The `incidents` table, the quarantine and the marts of one source."""

    @property
    def spark_conf(self) -> dict[str, str]:
        """Settings a Spark session needs to read `incidents` (a connector package, or none)."""
        ...

    def upsert(self, staged: StagedRows, withdraw_ids: list[str] | None = None,
               present_ids: RowIds | None = None) -> UpsertResult:
        """Insert new rows, replace changed ones, drop withdrawn ones (and, given `present_ids`,
        rows gone at the source); keyed by row id, idempotent."""
        ...

    def write_quarantine(self, batch_id: str, rejected: pa.Table) -> str:
        """Keep a batch's rejected rows (replacing that batch's earlier ones); returns where."""
        ...

    def save_marts(self, marts: dict[str, pa.Table], partials: dict[str, pa.Table] | None = None,
                   basis: dict[str, Any] | None = None) -> str:
        """Publish every mart together, with the per-month partials and the basis (what they were
        computed from) that a later incremental run merges into where the warehouse keeps them;
        returns what identifies the published version."""
        ...

    def month_tokens(self) -> dict[str, str] | None:
        """What identifies each month partition of `incidents` now, by month (ISO date); None
        where the warehouse cannot tell, so that every run computes every month."""
        ...

    def marts_basis(self) -> dict[str, Any] | None:
        """What the live marts were computed from (`save_marts`'s basis); None if unknown."""
        ...

    def read_partials(self, names: Sequence[str]) -> dict[str, pa.Table]:
        """The per-month partials `names` of the live marts."""
        ...

    def read_incidents(self) -> pa.Table:
        """The whole live table as Arrow, in partition then cluster order."""
        ...

    def spark_incidents(self, spark: Any, months: Sequence[date] | None = None) -> Any:
        """The live table (or its `months` partitions only) as a Spark DataFrame of `spark`."""
        ...

    def read_mart(self, name: str) -> pd.DataFrame:
        """One mart of the live version as pandas, in its reading order."""
        ...

    def quarantine_counts(self) -> pa.Table:
        """Rejected rows per reason across all batches, each rejection once."""
        ...

    def query(self, sql: str) -> pd.DataFrame:
        """A SQL query over `incidents`, `quarantine` and the marts, as pandas."""
        ...

    def content_digest(self) -> str:
        """A digest of the table's content: equal tables give equal digests."""
        ...

    def version_token(self, part: str) -> str:
        """What identifies the current state of `incidents`, `marts` or `quarantine`."""
        ...


def in_memory(staged: StagedRows, schema: pa.Schema) -> pa.Table:
    """Staged rows as one table of `schema` (a dataset is read whole: for warehouses that upload it)."""
    table = staged.to_table(columns=schema.names) if isinstance(staged, ds.Dataset) else staged.select(schema.names)
    return table.cast(schema)


def id_array(ids: RowIds) -> pa.Array:
    """Row ids as one text array."""
    if isinstance(ids, ds.Dataset):
        return ids.to_table(columns=["row_id"]).column("row_id").combine_chunks().cast(pa.string())
    return ids.cast(pa.string())
