# The pipeline's identity. No key is ever created for it: it is used through Application Default
# Credentials, attached to Cloud Run or Dataproc, or impersonated by the operators listed.
resource "google_service_account" "pipeline" {
  account_id   = "memphis-pipeline"
  display_name = "memphis-incidents pipeline"
  description  = "Runs the memphis-incidents pipeline: lake and reports in GCS, warehouse in BigQuery."
}

# Objects in this bucket only: read, write, list, delete (no bucket settings, no IAM).
resource "google_storage_bucket_iam_member" "pipeline_objects" {
  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.objectUser"
  member = local.pipeline_member
}

# Tables and rows in this dataset only: create, load, merge, drop staging tables.
resource "google_bigquery_dataset_iam_member" "pipeline_tables" {
  dataset_id = google_bigquery_dataset.warehouse.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.pipeline_member
}

# Project level, because BigQuery grants these nowhere narrower: running load and query jobs, and
# read sessions of the Storage Read API (the spark-bigquery connector and fast result downloads).
resource "google_project_iam_member" "pipeline_project" {
  for_each = toset(concat(
    ["roles/bigquery.jobUser", "roles/bigquery.readSessionUser"],
    var.use_dataproc ? ["roles/dataproc.worker"] : [],
  ))
  project = var.project_id
  role    = each.value
  member  = local.pipeline_member
}

# Operators run the pipeline from a workstation as this account:
# gcloud auth application-default login --impersonate-service-account=<service_account_email>
resource "google_service_account_iam_member" "operators_impersonate" {
  for_each           = toset(var.operators)
  service_account_id = google_service_account.pipeline.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}
