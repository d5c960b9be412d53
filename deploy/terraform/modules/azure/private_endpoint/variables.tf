variable "name" {
  description = "Name of the private endpoint."
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

variable "subnet_id" {
  description = "Subnet of the private endpoint."
  type        = string
}

variable "virtual_network_id" {
  description = "VNet the private DNS zone is linked to."
  type        = string
}

variable "resource_id" {
  description = "Resource exposed through the endpoint."
  type        = string
}

variable "subresource_name" {
  description = "Sub-resource (blob, redisCache, registry, ...)."
  type        = string
}

variable "dns_zone_name" {
  description = "Private DNS zone of the service, e.g. privatelink.blob.core.windows.net."
  type        = string
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
