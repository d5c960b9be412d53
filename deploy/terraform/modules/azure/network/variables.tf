variable "name" {
  description = "Name suffix, e.g. trading-prod."
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

variable "address_space" {
  description = "Address space of the VNet (a /16)."
  type        = string
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
