variable "name" {
  description = "Alias of the key (without the alias/ prefix), e.g. smart-trader-prod-rds."
  type        = string
}

variable "description" {
  description = "What the key encrypts."
  type        = string
}

variable "allow_cloudwatch_logs" {
  description = "Let CloudWatch Logs of this account and region encrypt log groups with the key."
  type        = bool
  default     = false
}

variable "rotation_period_in_days" {
  description = "Automatic rotation period (90 to 2560 days)."
  type        = number
  default     = 365
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled deletion takes effect (7 to 30 days)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Common tags (Project, Environment, Owner, ManagedBy)."
  type        = map(string)
}

variable "user_principal_arns" {
  description = "IAM principals (e.g. the EC2 Auto Scaling service-linked role) allowed to use the key by key policy."
  type        = list(string)
  default     = []
}
