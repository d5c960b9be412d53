variable "name" {
  description = "Key Vault name (globally unique, 3-24 characters), e.g. kv-trading-prod."
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

variable "operator_ip_ranges" {
  description = "Public ranges allowed through the vault's firewall (the Terraform runner's egress address)."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.operator_ip_ranges, "0.0.0.0/0")
    error_message = "The vault must not be open to 0.0.0.0/0."
  }
}

variable "allowed_subnet_ids" {
  description = "Subnets allowed by service endpoint (the AKS nodes)."
  type        = list(string)
}

variable "endpoint_subnet_id" {
  description = "Subnet of the vault's private endpoint."
  type        = string
}

variable "virtual_network_id" {
  description = "VNet of the private DNS zone link."
  type        = string
}

variable "log_analytics_workspace_id" {
  description = "Workspace receiving the vault's audit logs."
  type        = string
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
