variable "name" {
  description = "Repository name, e.g. smart-trader-prod."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the repository."
  type        = string
}

variable "untagged_expiry_days" {
  description = "Days after which untagged images expire."
  type        = number
  default     = 14
}

variable "keep_tagged_images" {
  description = "Tagged images kept (older ones expire; rollbacks reach back this far)."
  type        = number
  default     = 50
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
