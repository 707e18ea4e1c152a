output "pipeline_config" {
  description = "The pipeline's settings: terraform output -json pipeline_config | python -m memphis_incidents.gcp > config/gcp.toml"
  value       = local.pipeline_config
}

output "service_account_email" {
  description = "The pipeline's service account (attach it, or impersonate it through ADC)."
  value       = google_service_account.pipeline.email
}

output "bucket_url" {
  description = "The bucket: lake and state under <lake_prefix>/<source>/, run reports under reports/<run_id>/."
  value       = google_storage_bucket.pipeline.url
}

output "image_repository" {
  description = "Where to push the pipeline image (docs/gcp.md)."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "nightly_job" {
  description = "The Cloud Run job of the nightly run, once container_image is set."
  value       = local.scheduled ? google_cloud_run_v2_job.nightly[0].name : null
}
