output "eks_cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "ecr_repository_url" {
  description = "Where CI pushes the image."
  value       = module.registry.repository_url
}

output "database_host" {
  description = "RDS PostgreSQL host (the DATABASE_URL in the app secret is built from it)."
  value       = module.rds.address
}

output "database_secret_arn" {
  description = "Secrets Manager secret with the database credentials (engine, host, port, dbname, username, password)."
  value       = module.secrets.database_secret_arn
}

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint (the REDIS_URL in the app secret is built from it)."
  value       = module.redis.primary_endpoint
}

output "app_secret_name" {
  description = "Secrets Manager secret with SECRET_KEY, METRICS_TOKEN, DATABASE_URL and REDIS_URL: the chart's secrets.externalSecret.remoteKey."
  value       = module.secrets.app_secret_name
}

output "app_secret_arn" {
  description = "ARN of the application secret (app_secret_name)."
  value       = module.secrets.app_secret_arn
}

output "redis_secret_arn" {
  description = "Secrets Manager secret with the Redis AUTH token."
  value       = module.secrets.redis_secret_arn
}

output "bucket_names" {
  description = "S3 buckets: cold-data (Parquet) and backups."
  value       = module.storage.bucket_names
}

output "app_role_arn" {
  description = "IRSA role of the application's service account."
  value       = module.app_identity.role_arn
}

output "backup_role_arn" {
  description = "IRSA role of the backup jobs' service account."
  value       = module.backup_identity.role_arn
}

output "rds_backup_replication_arn" {
  description = "Replicated automated backups in the DR region (null when rds_backup_replication is off)."
  value       = var.rds_backup_replication ? aws_db_instance_automated_backups_replication.dr[0].id : null
}
