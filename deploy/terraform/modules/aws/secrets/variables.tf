variable "prefix" {
  description = "Name prefix of the secrets, e.g. smart-trader/prod."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key of the secrets."
  type        = string
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored (7 to 30)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}

variable "database_host" {
  description = "PostgreSQL host (the RDS instance's address)."
  type        = string
}

variable "database_port" {
  description = "PostgreSQL port."
  type        = number
  default     = 5432
}

variable "database_name" {
  description = "Application database."
  type        = string
  default     = "smart_trader"
}

variable "database_username" {
  description = "User of the DATABASE_URL (the RDS master user; see the module's header for the trade-off)."
  type        = string
}

variable "database_sslmode" {
  description = "libpq sslmode of the DATABASE_URL: require (TLS, server not verified) or verify-full (needs a CA)."
  type        = string
  default     = "require"

  validation {
    condition     = contains(["require", "verify-ca", "verify-full"], var.database_sslmode)
    error_message = "database_sslmode must be require, verify-ca or verify-full (never without TLS)."
  }
}

variable "database_ssl_root_cert" {
  description = "Path of the RDS CA bundle inside the pods (sslrootcert); required for verify-ca / verify-full."
  type        = string
  default     = ""

  validation {
    condition     = var.database_sslmode == "require" || var.database_ssl_root_cert != ""
    error_message = "verify-ca / verify-full need database_ssl_root_cert: the image has no RDS CA."
  }
}

variable "redis_host" {
  description = "ElastiCache primary endpoint."
  type        = string
}

variable "redis_port" {
  description = "ElastiCache port (TLS)."
  type        = number
  default     = 6379
}
