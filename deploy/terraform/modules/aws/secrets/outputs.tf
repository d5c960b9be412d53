output "app_secret_name" {
  description = "Name of the application secret (the chart's secrets.externalSecret.remoteKey)."
  value       = aws_secretsmanager_secret.app.name
}

output "app_secret_arn" {
  description = "ARN of the application secret (SECRET_KEY, METRICS_TOKEN, DATABASE_URL, REDIS_URL)."
  value       = aws_secretsmanager_secret.app.arn
}

output "database_secret_arn" {
  description = "ARN of the database credentials secret (engine, host, port, dbname, username, password)."
  value       = aws_secretsmanager_secret.database.arn
}

output "redis_secret_arn" {
  description = "ARN of the Redis AUTH token secret."
  value       = aws_secretsmanager_secret.redis.arn
}

output "database_password" {
  description = "The generated database master password (for the RDS instance)."
  value       = random_password.database.result
  sensitive   = true
}

output "redis_auth_token" {
  description = "The Redis AUTH token, as stored in the secret (for the replication group)."
  value       = jsondecode(aws_secretsmanager_secret_version.redis.secret_string)["auth_token"]
  sensitive   = true
}
