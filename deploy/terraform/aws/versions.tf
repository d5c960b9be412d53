terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Remote state in S3 (encrypted, native S3 locking). Configured at init, per environment:
  #   terraform init -backend-config=environments/<env>.s3.tfbackend
  backend "s3" {}
}
