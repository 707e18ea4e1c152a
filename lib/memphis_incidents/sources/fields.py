"""A preset's field mapping checked against what the service itself says it has.

The service's metadata (ArcGIS layer `?f=json`, Socrata `/api/views/<id>.json`) is read once per run,
before paging. Each mapped field is then found (exactly, or in another letter case), missing, or of
a type the normaliser cannot read. Only the fields without which a row cannot be placed are
required; a missing optional field becomes an empty column and a warning, never a lost night.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Collection, Mapping

from ..config import PRESETS_ENV, REQUIRED_FIELDS, Preset
from ..errors import SchemaDriftError

FOUND, OTHER_CASE, SUBSTITUTED, MISSING, WRONG_TYPE = "found", "other case", "substituted", "missing", "type mismatch"
USABLE = (FOUND, OTHER_CASE, SUBSTITUTED)
# A source that lacks one of these stops the run: a row cannot be placed without the first three, and
# without its incident id every distinct-incident figure would silently become an offense-row count.
BLOCKING_FIELDS = (*REQUIRED_FIELDS, "incident_id")
TIME_FIELDS = ("offense_ts", "reported_ts", "source_updated_ts")
NUMBER_FIELDS = ("latitude", "longitude")


@dataclass(frozen=True)
class FieldCheck:
    """One canonical field: the source field the preset names, what the service has, and the verdict."""

    canonical: str
    wanted: str
    found: str | None
    status: str
    required: bool
    source_type: str | None = None

    @property
    def usable(self) -> bool:
        return self.status in USABLE


@dataclass(frozen=True)
class Incremental:
    """How later pulls find new and changed rows: by an edit-date field, or an overlap window."""

    mode: str  # "edit date" | "overlap window"
    field: str
    reason: str


@dataclass(frozen=True)
class SourceSchema:
    """What the service's metadata says, checked against the preset: the mapping a run will use."""

    checks: tuple[FieldCheck, ...]
    incremental: Incremental
    metadata: str  # where the field list came from
    available: tuple[str, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, str]:
        """canonical name -> the source's own spelling, for every usable field."""
        return {c.canonical: c.found for c in self.checks if c.usable and c.found}

    @property
    def warnings(self) -> list[str]:
        return [warning(c) for c in self.checks if c.status != FOUND]

    @property
    def blocking(self) -> list[FieldCheck]:
        return [c for c in self.checks if c.required and not c.usable]

    def resolved(self, preset: Preset) -> Preset:
        """The preset with the mapping the service supports (missing optional fields dropped)."""
        return dataclasses.replace(preset, fields=self.fields, updated_field=self.incremental.field
                                   if self.incremental.mode == "edit date" else "")


def warning(check: FieldCheck) -> str:
    """One sentence a reader of the report or run.json understands."""
    if check.status == OTHER_CASE:
        return f"the source spells {check.wanted} as {check.found}: used as {check.canonical}"
    if check.status == SUBSTITUTED:
        return f"the source has no {check.wanted} field: {check.canonical} comes from {check.found}"
    if check.status == WRONG_TYPE:
        return (f"the source's {check.found} field is of type {check.source_type}, which cannot be read as "
                f"{check.canonical}: {check.canonical} is empty")
    return f"the source has no {check.wanted} field: {check.canonical} is empty"


def match(name: str, available: Collection[str]) -> str | None:
    """The available field named `name`, exactly or else in another letter case."""
    if name in available:
        return name
    folded = {other.casefold(): other for other in available}
    return folded.get(name.casefold())


def check_field(canonical: str, wanted: str, types: Mapping[str, str | None],
                readable: Mapping[str, Collection[str]]) -> FieldCheck:
    """The verdict on one mapped field; `readable` lists the source types each canonical kind accepts."""
    required = canonical in BLOCKING_FIELDS
    found = match(wanted, types)
    if found is None:
        return FieldCheck(canonical, wanted, None, MISSING, required)
    source_type = types[found]
    accepted = readable.get(canonical)
    if accepted and source_type is not None and source_type not in accepted:
        return FieldCheck(canonical, wanted, found, WRONG_TYPE, required, source_type)
    return FieldCheck(canonical, wanted, found, FOUND if found == wanted else OTHER_CASE, required, source_type)


def check_mapping(preset: Preset, types: Mapping[str, str | None],
                  readable: Mapping[str, Collection[str]]) -> list[FieldCheck]:
    """Every mapped field of the preset checked against the service's fields and types."""
    return [check_field(canonical, wanted, types, readable) for canonical, wanted in preset.fields.items()]


def substitute(checks: list[FieldCheck], canonical: str, replacement: str | None) -> list[FieldCheck]:
    """Fill a missing field from another source field the metadata names (e.g. the layer's edit date)."""
    return [dataclasses.replace(c, found=replacement, status=SUBSTITUTED)
            if c.canonical == canonical and not c.usable and replacement else c for c in checks]


def require(preset: Preset, schema: SourceSchema) -> SourceSchema:
    """The schema, or SchemaDriftError naming every required field the source lacks or cannot give."""
    blocking = schema.blocking
    if not blocking:
        return schema
    parts = []
    for check in blocking:
        if check.status == WRONG_TYPE:
            parts.append(f"{check.found} ({check.canonical}) is of type {check.source_type}")
            continue
        close = difflib.get_close_matches(check.wanted, schema.available, 1)
        parts.append(f"no field {check.wanted} ({check.canonical})" + (f"; did it become {close[0]}?" if close else ""))
    raise SchemaDriftError(
        f"{preset.name}: the source cannot give the fields a row needs: {'; '.join(parts)}. Renamed or "
        f"removed at the source: update the preset's fields in presets.toml, or in a presets file named by "
        f"{PRESETS_ENV}; `run_pipeline.py --check-source` shows the whole mapping."
    )


def incremental(preset: Preset, available: Collection[str], edit_field: str | None,
                overlap_days: float) -> Incremental:
    """The incremental mode a service allows: the preset's update field if the service has it, else
    the service's own edit-date field, else an overlap window on the offense time."""
    wanted = preset.updated_field
    found = match(wanted, available) if wanted else None
    if found:
        return Incremental("edit date", found, f"the preset's update field {wanted} is on the source")
    lacking = f"the source has no {wanted} field; " if wanted else ""
    if edit_field and edit_field in available:
        return Incremental("edit date", edit_field,
                           f"{lacking}the layer's own edit-date field {edit_field} (editFieldsInfo.editDateField)")
    offense = match(preset.fields["offense_ts"], available) or preset.fields["offense_ts"]
    return Incremental("overlap window", offense,
                       f"{lacking}no edit-date field is published: rows whose {offense} is within "
                       f"{overlap_days:g} days before the watermark are pulled again")
