# --- identity and tags ---
variable "subscription_id" {
  description = "Azure subscription (an id, not a secret; or leave null and set ARM_SUBSCRIPTION_ID)."
  type        = string
  default     = null
}

variable "project" {
  description = "Project name (the Project tag)."
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

variable "location" {
  description = "Azure region (004: North Europe)."
  type        = string
  default     = "northeurope"
}

variable "address_space" {
  description = "Address space of the environment's VNet (a /16)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "operator_ip_ranges" {
  description = "Public ranges of the Terraform runner and operators, allowed through the Key Vault firewall."
  type        = list(string)
  default     = []
}

# --- AKS ---
variable "aks_sku_tier" {
  description = "AKS tier: Free (dev) or Standard (uptime SLA)."
  type        = string
  default     = "Standard"
}

variable "aks_private_cluster" {
  description = "Private API server (off: public, restricted to aks_authorized_ip_ranges)."
  type        = bool
  default     = true
}

variable "aks_authorized_ip_ranges" {
  description = "Ranges allowed to a non-private API server."
  type        = list(string)
  default     = []
}

variable "aks_admin_group_object_ids" {
  description = "Entra ID groups given cluster-admin."
  type        = list(string)
  default     = []
}

variable "aks_system_vm_size" {
  description = "VM size of the system node pool."
  type        = string
  default     = "Standard_D2s_v3"
}

variable "aks_apps_vm_size" {
  description = "VM size of the application node pool."
  type        = string
  default     = "Standard_D4s_v3"
}

variable "aks_apps_min_count" {
  description = "Minimum application nodes."
  type        = number
  default     = 3
}

variable "aks_apps_max_count" {
  description = "Maximum application nodes."
  type        = number
  default     = 12
}

variable "k8s_namespace" {
  description = "Namespace the Helm chart is installed into."
  type        = string
  default     = "smart-trader"
}

variable "k8s_service_account" {
  description = "Service account of the application pods (workload identity)."
  type        = string
  default     = "smart-trader"
}

variable "k8s_backup_service_account" {
  description = "Service account of the backup jobs (workload identity)."
  type        = string
  default     = "smart-trader-backup"
}

# --- PostgreSQL Flexible Server ---
variable "postgres_sku_name" {
  description = "PostgreSQL compute SKU (004: GP_Standard_D2s_v3)."
  type        = string
  default     = "GP_Standard_D2s_v3"
}

variable "postgres_storage_mb" {
  description = "PostgreSQL storage in MB (004: 128 GB)."
  type        = number
  default     = 131072
}

variable "postgres_backup_retention_days" {
  description = "Backup retention, 7 to 35 days."
  type        = number
  default     = 35
}

variable "postgres_geo_redundant_backup" {
  description = "Geo-redundant backups (must be on in prod)."
  type        = bool
  default     = true
}

variable "postgres_high_availability" {
  description = "Zone-redundant high availability (must be on in prod)."
  type        = bool
  default     = true
}

# --- Redis ---
variable "redis_sku_name" {
  description = "Azure Cache for Redis SKU: Standard or Premium (prod: Premium for zones and replicas)."
  type        = string
  default     = "Premium"
}

variable "redis_capacity" {
  description = "Size within the family (C0-C6 Standard, P1-P5 Premium)."
  type        = number
  default     = 1
}

# --- storage and registry (globally unique names) ---
variable "storage_account_name" {
  description = "Storage account of the cold data and backups (004: trading<env>storage)."
  type        = string
}

variable "storage_replication_type" {
  description = "Replication of the storage account (prod: GZRS)."
  type        = string
  default     = "GZRS"
}

variable "storage_soft_delete_days" {
  description = "Soft-delete retention of blobs and containers."
  type        = number
  default     = 30
}

variable "backups_expire_after_days" {
  description = "Days a backup blob is kept (audit-log exports: 7 years in prod, 003)."
  type        = number
  default     = 2557
}

variable "registry_name" {
  description = "Container registry (004: acrtrading)."
  type        = string
}

variable "registry_sku" {
  description = "Registry SKU (prod: Premium, private)."
  type        = string
  default     = "Premium"
}

variable "key_vault_name" {
  description = "Key Vault name (3-24 characters)."
  type        = string
}

variable "database_sslmode" {
  description = "sslmode of the DATABASE_URL: require (the image has no Azure CA bundle) or verify-full with database_ssl_root_cert."
  type        = string
  default     = "require"
}

variable "database_ssl_root_cert" {
  description = "Path of the PostgreSQL server's CA bundle mounted in the pods (sslrootcert)."
  type        = string
  default     = ""
}
