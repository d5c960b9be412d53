variable "name" {
  description = "Name of the IAM role."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "OIDC issuer URL of the cluster."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the service account."
  type        = string
}

variable "service_account" {
  description = "Kubernetes service account allowed to assume the role."
  type        = string
}

variable "s3_bucket_arns" {
  description = "Buckets the role reads and writes."
  type        = list(string)
  default     = []
}

variable "secret_arns" {
  description = "Secrets the role reads."
  type        = list(string)
  default     = []
}

variable "kms_key_arns" {
  description = "KMS keys the role uses (of those buckets and secrets)."
  type        = list(string)
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
