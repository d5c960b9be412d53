variable "name" {
  description = "Replication group id, e.g. smart-trader-prod."
  type        = string
}

variable "engine_version" {
  description = "Redis engine version (7.x: Streams, ACL, TLS)."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Cache node type."
  type        = string
}

variable "num_cache_clusters" {
  description = "Nodes (one primary, the rest replicas in other zones); at least 2 for automatic failover."
  type        = number
  default     = 3

  validation {
    condition     = var.num_cache_clusters >= 2
    error_message = "Automatic failover needs at least two nodes."
  }
}

variable "snapshot_retention_days" {
  description = "Daily snapshots kept."
  type        = number
  default     = 7

  validation {
    condition     = var.snapshot_retention_days >= 1
    error_message = "Keep at least one daily snapshot."
  }
}

variable "auth_token" {
  description = "Redis AUTH token (from the Secrets Manager secret of the secrets module)."
  type        = string
  sensitive   = true
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the cache (three zones)."
  type        = list(string)
}

variable "allowed_security_groups" {
  description = "Security groups allowed to connect, by a static name (e.g. eks-nodes = the nodes' group id)."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "KMS key of the encryption at rest."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the slow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the slow log."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
