"""Where everything lives: the one module that names the data layout.

Per source, one data root (`<data_dir>/<source>/` on the embedded profile, `gs://<bucket>/<prefix>/
<source>/` on GCP) holds the lake, the state and the step records as keys of one Storage; the
embedded warehouse is a folder beside them. Run reports live in their own folder (or bucket prefix).
The README's layout block is checked against these names by a test.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"  # the report templates shipped with the package

# ---- keys inside a source's Storage (local folder or bucket prefix) ----------------------------
RAW = "raw"  # the lake: one immutable folder per batch
BATCH_DATA = "part-00000.parquet"
BATCH_META = "_batch.json"  # written last: marks the batch complete
STATE = "state/state.json"  # watermark and loaded batches
FINGERPRINTS = "state/fingerprints.json"  # each step's last successful fingerprint
STAGING = "staging"  # BigQuery load files, deleted once loaded
LOCK = ".run.lock"  # one run at a time per source
SCRATCH = ".scratch"  # a load's spill (normalised chunks), removed when the load ends
OUTLINES = "reference/precincts.json"  # precinct outlines for the map, with their source and retrieval time

# ---- the embedded warehouse, under <root>/warehouse ---------------------------------------------
WAREHOUSE = "warehouse"
INCIDENTS = "incidents"  # versions vNNNNNN/offense_month=YYYY-MM-01/part-0.parquet and `current`
MARTS = "marts"  # versions vNNNNNN/<mart>/part-0.parquet (partials: _<name>/part-0.parquet) and `current`
MARTS_BASIS = "_basis.json"  # in a marts version: the code and incidents partitions it was computed from
QUARANTINE = "quarantine"
CURRENT = "current"
PARTITION_COLUMN = "offense_month"  # tables are partitioned by offense month (Memphis local time)

# ---- run reports ----------------------------------------------------------------------------------
REPORTS = "reports"  # the default local folder, and the archive's prefix in the GCP bucket
RUN_MANIFEST = "run.json"
REPORT_PAGE = "report.html"
INDEX_PAGE = "index.html"


# ---- names with a part to fill in (str.format) --------------------------------------------------
BATCH = RAW + "/batch_id={batch_id}"  # the lake folder of one raw batch
LOAD_RECORD = "state/loads/{batch_id}.json"  # what the load of one batch did (counts, watermark)
STEP_RECORD = "runs/{run_id}/{step}.json"  # what one step of one run did, read back into run.json and logs
STAGING_FILE = STAGING + "/{token}/{name}.parquet"  # a Parquet file staged for one BigQuery load job
QUARANTINE_FILE = QUARANTINE + "/batch_id={batch_id}/rejected.parquet"  # relative to the warehouse folder
PARTITION = PARTITION_COLUMN + "={month}"  # one month partition of a table version
GCS_SOURCE = "{prefix}/{source}"  # the bucket folder of one source's lake and state (GCP profile)


@dataclass(frozen=True)
class DataLayout:
    """The folders of the embedded profile, all under one data directory per source."""

    root: Path

    @classmethod
    def for_source(cls, data_dir: str | Path, source: str) -> "DataLayout":
        return cls(Path(data_dir).resolve() / source)

    @property
    def warehouse(self) -> Path:
        return self.root / WAREHOUSE

    @property
    def lock(self) -> Path:
        return self.root / LOCK
