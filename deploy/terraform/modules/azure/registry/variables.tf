variable "name" {
  description = "Registry name (globally unique, letters and digits; 004: acrtrading)."
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

variable "sku" {
  description = "Basic, Standard or Premium (private access, zones, retention: production)."
  type        = string
  default     = "Premium"
}

variable "public_network_access" {
  description = "Premium only: allow the public endpoint (off: pushes come through the private endpoint)."
  type        = bool
  default     = false
}

variable "endpoint_subnet_id" {
  description = "Subnet of the private endpoint (Premium)."
  type        = string
}

variable "virtual_network_id" {
  description = "VNet of the private DNS zone link."
  type        = string
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
