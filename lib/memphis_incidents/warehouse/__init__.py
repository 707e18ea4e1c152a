"""Warehouse back ends: embedded (Parquet + DuckDB) and BigQuery, chosen by profile."""
