variable "project_id" {
  description = "Google Cloud project that holds everything the pipeline uses."
  type        = string
}

variable "region" {
  description = "Region of the bucket, the BigQuery dataset, the image repository and the nightly job. Bucket and dataset must share it for load jobs."
  type        = string
  default     = "us-central1"
}

variable "bucket_name" {
  description = "Bucket for the lake, state and run reports; empty means <project_id>-memphis-incidents."
  type        = string
  default     = ""
}

variable "dataset_id" {
  description = "BigQuery dataset for incidents, quarantine and the mart_* tables (one dataset per source)."
  type        = string
  default     = "memphis_incidents"
}

variable "lake_prefix" {
  description = "Folder in the bucket for the lake and state; each source lives under <lake_prefix>/<source>/."
  type        = string
  default     = "lake"
}

variable "sources" {
  description = "Source presets the pipeline loads into this project; lifecycle rules cover their raw and staging folders."
  type        = list(string)
  default     = ["memphis-arcgis"]
}

variable "raw_nearline_after_days" {
  description = "Age in days after which raw batches move to Nearline storage (they are rarely read once loaded)."
  type        = number
  default     = 30
}

variable "raw_retention_days" {
  description = "Age in days after which raw batches are deleted (a full refresh re-pulls the source)."
  type        = number
  default     = 730
}

variable "report_retention_days" {
  description = "Age in days after which archived run reports (reports/<run_id>/) are deleted."
  type        = number
  default     = 365
}

variable "staging_retention_days" {
  description = "Age in days after which leftover staging files of interrupted loads are deleted."
  type        = number
  default     = 7
}

variable "noncurrent_retention_days" {
  description = "Days an overwritten or deleted object version is kept (state.json and run.json are rewritten every run)."
  type        = number
  default     = 30
}

variable "allow_destroy_data" {
  description = "Let `terraform destroy` delete a non-empty bucket and dataset. Keep false except for teardown."
  type        = bool
  default     = false
}

variable "operators" {
  description = "Members (user:... or group:...) who may run the pipeline as its service account through ADC impersonation."
  type        = list(string)
  default     = []
}

variable "use_dataproc" {
  description = "Grant the pipeline service account the Dataproc worker role, to run Spark on a Dataproc cluster under it."
  type        = bool
  default     = false
}

variable "spark_bigquery_package" {
  description = "spark-bigquery connector coordinates for a Spark without it (written to the pipeline config); empty on Dataproc."
  type        = string
  default     = ""
}

variable "container_image" {
  description = "Pipeline image in the Artifact Registry repository; when set, the nightly Cloud Run job and its schedule are created."
  type        = string
  default     = ""
}

variable "pipeline_source" {
  description = "Source preset the nightly job runs."
  type        = string
  default     = "memphis-arcgis"
}

variable "schedule" {
  description = "Cron schedule of the nightly run (the source publishes its daily update by 6 am Memphis time)."
  type        = string
  default     = "30 7 * * *"
}

variable "time_zone" {
  description = "Time zone of the schedule."
  type        = string
  default     = "America/Chicago"
}

variable "labels" {
  description = "Labels put on the bucket, dataset and job."
  type        = map(string)
  default     = { app = "memphis-incidents" }
}
