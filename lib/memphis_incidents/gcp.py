"""The GCP profile: settings, a GCS bucket behind the Storage interface, and the run's back ends.

Settings come from one file, `config/gcp.toml` (or the file named by MEMPHIS_GCP_CONFIG), and any
of them can be overridden by an environment variable MEMPHIS_GCP_<KEY>. Credentials come only
from Application Default Credentials: `gcloud auth application-default login` on a workstation,
the attached service account on Cloud Run or Dataproc. There is no key-file setting, on purpose.
With STORAGE_EMULATOR_HOST and BIGQUERY_EMULATOR_HOST set (`make demo-gcp`) the profile talks to
local emulators and needs no credentials.

`python -m memphis_incidents.gcp < outputs.json` turns the Terraform output `pipeline_config`
into the config file (see docs/gcp.md).
"""
from __future__ import annotations

import json
import mimetypes
import os
import re
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from google.api_core.exceptions import NotFound
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import bigquery
from google.cloud import storage  # type: ignore[attr-defined]

from .config import RunParameters, tomllib
from .errors import ConfigError
from .lake import Lake
from .layout import GCS_SOURCE, REPORTS
from .backends import Backends
from .state import State
from .warehouse.bigquery import BigQueryWarehouse

BIGQUERY_EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
CONFIG_ENV = "MEMPHIS_GCP_CONFIG"
DEFAULT_CONFIG = Path("config") / "gcp.toml"
ENV_PREFIX = "MEMPHIS_GCP_"
PLACEHOLDER = "REPLACE-ME"
RULES = {
    "project": (r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "a project id such as my-project-123"),
    "location": (r"[A-Za-z][A-Za-z0-9-]*", "a BigQuery location such as us-central1 or US"),
    "bucket": (r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]", "a bucket name without gs://"),
    "dataset": (r"[A-Za-z0-9_]{1,1024}", "a dataset id: letters, digits and _"),
    "prefix": (r"[\w.=-]+(/[\w.=-]+)*", "a folder path in the bucket, no leading or trailing /"),
    "spark_bigquery_package": (r"([\w.-]+:[\w.-]+:[\w.-]+)?", "Maven coordinates group:artifact:version, or empty"),
}


@dataclass(frozen=True)
class GCPSettings:
    """Where the GCP profile keeps things; the Terraform output `pipeline_config` has the same keys."""

    project: str
    location: str
    bucket: str
    dataset: str
    prefix: str = "lake"
    spark_bigquery_package: str = ""


def env_name(key: str) -> str:
    return f"{ENV_PREFIX}{key.upper()}"


