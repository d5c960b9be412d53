variable "identifier" {
  description = "Instance identifier, e.g. smart-trader-prod."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version (major.minor or major); the parameter group family follows the major."
  type        = string
  default     = "16.8"
}

variable "instance_class" {
  description = "Instance class."
  type        = string
}

variable "allocated_storage_gb" {
  description = "Initial storage."
  type        = number
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling."
  type        = number
}

variable "database_name" {
  description = "Name of the application database."
  type        = string
  default     = "smart_trader"
}

variable "master_username" {
  description = "Master user name (its password is generated and rotated by RDS in Secrets Manager)."
  type        = string
  default     = "smart_trader_admin"
}

variable "multi_az" {
  description = "Synchronous standby in another zone."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Automated backup retention (7 to 35 days)."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "Keep automated backups between 7 and 35 days."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Database subnets (three zones)."
  type        = list(string)
}

variable "allowed_security_groups" {
  description = "Security groups allowed to connect, by a static name (e.g. eks-nodes = the nodes' group id)."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "KMS key of the storage, Performance Insights and the master-user secret."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the database logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
