"""DuckDB with bounded memory: a query larger than the limit spills to the folder given, even one
whose parent does not exist yet (a first load into a new warehouse)."""
from __future__ import annotations

from memphis_incidents import duckdb_session


def test_a_sort_larger_than_the_limit_spills_into_a_folder_made_for_it(tmp_path, monkeypatch):
    monkeypatch.setattr(duckdb_session, "MEMORY_LIMIT", "32MB")
    spill = tmp_path / "new" / "warehouse" / ".scratch"
    with duckdb_session.bounded_connection(spill) as con:
        con.execute("SET threads = 1")
        con.execute("CREATE TEMP TABLE big AS SELECT range AS n, md5(range::VARCHAR) AS text FROM range(2000000)")
        assert con.execute("SELECT max(n) FROM (SELECT n FROM big ORDER BY text)").fetchone() == (1_999_999,)
        assert con.execute("SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'").fetchone()[0] \
            == "30.5 MiB"
        assert spill.is_dir()  # DuckDB wrote its spill there
