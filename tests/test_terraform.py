"""Offline checks of terraform/: every file parses (python-hcl2), the resources say what the runbook
promises, and checkov finds nothing that is not skipped inline with a reason.

No terraform binary is available here, so `terraform validate` and `plan` are not run. checkov
lives in its own venv, .venv-checkov/ (it pins a fork of the hcl2 module that would shadow
python-hcl2 in the project's venv); the first run creates it, which takes a minute or two.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import hcl2
import pytest

from memphis_incidents.gcp import GCPSettings

REPO = Path(__file__).resolve().parents[1]
TERRAFORM = REPO / "terraform"
CHECKOV = "checkov==3.3.30"
CHECKOV_VENV = REPO / ".venv-checkov"
LEAST_PRIVILEGE = {"roles/storage.objectUser", "roles/bigquery.dataEditor", "roles/bigquery.jobUser",
                   "roles/bigquery.readSessionUser", "roles/dataproc.worker",
                   "roles/iam.serviceAccountTokenCreator", "roles/run.invoker"}
SKIPPED_DIRS = {".git", ".venv", ".venv-checkov", ".venv-bqemu", "data", "reports", "node_modules", "__pycache__"}


def unquoted(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of labels and string literals; drop them and block markers."""
    if isinstance(value, dict):
        return {unquoted(k): unquoted(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [unquoted(v) for v in value]
    if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@pytest.fixture(scope="module")
def config() -> dict[str, dict]:
    """Every .tf file, parsed, merged by block type: {"resource": {type: {name: body}}, ...}."""
    merged: dict[str, dict] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as handle:
            parsed = unquoted(hcl2.load(handle))
        for block, entries in parsed.items():
            target = merged.setdefault(block, {})
            for entry in entries:
                for key, body in entry.items():
                    if block == "resource":
                        target.setdefault(key, {}).update(body)
                    else:
                        target[key] = body
    return merged


def resource(config: dict, kind: str, name: str) -> dict:
    return config["resource"][kind][name]


def test_every_tf_file_parses_and_declares_what_the_pipeline_needs(config):
    assert {p.name for p in TERRAFORM.glob("*.tf")} >= {"versions.tf", "variables.tf", "main.tf", "storage.tf",
                                                          "bigquery.tf", "iam.tf", "outputs.tf"}
    assert set(config["resource"]) >= {"google_storage_bucket", "google_bigquery_dataset", "google_service_account"}
    assert all(v.get("description") and v.get("type") for v in config["variable"].values())
    assert {"project_id", "region", "bucket_name", "dataset_id"} <= set(config["variable"])


def test_the_bucket_is_private_uniform_versioned_and_ages_out_old_batches_and_reports(config):
    bucket = resource(config, "google_storage_bucket", "pipeline")
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["versioning"] == [{"enabled": True}]
    rules = {(r["action"][0]["type"], str(r["condition"][0].get("matches_prefix"))): r["condition"][0]
             for r in bucket["lifecycle_rule"]}
    assert rules[("SetStorageClass", "${local.raw_prefixes}")]["age"] == "${var.raw_nearline_after_days}"
    assert rules[("Delete", "${local.raw_prefixes}")]["age"] == "${var.raw_retention_days}"
    assert rules[("Delete", "['reports/']")]["age"] == "${var.report_retention_days}"
    assert rules[("Delete", "${local.staging_prefixes}")]["age"] == "${var.staging_retention_days}"
    assert rules[("Delete", "None")]["with_state"] == "ARCHIVED"
    assert "/raw/" in config["locals"]["raw_prefixes"] and "${var.lake_prefix}" in config["locals"]["raw_prefixes"]


def test_the_outputs_feed_the_pipeline_config_key_for_key(config):
    assert set(config["locals"]["pipeline_config"]) == {f.name for f in fields(GCPSettings)}
    assert config["output"]["pipeline_config"]["value"] == "${local.pipeline_config}"
    assert "MEMPHIS_GCP_${upper(key)}" in config["locals"]["pipeline_env"]


def test_the_service_account_has_least_privilege_roles_and_no_key(config):
    iam = {kind: body for kind, body in config["resource"].items() if kind.endswith("_iam_member")}
    roles = set(re.findall(r"roles/[A-Za-z.]+", json.dumps(iam)))
    assert roles <= LEAST_PRIVILEGE and "roles/bigquery.jobUser" in roles
    assert resource(config, "google_storage_bucket_iam_member", "pipeline_objects")["bucket"] == \
        "${google_storage_bucket.pipeline.name}"
    assert resource(config, "google_bigquery_dataset_iam_member", "pipeline_tables")["dataset_id"] == \
        "${google_bigquery_dataset.warehouse.dataset_id}"
    assert "google_service_account_key" not in config["resource"]
    assert "credentials" not in config["provider"]["google"]


def test_no_service_account_key_file_is_anywhere_in_the_repo():
    """No JSON key file (as the original project kept at its root) and no PEM private key."""
    json_key = re.compile(r'"type"\s*:\s*"service_account"')
    pem_key = re.compile("-----BEGIN " + "PRIVATE KEY-----")  # split so this file does not match
    offenders = []
    for path in REPO.rglob("*"):
        if set(path.relative_to(REPO).parts) & SKIPPED_DIRS or not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        text = path.read_text(errors="ignore")
        if pem_key.search(text) or (path.suffix == ".json" and json_key.search(text)):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def checkov_executable() -> Path:
    """checkov in its own venv, created on first use from PyPI."""
    executable = CHECKOV_VENV / "bin" / "checkov"
    version = CHECKOV.split("==")[1]
    if executable.exists():
        found = subprocess.run([str(executable), "--version"], capture_output=True, text=True).stdout.strip()
        if found == version:
            return executable
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(CHECKOV_VENV)], check=True)
    subprocess.run([str(CHECKOV_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", CHECKOV],
                   check=True, timeout=900)
    return executable


@pytest.mark.slow
def test_checkov_fails_nothing_and_every_skip_says_why():
    run = subprocess.run([str(checkov_executable()), "--directory", str(TERRAFORM), "--framework", "terraform",
                          "--skip-download", "--output", "json"], capture_output=True, text=True, timeout=300)
    report = json.loads(run.stdout)
    results, summary = report["results"], report["summary"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] >= 10
    assert [(c["check_id"], c["resource"]) for c in results["failed_checks"]] == []
    assert summary["passed"] >= 10
    reasons = {c["check_id"]: c["check_result"].get("suppress_comment") or "" for c in results["skipped_checks"]}
    assert all(len(reason.split()) >= 8 for reason in reasons.values()), reasons
