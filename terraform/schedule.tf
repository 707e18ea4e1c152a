# The nightly run: Cloud Scheduler starts a Cloud Run job that runs the pipeline image under the
# pipeline service account. Created once `container_image` is set (build the image first).
resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:The repository holds only this open-source pipeline's image; Google-managed encryption is enough and a customer-managed KMS key adds cost without protecting anything secret.
  location      = var.region
  repository_id = "memphis-incidents"
  format        = "DOCKER"
  description   = "Images of the memphis-incidents pipeline"
  labels        = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_job" "nightly" {
  count               = local.scheduled ? 1 : 0
  name                = "memphis-incidents-nightly"
  location            = var.region
  deletion_protection = false
  labels              = var.labels

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.pipeline.email
      timeout         = "3600s"
      max_retries     = 1

      containers {
        image = var.container_image
        args  = ["--profile", "gcp", "--source", var.pipeline_source]

        resources {
          limits = {
            cpu    = "2"
            memory = "8Gi"
          }
        }

        dynamic "env" {
          for_each = local.pipeline_env
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.apis]
}

# The scheduler's own identity may start this one job and do nothing else.
resource "google_service_account" "scheduler" {
  count        = local.scheduled ? 1 : 0
  account_id   = "memphis-scheduler"
  display_name = "memphis-incidents nightly trigger"
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_job" {
  count    = local.scheduled ? 1 : 0
  name     = google_cloud_run_v2_job.nightly[0].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler[0].email}"
}

resource "google_cloud_scheduler_job" "nightly" {
  count     = local.scheduled ? 1 : 0
  name      = "memphis-incidents-nightly"
  region    = var.region
  schedule  = var.schedule
  time_zone = var.time_zone

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.nightly[0].name}:run"

    oauth_token {
      service_account_email = google_service_account.scheduler[0].email
    }
  }
}
