"""One place for settings: run parameters and source presets (the data layout is layout.py).

Run parameters are declared once here (`RunParameters`); the notebooks' `parameters` cells use the
same names and defaults (a test checks it) and the runner rejects anything else before a kernel starts.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

PROFILES = ("embedded", "gcp")
PRESETS_ENV = "MEMPHIS_INCIDENTS_PRESETS"
REQUIRED_FIELDS = ("row_id", "offense_ts", "category")
CANONICAL_SOURCE_FIELDS = (
    "row_id", "incident_id", "offense_ts", "reported_ts", "agency_crime_type", "ucr_code",
    "category", "description", "nibrs_crime_against", "nibrs_group", "address", "city", "zip",
    "precinct", "latitude", "longitude", "source_updated_ts",
)
OPTIONAL_PRESET_KEYS = {"precincts_url"}
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_run_id(run_id: str) -> str:
    """A run id names folders and files: letters, digits, '.', '_' and '-' only, or ConfigError."""
    if not RUN_ID.fullmatch(run_id):
        raise ConfigError(f"run id {run_id!r} cannot name a folder: use up to 100 letters, digits, "
                          "'.', '_' and '-', starting with a letter or digit")
    return run_id


# The master URLs Spark parses (SparkContext's master patterns), so a typo fails before any kernel starts
SPARK_MASTER = re.compile(r"local(\[(\d+|\*)(\s*,\s*\d+)?\])?|local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]"
                          r"|(spark|k8s|mesos)://\S+|yarn")


@dataclass(frozen=True)
class RunParameters:
    """Every parameter a run accepts; notebooks declare the subset they use, with these defaults."""

    run_id: str = ""
    profile: str = "embedded"
    source: str = "demo"
    data_dir: str = "data"
    base_url: str = ""
    full_refresh: bool = False
    demo_rows: int = 250_000
    demo_seed: int = 42
    demo_day: int = 0
    max_reject_share: float = 0.05
    http_retries: int = 5
    http_backoff: float = 1.0
    http_timeout: float = 60.0
    reconcile_days: int = 7
    precincts_url: str = ""
    spark_master: str = "local[*]"
    spark_remote: str = ""

    def __post_init__(self) -> None:
        if self.run_id:
            check_run_id(self.run_id)
        if self.profile not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        if min(self.demo_rows, self.demo_day, self.http_retries, self.http_backoff, self.reconcile_days) < 0:
            raise ConfigError("demo_rows, demo_day, http_retries, http_backoff and reconcile_days must be zero or more")
        if self.http_timeout <= 0:
            raise ConfigError("http_timeout must be a number of seconds above zero")
        if not 0 <= self.max_reject_share <= 1:
            raise ConfigError("max_reject_share must be between 0 and 1")
        if not SPARK_MASTER.fullmatch(self.spark_master):
            raise ConfigError(f"spark_master must be a Spark master URL (local[*], local[2], spark://host:7077, "
                              f"yarn, k8s://...), not {self.spark_master!r}")
        load_preset(self.source)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "RunParameters":
        """Build from loosely typed values (CLI strings or JSON), refusing unknown names and bad types."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            hint = ", ".join(sorted(known))
            raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}; known: {hint}")
        return cls(**{name: coerce(name, value, known[name].type) for name, value in values.items()})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def coerce(name: str, value: Any, type_name: Any) -> Any:
    """Coerce a parameter value to its declared type, or raise ConfigError naming it."""
    type_name = getattr(type_name, "__name__", type_name)
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes"}:
            return True
        if text in {"false", "0", "no"}:
            return False
    elif type_name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return int(value)
    elif type_name == "float":
        number = finite_float(value)
        if number is not None:
            return number
        type_name = "a finite float"
    elif type_name == "str":
        if isinstance(value, str):
            return value
    raise ConfigError(f"parameter {name} must be {type_name}, got {value!r}")


def finite_float(value: Any) -> float | None:
    """A number or numeric text as a finite float; None for anything else (bool, nan, inf, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Preset:
    """A source publication: where it lives and how its fields map to the canonical schema."""

    name: str
    kind: str
    title: str
    url: str
    timestamps: str
    updated_field: str
    omissions: str
    fields: Mapping[str, str] = field(default_factory=dict)
    precincts_url: str = ""  # an ArcGIS layer of precinct polygons for the map ("" = none)

    @property
    def is_synthetic(self) -> bool:
        return self.kind == "demo"


def _read_presets() -> dict[str, dict[str, Any]]:
    text = resources.files(__package__).joinpath("presets.toml").read_text(encoding="utf-8")
    presets = tomllib.loads(text)
    extra = os.environ.get(PRESETS_ENV)
    if extra:
        try:
            presets.update(tomllib.loads(Path(extra).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read presets file {extra} ({PRESETS_ENV}): {exc}") from None
    not_tables = sorted(name for name, value in presets.items() if not isinstance(value, dict))
    if not_tables:
        raise ConfigError(f"presets must be tables ([name] sections), not values: {', '.join(not_tables)}")
    return presets


def preset_names() -> list[str]:
    return sorted(_read_presets())


def load_preset(name: str, base_url: str = "") -> Preset:
    """The named preset, with its field mapping resolved and checked."""
    presets = _read_presets()
    if name not in presets:
        raise ConfigError(f"unknown source {name!r}; presets: {', '.join(sorted(presets))}")
    raw = dict(presets[name])
    mapping = raw.pop("fields", {})
    if isinstance(mapping, str):  # borrow another preset's mapping
        mapping = presets.get(mapping, {}).get("fields", {})
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ConfigError(f"preset {name!r}: fields must be a table of canonical name = source field name")
    not_text = sorted(key for key, value in raw.items() if not isinstance(value, str))
    if not_text:
        raise ConfigError(f"preset {name!r}: {', '.join(not_text)} must be text")
    keys = {f.name for f in dataclasses.fields(Preset)} - {"name", "fields"}
    required = keys - OPTIONAL_PRESET_KEYS
    if not required <= set(raw) <= keys:
        raise ConfigError(f"preset {name!r}: unknown key(s) {', '.join(sorted(set(raw) - keys)) or 'none'}, "
                          f"missing key(s) {', '.join(sorted(required - set(raw))) or 'none'}")
    missing = [f for f in REQUIRED_FIELDS if f not in mapping]
    unknown = [f for f in mapping if f not in CANONICAL_SOURCE_FIELDS]
    if missing or unknown:
        raise ConfigError(f"preset {name!r}: missing fields {missing}, unknown fields {unknown}")
    if raw.get("kind") not in {"demo", "socrata", "arcgis"}:
        raise ConfigError(f"preset {name!r}: kind must be demo, socrata or arcgis")
    if raw.get("timestamps") not in {"epoch_ms_utc", "floating_local"}:
        raise ConfigError(f"preset {name!r}: timestamps must be epoch_ms_utc or floating_local")
    preset = Preset(name=name, fields=dict(mapping), **raw)
    return dataclasses.replace(preset, url=base_url) if base_url else preset
