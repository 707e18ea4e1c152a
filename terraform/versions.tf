terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}

# Credentials: Application Default Credentials of whoever runs terraform
# (`gcloud auth application-default login`). No key files.
provider "google" {
  project = var.project_id
  region  = var.region
}
