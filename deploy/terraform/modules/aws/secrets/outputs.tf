output "app_secret_arn" {
  description = "ARN of the application secret (SECRET_KEY, METRICS_TOKEN)."
  value       = aws_secretsmanager_secret.app.arn
}

output "redis_secret_arn" {
  description = "ARN of the Redis AUTH token secret."
  value       = aws_secretsmanager_secret.redis.arn
}

output "redis_auth_token" {
  description = "The Redis AUTH token, as stored in the secret (for the replication group)."
  value       = jsondecode(aws_secretsmanager_secret_version.redis.secret_string)["auth_token"]
  sensitive   = true
}
