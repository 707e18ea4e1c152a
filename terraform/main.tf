locals {
  bucket_name      = var.bucket_name != "" ? var.bucket_name : "${var.project_id}-memphis-incidents"
  raw_prefixes     = [for source in var.sources : "${var.lake_prefix}/${source}/raw/"]
  staging_prefixes = [for source in var.sources : "${var.lake_prefix}/${source}/staging/"]
  scheduled        = var.container_image != ""
  pipeline_member  = "serviceAccount:${google_service_account.pipeline.email}"

  # The pipeline's settings, key for key as in config/gcp.toml (memphis_incidents.gcp.GCPSettings).
  pipeline_config = {
    project                = var.project_id
    location               = var.region
    bucket                 = google_storage_bucket.pipeline.name
    prefix                 = var.lake_prefix
    dataset                = google_bigquery_dataset.warehouse.dataset_id
    spark_bigquery_package = var.spark_bigquery_package
  }
  pipeline_env = { for key, value in local.pipeline_config : "MEMPHIS_GCP_${upper(key)}" => value }

  services = concat(
    ["storage.googleapis.com", "bigquery.googleapis.com", "bigquerystorage.googleapis.com",
    "iam.googleapis.com", "artifactregistry.googleapis.com", "run.googleapis.com", "cloudscheduler.googleapis.com"],
    var.use_dataproc ? ["dataproc.googleapis.com"] : [],
  )
}

resource "google_project_service" "apis" {
  for_each           = toset(local.services)
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
