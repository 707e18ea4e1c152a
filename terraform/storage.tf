# One bucket: the lake and state under <lake_prefix>/<source>/, run reports under reports/<run_id>/.
resource "google_storage_bucket" "pipeline" {
  #checkov:skip=CKV_GCP_62:Object access is audited with Cloud Audit Logs (Data Access logs for Cloud Storage), not with legacy usage-log files written to a second bucket.
  name                        = local.bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.allow_destroy_data
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age            = var.raw_nearline_after_days
      matches_prefix = local.raw_prefixes
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.raw_retention_days
      matches_prefix = local.raw_prefixes
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.report_retention_days
      matches_prefix = ["reports/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.staging_retention_days
      matches_prefix = local.staging_prefixes
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}