def settings_from(values: Mapping[str, Any], origin: str) -> GCPSettings:
    """Validated settings, or a ConfigError naming the key to set and where."""
    known = [f.name for f in fields(GCPSettings)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{origin}: unknown GCP setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    for f in fields(GCPSettings):
        value = values.get(f.name, f.default)
        where = f"set {f.name} in {origin} or the environment variable {env_name(f.name)}"
        if not isinstance(value, str):
            raise ConfigError(f"GCP setting {f.name} is missing or not text: {where}")
        if PLACEHOLDER in value:
            raise ConfigError(f"GCP setting {f.name} is still the placeholder {value!r}: {where} "
                              "(docs/gcp.md shows how to fill it from `terraform output`)")
        pattern, hint = RULES[f.name]
        if not re.fullmatch(pattern, value):
            raise ConfigError(f"GCP setting {f.name}={value!r} is not {hint}: {where}")
    return GCPSettings(**{k: values[k] for k in known if k in values})


def load_settings(environ: Mapping[str, str] = os.environ) -> GCPSettings:
    """Settings from the config file, each overridable by its MEMPHIS_GCP_<KEY> variable."""
    path = Path(environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    values: dict[str, Any] = {}
    if path.exists():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
    elif CONFIG_ENV in environ:
        raise ConfigError(f"{CONFIG_ENV} names {path}, which does not exist")
    values.update({f.name: environ[env_name(f.name)] for f in fields(GCPSettings) if env_name(f.name) in environ})
    return settings_from(values, str(path))


def settings_toml(outputs: Mapping[str, Any]) -> str:
    """The config file for `terraform output -json pipeline_config` (or all of `terraform output -json`)."""
    values = outputs["pipeline_config"]["value"] if "pipeline_config" in outputs else outputs
    settings = settings_from(values, "terraform output pipeline_config")
    lines = ["# Written from `terraform output -json pipeline_config`; see docs/gcp.md.",
             *(f"{key} = {json.dumps(value)}" for key, value in asdict(settings).items())]
    return "\n".join(lines) + "\n"


class GCSStorage:
    """A folder (prefix) of a GCS bucket. Single-object uploads are atomic, so every write is."""

    def __init__(self, bucket: storage.Bucket, prefix: str = ""):
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def name(self, key: str) -> str:
        """The object name of a key."""
        return "/".join(part for part in (self.prefix, key.strip("/")) if part)

    def write_bytes(self, key: str, data: bytes) -> None:
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        self.bucket.blob(self.name(key)).upload_from_string(data, content_type=content_type)

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.bucket.blob(self.name(key)).download_as_bytes()
        except NotFound:
            raise FileNotFoundError(self.uri(key)) from None

    def exists(self, key: str) -> bool:
        return self.bucket.blob(self.name(key)).exists()

    def list(self, prefix: str) -> list[str]:
        """Keys under a folder, sorted (as LocalStorage: `raw` lists `raw/...`, not `rawx`)."""
        folder = self.name(prefix)
        blobs = self.bucket.client.list_blobs(self.bucket, prefix=f"{folder}/" if folder else None)
        start = len(self.prefix) + 1 if self.prefix else 0
        return sorted(blob.name[start:] for blob in blobs)

    def delete(self, key: str) -> None:
        try:
            self.bucket.blob(self.name(key)).delete()
        except NotFound:
            pass

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket.name}/{self.name(key)}"


def bigquery_emulated(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether BigQuery calls go to an emulator (BIGQUERY_EMULATOR_HOST, as google-cloud-bigquery reads it)."""
    return bool(environ.get(BIGQUERY_EMULATOR_ENV))


def adc_clients(settings: GCPSettings) -> tuple[storage.Client, bigquery.Client]:
    """Storage and BigQuery clients authenticated by Application Default Credentials.

    Against emulators (STORAGE_EMULATOR_HOST, BIGQUERY_EMULATOR_HOST) the clients send no
    credentials, as on Google's emulators; nothing then needs a Google account.
    """
    credentials = AnonymousCredentials() if bigquery_emulated() else None
    try:
        return (storage.Client(project=settings.project),
                bigquery.Client(project=settings.project, location=settings.location, credentials=credentials))
    except DefaultCredentialsError as exc:
        raise ConfigError(
            f"no Google Cloud credentials ({exc}). On a workstation run `gcloud auth "
            "application-default login`; on GCP attach the pipeline service account (docs/gcp.md). "
            "Key files are not used.") from None


def gcp_backends(params: RunParameters, settings: GCPSettings | None = None,
                 clients: tuple[storage.Client, Any] | None = None) -> Backends:
    """Lake and state under gs://bucket/prefix/source, reports under gs://bucket/reports, BigQuery."""
    settings = settings or load_settings()
    storage_client, bigquery_client = clients or adc_clients(settings)
    bucket = storage_client.bucket(settings.bucket)
    lake_storage = GCSStorage(bucket, GCS_SOURCE.format(prefix=settings.prefix, source=params.source))
    warehouse = BigQueryWarehouse(bigquery_client, settings.project, settings.dataset, lake_storage,
                                  params.source, settings.spark_bigquery_package,
                                  spark_through_client=bigquery_emulated())
    return Backends(storage=lake_storage, lake=Lake(lake_storage), state=State(lake_storage),
                    warehouse=warehouse, data_root=lake_storage.uri(""),
                    reports=GCSStorage(bucket, REPORTS))


def main() -> int:
    """Read Terraform's pipeline_config JSON on stdin, print the config file."""
    try:
        sys.stdout.write(settings_toml(json.load(sys.stdin)))
    except (ConfigError, ValueError, TypeError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
