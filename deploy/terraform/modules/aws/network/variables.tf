variable "name" {
  description = "Name prefix of the network's resources, e.g. smart-trader-prod."
  type        = string
}

variable "region" {
  description = "AWS region (for the S3 gateway endpoint's service name)."
  type        = string
}

variable "availability_zones" {
  description = "The three availability zones, named explicitly (a set that never changes under the network)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3 && length(distinct(var.availability_zones)) == 3
    error_message = "Name three distinct availability zones."
  }
}

variable "cidr" {
  description = "CIDR block of the VPC (a /16)."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the three zones (cheaper, not zone-redundant) instead of one per zone."
  type        = bool
  default     = false
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the flow logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
