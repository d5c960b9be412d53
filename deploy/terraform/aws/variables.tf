# --- identity and tags ---
variable "project" {
  description = "Project name, the prefix of every resource name."
  type        = string
  default     = "smart-trader"
}

variable "environment" {
  description = "Environment: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "owner" {
  description = "Team owning the resources (the Owner tag)."
  type        = string
}

variable "extra_tags" {
  description = "Tags added to the common ones (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
  default     = {}
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

# --- network ---
variable "availability_zones" {
  description = "Three availability zones of the region."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (a /16)."
  type        = string
  default     = "10.0.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per zone (cheaper, not zone-redundant)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (flow logs, EKS, RDS, Redis)."
  type        = number
  default     = 365
}

# --- EKS ---
variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "eks_endpoint_public_access" {
  description = "Expose the EKS API publicly, restricted to eks_public_access_cidrs (off: private endpoint only)."
  type        = bool
  default     = false
}

variable "eks_public_access_cidrs" {
  description = "Operator CIDRs allowed to the public EKS endpoint when it is enabled."
  type        = list(string)
  default     = []
}

variable "eks_admin_role_arns" {
  description = "IAM roles given cluster-admin access (besides the identity that creates the cluster)."
  type        = list(string)
  default     = []
}

variable "eks_node_groups" {
  description = "Managed node groups."
  type = map(object({
    instance_types = list(string)
    capacity_type  = string
    min_size       = number
    max_size       = number
    desired_size   = number
  }))
}

variable "k8s_namespace" {
  description = "Namespace the Helm chart is installed into."
  type        = string
  default     = "smart-trader"
}

variable "k8s_service_account" {
  description = "Service account of the application pods (IRSA role for S3 cold data and the secrets)."
  type        = string
  default     = "smart-trader"
}

variable "k8s_backup_service_account" {
  description = "Service account of the backup jobs (IRSA role for the backup bucket)."
  type        = string
  default     = "smart-trader-backup"
}

# --- RDS PostgreSQL ---
variable "rds_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "rds_allocated_storage_gb" {
  description = "Initial RDS storage."
  type        = number
  default     = 100
}

variable "rds_max_allocated_storage_gb" {
  description = "RDS storage autoscaling ceiling."
  type        = number
  default     = 1000
}

variable "rds_multi_az" {
  description = "Multi-AZ standby (must be on in prod)."
  type        = bool
  default     = true
}

variable "rds_deletion_protection" {
  description = "Deletion protection (must be on in prod)."
  type        = bool
  default     = true
}

variable "rds_backup_retention_days" {
  description = "Automated backup retention, 7 to 35 days (the point-in-time restore window)."
  type        = number
  default     = 14
}

variable "rds_backup_replication" {
  description = "Copy the RDS automated backups to dr_region (point-in-time restore there when the region is lost)."
  type        = bool
  default     = true
}

variable "dr_region" {
  description = "Disaster-recovery region of the backup copies (not the primary region)."
  type        = string
  default     = "us-west-2"

  validation {
    condition     = var.dr_region != var.region
    error_message = "dr_region must differ from region."
  }
}

variable "database_sslmode" {
  description = "sslmode of the DATABASE_URL: require (the image has no RDS CA) or verify-full with database_ssl_root_cert."
  type        = string
  default     = "require"
}

variable "database_ssl_root_cert" {
  description = "Path of the RDS CA bundle mounted in the pods (sslrootcert), e.g. /etc/smart-trader/rds-ca/global-bundle.pem."
  type        = string
  default     = ""
}

# --- ElastiCache Redis ---
variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "redis_num_cache_clusters" {
  description = "Redis nodes (primary + replicas), at least 2."
  type        = number
  default     = 3
}

variable "redis_snapshot_retention_days" {
  description = "Daily Redis snapshots kept."
  type        = number
  default     = 7
}

# --- S3 ---
variable "cold_data_glacier_after_days" {
  description = "Days before Parquet cold data moves to Glacier Instant Retrieval."
  type        = number
  default     = 180
}

variable "backups_expire_after_days" {
  description = "Days a backup object is kept (audit-log exports: 7 years in prod, 003)."
  type        = number
  default     = 2557
}

variable "noncurrent_version_expire_after_days" {
  description = "Days an overwritten or deleted object version is kept."
  type        = number
  default     = 90
}
