# Secrets Manager secrets of the platform, encrypted with a customer-managed KMS key, their values generated here
# (random_password: nothing is written in the repository). The database master password is not here: RDS generates,
# stores and rotates it itself (manage_master_user_password).
#   <prefix>/app   JSON {"SECRET_KEY", "METRICS_TOKEN"} for the application's environment
#   <prefix>/redis JSON {"auth_token"}: the ElastiCache AUTH token

resource "random_password" "secret_key" {
  length  = 64
  special = false
}

resource "random_password" "metrics_token" {
  length  = 48
  special = false
}

resource "random_password" "redis_auth_token" {
  length  = 64
  special = false # ElastiCache accepts printable ASCII without @, " and /: alphanumerics are always safe
}

resource "aws_secretsmanager_secret" "app" {
  name                    = "${var.prefix}/app"
  description             = "Smart Trader application secrets (SECRET_KEY, METRICS_TOKEN)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "app" {
  secret_id = aws_secretsmanager_secret.app.id
  secret_string = jsonencode({
    SECRET_KEY    = random_password.secret_key.result
    METRICS_TOKEN = random_password.metrics_token.result
  })
}

resource "aws_secretsmanager_secret" "redis" {
  name                    = "${var.prefix}/redis"
  description             = "AUTH token of the Smart Trader ElastiCache replication group"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "redis" {
  secret_id     = aws_secretsmanager_secret.redis.id
  secret_string = jsonencode({ auth_token = random_password.redis_auth_token.result })
}
