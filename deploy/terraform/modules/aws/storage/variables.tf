variable "name_prefix" {
  description = "Bucket name prefix, e.g. smart-trader-prod (the account id is appended for global uniqueness)."
  type        = string
}

variable "buckets" {
  description = "Data buckets by short name, with their lifecycle."
  type = map(object({
    purpose                      = string
    infrequent_access_after_days = number
    glacier_after_days           = number
    glacier_storage_class        = string           # GLACIER_IR keeps instant reads (Parquet), GLACIER for backups
    expire_after_days            = optional(number) # null: current versions never expire
    noncurrent_expire_after_days = number
  }))

  validation {
    # noncurrent versions move to STANDARD_IA after 30 days: S3 wants the expiry after the transition
    condition     = alltrue([for b in values(var.buckets) : b.noncurrent_expire_after_days > 30])
    error_message = "Keep noncurrent versions more than 30 days (they move to STANDARD_IA at 30)."
  }

  validation {
    condition = alltrue([for b in values(var.buckets) :
      b.infrequent_access_after_days >= 30 && b.glacier_after_days > b.infrequent_access_after_days &&
    (b.expire_after_days == null ? true : b.expire_after_days > b.glacier_after_days)])
    error_message = "Tiering must go STANDARD_IA (30+ days), then Glacier, then expiry, in increasing days."
  }
}

variable "kms_key_arn" {
  description = "KMS key of the data buckets (SSE-KMS)."
  type        = string
}

variable "access_log_retention_days" {
  description = "Retention of the S3 server access logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
