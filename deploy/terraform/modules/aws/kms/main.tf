# One customer-managed KMS key with yearly rotation, an alias and a key policy: the account administers the key
# through IAM (services such as RDS, S3, EKS, ECR and Secrets Manager use it with the caller's IAM permissions), and
# CloudWatch Logs may use it for the log groups of this account when allow_cloudwatch_logs is set, and the listed
# principals (service-linked roles that IAM policies cannot reach, e.g. EC2 Auto Scaling for encrypted node volumes)
# may use it.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  account_statement = {
    Sid       = "AccountAdministersKeyThroughIam"
    Effect    = "Allow"
    Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
    Action    = "kms:*"
    Resource  = "*"
  }
  logs_statement = {
    Sid       = "CloudWatchLogsOfThisAccount"
    Effect    = "Allow"
    Principal = { Service = "logs.${local.region}.amazonaws.com" }
    Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    Resource  = "*"
    Condition = {
      ArnLike = {
        "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
      }
    }
  }
  users_statement = {
    Sid       = "ServiceLinkedRolesUseKey"
    Effect    = "Allow"
    Principal = { AWS = var.user_principal_arns }
    Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"]
    Resource  = "*"
  }
  statements = concat(
    [local.account_statement],
    var.allow_cloudwatch_logs ? [local.logs_statement] : [],
    length(var.user_principal_arns) > 0 ? [local.users_statement] : [],
  )
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  rotation_period_in_days = var.rotation_period_in_days
  deletion_window_in_days = var.deletion_window_in_days
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.statements
  })
  tags = merge(var.tags, { Name = var.name })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}
