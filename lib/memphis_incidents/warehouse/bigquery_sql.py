"""The BigQuery warehouse's SQL, from small pure functions: tests parse it with sqlglot's BigQuery
dialect and run the same semantics on DuckDB, and run it against the BigQuery emulator.

An upsert plans the change into a temp table `plan` (the embedded upsert's rules), applies it with
one MERGE keyed on row_id inside a transaction, then reports the counts. Every table is named in
full, so no statement depends on a default dataset.
"""
from __future__ import annotations

from ..layout import INCIDENTS, PARTITION_COLUMN as PARTITION
from ..quality import QUARANTINE_SCHEMA
from ..schema import CANONICAL_SCHEMA

ROW_FINGERPRINTS = "BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(t)))"  # of whole rows, order-free


def plan_sql(incidents: str, rows: str, keys: str, full_refresh: bool) -> str:
    """A temp table `plan`: each row id the batch changes and how (the embedded upsert's rules).

    Insert new ids; update when the content hash differs and the new row is not older at the
    source (or either time is unknown); delete withdrawn ids and, on a full refresh, ids the
    source no longer has. A row being inserted or updated is never deleted. OR REPLACE lets an
    engine that keeps temp tables past their script (the emulator) run the next batch; in
    BigQuery the table never outlives its script, so it changes nothing there.
    """
    absent = "NOT COALESCE(k.present, FALSE)" if full_refresh else "FALSE"
    return f"""CREATE OR REPLACE TEMP TABLE plan AS
WITH changed AS (
  SELECT s.row_id, t.row_id IS NOT NULL AS was_present, t.{PARTITION} AS old_month, s.{PARTITION} AS new_month
  FROM `{rows}` AS s
  LEFT JOIN `{incidents}` AS t ON t.row_id = s.row_id
  WHERE t.row_id IS NULL
     OR (t.row_hash != s.row_hash
         AND COALESCE(s.source_updated_ts_utc >= t.source_updated_ts_utc, TRUE))
),
key_roles AS (
  SELECT row_id, LOGICAL_OR(role = 'withdrawn') AS withdrawn, LOGICAL_OR(role = 'present') AS present
  FROM `{keys}`
  GROUP BY row_id
),
gone AS (
  SELECT t.row_id, COALESCE(k.withdrawn, FALSE) AS withdrawn, t.{PARTITION} AS old_month
  FROM `{incidents}` AS t
  LEFT JOIN key_roles AS k ON k.row_id = t.row_id
  WHERE (COALESCE(k.withdrawn, FALSE) OR {absent})
    AND t.row_id NOT IN (SELECT row_id FROM changed)
)
SELECT row_id, IF(was_present, 'updated', 'inserted') AS action, old_month, new_month FROM changed
UNION ALL
SELECT row_id, IF(withdrawn, 'withdrawn', 'deleted_at_source') AS action, old_month,
       CAST(NULL AS DATE) AS new_month
FROM gone"""


def merge_sql(incidents: str, rows: str) -> str:
    """Apply `plan` to incidents in one MERGE keyed on row_id."""
    columns = CANONICAL_SCHEMA.names
    updates = ",\n    ".join(f"{c} = u.{c}" for c in columns if c != "row_id")
    return f"""MERGE `{incidents}` AS t
USING (
  SELECT p.row_id AS plan_row_id, p.action, s.*
  FROM plan AS p
  LEFT JOIN `{rows}` AS s ON s.row_id = p.row_id
) AS u
ON t.row_id = u.plan_row_id
WHEN MATCHED AND u.action IN ('withdrawn', 'deleted_at_source') THEN DELETE
WHEN MATCHED AND u.action = 'updated' THEN UPDATE SET
    {updates}
WHEN NOT MATCHED BY TARGET AND u.action = 'inserted' THEN
  INSERT ({', '.join(columns)})
  VALUES ({', '.join(f'u.{c}' for c in columns)})"""


def counts_sql() -> str:
    """One row of counts from `plan`, named as UpsertResult's fields."""
    return """SELECT
  COUNT(IF(action = 'inserted', 1, NULL)) AS inserted,
  COUNT(IF(action = 'updated', 1, NULL)) AS updated,
  COUNT(IF(action = 'deleted_at_source', 1, NULL)) AS deleted_at_source,
  COUNT(IF(action = 'withdrawn', 1, NULL)) AS withdrawn,
  (SELECT COUNT(DISTINCT month)
   FROM (SELECT old_month AS month FROM plan UNION ALL SELECT new_month AS month FROM plan)) AS partitions_rewritten
FROM plan"""


def upsert_script(incidents: str, rows: str, keys: str, full_refresh: bool) -> str:
    """Plan and MERGE in one transaction, then report the counts (the script's last result)."""
    return (f"BEGIN TRANSACTION;\n{plan_sql(incidents, rows, keys, full_refresh)};\n"
            f"{merge_sql(incidents, rows)};\nCOMMIT TRANSACTION;\n{counts_sql()};\n")


def version_sql(tables: dict[str, str]) -> str:
    """Per table: its name, row count and the XOR of its rows' fingerprints (order-free)."""
    return "\nUNION ALL\n".join(
        f"SELECT '{name}' AS name, COUNT(*) AS n, "
        f"{'BIT_XOR(t.row_hash)' if name == INCIDENTS else ROW_FINGERPRINTS} AS x FROM `{table_id}` AS t"
        for name, table_id in tables.items())


def quarantine_sql(quarantine: str, rejected: str) -> str:
    """Replace one batch's quarantined rows (parameter @batch_id) with the staged ones.

    One MERGE, so atomic without a script: a query parameter is bound in a single statement by
    every engine, while an emulator leaves parameters inside scripts unbound.
    """
    columns = QUARANTINE_SCHEMA.names
    return (f"MERGE `{quarantine}` AS t\nUSING `{rejected}` AS s\nON FALSE\n"
            "WHEN NOT MATCHED BY SOURCE AND t.batch_id = @batch_id THEN DELETE\n"
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)})\n"
            f"  VALUES ({', '.join(f's.{c}' for c in columns)})")
