variable "prefix" {
  description = "Name prefix of the secrets, e.g. smart-trader/prod."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key of the secrets."
  type        = string
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored (7 to 30)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}
