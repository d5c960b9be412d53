# Disaster recovery: the RDS automated backups (snapshots + transaction logs) copied to var.dr_region, restorable to
# a point in time there when the primary region is lost (on in prod; dev and staging turn it off). The copies are
# encrypted with a customer-managed key of the DR region (KMS keys are regional), rotated yearly.
# (Written here rather than as a module: an extra module call makes checkov lose the Azure root's private-endpoint
# connections, a checkov graph defect.)

resource "aws_kms_key" "rds_dr" {
  count                   = var.rds_backup_replication ? 1 : 0
  provider                = aws.dr
  description             = "${local.name}: cross-region copy of the RDS automated backups"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministersKeyThroughIam"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
  tags = merge(local.tags, { Name = "${local.name}-rds-dr" })
}

resource "aws_kms_alias" "rds_dr" {
  count         = var.rds_backup_replication ? 1 : 0
  provider      = aws.dr
  name          = "alias/${local.name}-rds-dr"
  target_key_id = aws_kms_key.rds_dr[0].key_id
}

resource "aws_db_instance_automated_backups_replication" "dr" {
  count                  = var.rds_backup_replication ? 1 : 0
  provider               = aws.dr
  source_db_instance_arn = module.rds.arn
  kms_key_id             = aws_kms_key.rds_dr[0].arn
  retention_period       = var.rds_backup_retention_days
}
