# Smart Trader on AWS, one environment per state: VPC over three zones, EKS, RDS PostgreSQL, ElastiCache Redis,
# S3 (Parquet cold data, backups), ECR, Secrets Manager, KMS.
#   terraform init -backend-config=environments/<env>.s3.tfbackend
#   terraform plan -var-file=environments/<env>.tfvars

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name = "${var.project}-${var.environment}"
  tags = merge(var.extra_tags, {
    Project     = var.project
    Environment = var.environment
    Owner       = var.owner
    ManagedBy   = "terraform"
  })

  autoscaling_role = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

  # one customer-managed key per purpose, all rotated yearly
  kms_keys = {
    eks     = { description = "EKS secrets envelope encryption", logs = false, users = [] }
    ebs     = { description = "EKS node volumes", logs = false, users = [local.autoscaling_role] }
    rds     = { description = "RDS storage, Performance Insights, master secret", logs = false, users = [] }
    redis   = { description = "ElastiCache encryption at rest", logs = false, users = [] }
    s3      = { description = "S3 cold data and backups", logs = false, users = [] }
    ecr     = { description = "ECR images", logs = false, users = [] }
    secrets = { description = "Secrets Manager secrets", logs = false, users = [] }
    logs    = { description = "CloudWatch log groups", logs = true, users = [] }
  }
}

module "kms" {
  source                = "../modules/aws/kms"
  for_each              = local.kms_keys
  name                  = "${local.name}-${each.key}"
  description           = "${local.name}: ${each.value.description}"
  allow_cloudwatch_logs = each.value.logs
  user_principal_arns   = each.value.users
  tags                  = local.tags
}

module "network" {
  source             = "../modules/aws/network"
  name               = local.name
  region             = var.region
  availability_zones = var.availability_zones
  cidr               = var.vpc_cidr
  single_nat_gateway = var.single_nat_gateway
  logs_kms_key_arn   = module.kms["logs"].key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

module "eks" {
  source                 = "../modules/aws/eks"
  name                   = local.name
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = var.eks_endpoint_public_access
  public_access_cidrs    = var.eks_public_access_cidrs
  admin_role_arns        = var.eks_admin_role_arns
  secrets_kms_key_arn    = module.kms["eks"].key_arn
  ebs_kms_key_arn        = module.kms["ebs"].key_arn
  logs_kms_key_arn       = module.kms["logs"].key_arn
  log_retention_days     = var.log_retention_days
  node_groups            = var.eks_node_groups
  tags                   = local.tags
}

# <project>/<env>/app holds SECRET_KEY, METRICS_TOKEN, DATABASE_URL and REDIS_URL: the chart's
# secrets.externalSecret.remoteKey (output app_secret_name)
module "secrets" {
  source                 = "../modules/aws/secrets"
  prefix                 = "${var.project}/${var.environment}"
  kms_key_arn            = module.kms["secrets"].key_arn
  database_host          = module.rds.address
  database_port          = module.rds.port
  database_name          = module.rds.database_name
  database_username      = module.rds.master_username
  database_sslmode       = var.database_sslmode
  database_ssl_root_cert = var.database_ssl_root_cert
  redis_host             = module.redis.primary_endpoint
  redis_port             = module.redis.port
  tags                   = local.tags
}

module "rds" {
  source                   = "../modules/aws/rds"
  identifier               = local.name
  instance_class           = var.rds_instance_class
  allocated_storage_gb     = var.rds_allocated_storage_gb
  max_allocated_storage_gb = var.rds_max_allocated_storage_gb
  multi_az                 = var.rds_multi_az
  deletion_protection      = var.rds_deletion_protection
  backup_retention_days    = var.rds_backup_retention_days
  master_password          = module.secrets.database_password
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.database_subnet_ids
  allowed_security_groups  = { "eks-nodes" = module.eks.node_security_group_id }
  kms_key_arn              = module.kms["rds"].key_arn
  logs_kms_key_arn         = module.kms["logs"].key_arn
  log_retention_days       = var.log_retention_days
  tags                     = local.tags
}

module "redis" {
  source                  = "../modules/aws/redis"
  name                    = local.name
  node_type               = var.redis_node_type
  num_cache_clusters      = var.redis_num_cache_clusters
  snapshot_retention_days = var.redis_snapshot_retention_days
  auth_token              = module.secrets.redis_auth_token
  vpc_id                  = module.network.vpc_id
  subnet_ids              = module.network.database_subnet_ids
  allowed_security_groups = { "eks-nodes" = module.eks.node_security_group_id }
  kms_key_arn             = module.kms["redis"].key_arn
  logs_kms_key_arn        = module.kms["logs"].key_arn
  log_retention_days      = var.log_retention_days
  tags                    = local.tags
}

module "storage" {
  source      = "../modules/aws/storage"
  name_prefix = local.name
  kms_key_arn = module.kms["s3"].key_arn
  buckets = {
    "cold-data" = {
      purpose                      = "parquet-cold-data"
      infrequent_access_after_days = 30
      glacier_after_days           = var.cold_data_glacier_after_days
      glacier_storage_class        = "GLACIER_IR" # still readable at once by DuckDB/Polars
      noncurrent_expire_after_days = var.noncurrent_version_expire_after_days
    }
    "backups" = {
      purpose                      = "backups"
      infrequent_access_after_days = 30
      glacier_after_days           = 90
      glacier_storage_class        = "GLACIER"
      expire_after_days            = var.backups_expire_after_days
      noncurrent_expire_after_days = var.noncurrent_version_expire_after_days
    }
  }
  tags = local.tags
}

module "registry" {
  source      = "../modules/aws/registry"
  name        = local.name
  kms_key_arn = module.kms["ecr"].key_arn
  tags        = local.tags
}

module "app_identity" {
  source            = "../modules/aws/workload_identity"
  name              = "${local.name}-app"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  namespace         = var.k8s_namespace
  service_account   = var.k8s_service_account
  s3_bucket_arns    = [module.storage.bucket_arns["cold-data"]]
  secret_arns       = [module.secrets.app_secret_arn]
  kms_key_arns      = [module.kms["s3"].key_arn, module.kms["secrets"].key_arn]
  tags              = local.tags
}

module "backup_identity" {
  source            = "../modules/aws/workload_identity"
  name              = "${local.name}-backup"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  namespace         = var.k8s_namespace
  service_account   = var.k8s_backup_service_account
  s3_bucket_arns    = [module.storage.bucket_arns["backups"], module.storage.bucket_arns["cold-data"]]
  secret_arns       = [module.secrets.database_secret_arn]
  kms_key_arns      = [module.kms["s3"].key_arn, module.kms["secrets"].key_arn]
  tags              = local.tags
}
