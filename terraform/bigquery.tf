# The dataset only: the pipeline creates its tables (schema, MONTH partitioning on offense_month,
# clustering by category) from the canonical schema in code, so the schema has one source of truth.
resource "google_bigquery_dataset" "warehouse" {
  #checkov:skip=CKV_GCP_81:The data is public open data; Google-managed encryption at rest is enough and a customer-managed KMS key would add cost and key operations for no confidentiality gain.
  dataset_id                 = var.dataset_id
  location                   = var.region
  description                = "MPD Public Safety Incidents warehouse and marts (memphis-incidents)"
  delete_contents_on_destroy = var.allow_destroy_data
  labels                     = var.labels

  depends_on = [google_project_service.apis]
}
