variable "name" {
  description = "Storage account name (globally unique, 3-24 lowercase letters and digits; 004: trading<env>storage)."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the resources."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "replication_type" {
  description = "LRS, ZRS, GRS, GZRS, ... (GZRS: zone- and geo-redundant, production)."
  type        = string
  default     = "GZRS"
}

variable "soft_delete_days" {
  description = "Soft-delete retention of blobs and containers (point-in-time restore: one day less)."
  type        = number
  default     = 30

  validation {
    condition     = var.soft_delete_days >= 7 && var.soft_delete_days <= 365
    error_message = "Keep soft-deleted blobs between 7 and 365 days."
  }
}

variable "noncurrent_version_expire_after_days" {
  description = "Days an overwritten or deleted blob version is kept."
  type        = number
  default     = 90
}

variable "backups_expire_after_days" {
  description = "Days a backup blob is kept."
  type        = number
  default     = 2557
}

variable "allowed_subnet_ids" {
  description = "Subnets allowed by service endpoint (the AKS nodes)."
  type        = list(string)
}

variable "endpoint_subnet_id" {
  description = "Subnet of the blob private endpoint."
  type        = string
}

variable "virtual_network_id" {
  description = "VNet of the private DNS zone link."
  type        = string
}

variable "log_analytics_workspace_id" {
  description = "Workspace receiving the blob service's read, write and delete logs."
  type        = string
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
