variable "name" {
  description = "Name prefix, e.g. trading-prod (the cache is <name>-redis, as in 004)."
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

variable "sku_name" {
  description = "Basic, Standard or Premium (Premium: zones, replicas; production)."
  type        = string
  default     = "Premium"

  validation {
    condition     = contains(["Standard", "Premium"], var.sku_name)
    error_message = "Use Standard (replicated) or Premium: Basic has no replica and no SLA."
  }
}

variable "capacity" {
  description = "Size within the family (C0-C6, P1-P5)."
  type        = number
  default     = 1
}

variable "premium_replicas" {
  description = "Replicas per primary (Premium)."
  type        = number
  default     = 2
}

variable "endpoint_subnet_id" {
  description = "Subnet of the private endpoint."
  type        = string
}

variable "virtual_network_id" {
  description = "VNet of the private DNS zone link."
  type        = string
}

variable "key_vault_id" {
  description = "Key Vault receiving the access key."
  type        = string
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
