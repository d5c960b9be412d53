variable "name" {
  description = "Name of the managed identity."
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

variable "oidc_issuer_url" {
  description = "OIDC issuer of the AKS cluster."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the service account."
  type        = string
}

variable "service_account" {
  description = "Kubernetes service account using the identity."
  type        = string
}

variable "role_assignments" {
  description = "Roles of the identity, by a static name: { role = built-in role name, scope = resource id }."
  type = map(object({
    role  = string
    scope = string
  }))
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
