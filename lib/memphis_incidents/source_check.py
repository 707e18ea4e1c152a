"""`run_pipeline.py --check-source`: before a first live run, ask the service whether a run would work.

It reads the service's metadata, one row, the row count and the newest update time, and prints the
preset's mapping against them. It writes nothing and takes seconds.
"""
from __future__ import annotations

from .config import RunParameters, load_preset
from .errors import ExitCode
from .sources import make_source
from .sources.fields import FieldCheck, SourceSchema

COLUMNS = ("canonical field", "source field", "status", "needed")


def field_rows(checks: tuple[FieldCheck, ...]) -> list[tuple[str, ...]]:
    """One row per mapped field: canonical name, the source's field, the verdict, required or optional."""
    def status(check: FieldCheck) -> str:
        if check.status in ("other case", "substituted"):
            return f"{check.status}: {check.found}"
        if check.status == "type mismatch":
            return f"type mismatch: {check.source_type}"
        return check.status
    return [(c.canonical, c.wanted, status(c), "required" if c.required else "optional") for c in checks]


def table_text(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in [COLUMNS, tuple("-" * w for w in widths), *rows]]


def verdict(schema: SourceSchema) -> tuple[ExitCode, str]:
    blocking = schema.blocking
    if blocking:
        names = ", ".join(f"{c.canonical} ({c.wanted})" for c in blocking)
        return ExitCode.SOURCE_ERROR, f"A run would FAIL: the source cannot give {names}. Fix the preset's fields."
    missing = [c.canonical for c in schema.checks if not c.usable]
    empty = f"; these columns would be empty: {', '.join(missing)}" if missing else ""
    return ExitCode.OK, f"A run would work{empty}."


def check_source(params: RunParameters) -> int:
    """Print the source check for the run parameters' source; the exit code a run would get."""
    preset = load_preset(params.source, params.base_url)
    source = make_source(preset, params, progress=False)
    schema = source.inspected
    lines = [f"source {preset.name}: {preset.title}", f"  url: {preset.url or '(generated offline)'}",
             f"  fields read from: {schema.metadata}", "", *table_text(field_rows(schema.checks)), "",
             f"incremental: {schema.incremental.mode} on {schema.incremental.field} ({schema.incremental.reason})"]
    code, summary = verdict(schema)
    if code == ExitCode.OK:
        row = source.sample()
        lines += [f"rows: {source.count(None):,} (the server's count)",
                  f"newest update: {schema.details.get('newest_edit') or 'not published by the service'}",
                  f"one row read: {len(row) if row else 0} fields"]
    print("\n".join([*lines, "", summary]), flush=True)
    return int(code)
