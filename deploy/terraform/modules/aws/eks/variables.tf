variable "name" {
  description = "Cluster name, e.g. smart-trader-prod."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cluster and its nodes (three zones)."
  type        = list(string)
}

variable "endpoint_public_access" {
  description = "Expose the API server endpoint publicly (then only to public_access_cidrs). Off: private only."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to the public endpoint when it is enabled; never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "The EKS API must not be open to 0.0.0.0/0: list the operators' CIDRs."
  }
}

variable "secrets_kms_key_arn" {
  description = "KMS key for the envelope encryption of Kubernetes secrets."
  type        = string
}

variable "ebs_kms_key_arn" {
  description = "KMS key of the nodes' root volumes."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the control-plane log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the control-plane logs."
  type        = number
  default     = 365
}

variable "admin_role_arns" {
  description = "IAM roles granted cluster-admin through EKS access entries (besides the creator)."
  type        = list(string)
  default     = []
}

variable "node_disk_size_gb" {
  description = "Root volume size of each node."
  type        = number
  default     = 50
}

variable "node_groups" {
  description = "Managed node groups by name."
  type = map(object({
    instance_types = list(string)
    capacity_type  = string
    min_size       = number
    max_size       = number
    desired_size   = number
  }))
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
