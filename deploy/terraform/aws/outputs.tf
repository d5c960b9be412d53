output "eks_cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "ecr_repository_url" {
  description = "Where CI pushes the image."
  value       = module.registry.repository_url
}

output "database_host" {
  description = "RDS PostgreSQL host (DATABASE_URL: postgresql+psycopg://USER:PASSWORD@HOST:5432/smart_trader?sslmode=verify-full)."
  value       = module.rds.address
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret (kept and rotated by RDS) with the master user's username and password."
  value       = module.rds.master_user_secret_arn
}

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint (REDIS_URL: rediss://:AUTH_TOKEN@HOST:6379/0)."
  value       = module.redis.primary_endpoint
}

output "app_secret_arn" {
  description = "Secrets Manager secret with SECRET_KEY and METRICS_TOKEN."
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
