variable "name" {
  description = "Name suffix, e.g. trading-prod (the cluster is aks-<name>, as in 004)."
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

variable "kubernetes_version" {
  description = "Kubernetes version (null: the region's default)."
  type        = string
  default     = null
}

variable "sku_tier" {
  description = "Free, Standard (uptime SLA) or Premium."
  type        = string
  default     = "Standard"
}

variable "private_cluster" {
  description = "Private API server (reached from the VNet, or with az aks command invoke)."
  type        = bool
  default     = true
}

variable "authorized_ip_ranges" {
  description = "When the cluster is not private: the only ranges allowed to the API server (never 0.0.0.0/0)."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.authorized_ip_ranges, "0.0.0.0/0")
    error_message = "The AKS API must not be open to 0.0.0.0/0."
  }
}

variable "admin_group_object_ids" {
  description = "Entra ID groups given cluster-admin."
  type        = list(string)
  default     = []
}

variable "subnet_id" {
  description = "Subnet of the nodes."
  type        = string
}

variable "zones" {
  description = "Availability zones of the node pools."
  type        = list(string)
  default     = ["1", "2", "3"]
}

variable "system_vm_size" {
  description = "VM size of the system pool."
  type        = string
}

variable "system_min_count" {
  description = "Minimum nodes of the system pool."
  type        = number
}

variable "system_max_count" {
  description = "Maximum nodes of the system pool."
  type        = number
}

variable "apps_vm_size" {
  description = "VM size of the application pool."
  type        = string
}

variable "apps_min_count" {
  description = "Minimum nodes of the application pool."
  type        = number
}

variable "apps_max_count" {
  description = "Maximum nodes of the application pool."
  type        = number
}

variable "container_registry_id" {
  description = "Registry the kubelet pulls from (AcrPull)."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
