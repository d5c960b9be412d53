# Secrets Manager secrets of the platform, encrypted with a customer-managed KMS key, their values generated here
# (random_password: nothing is written in the repository). The chart's ExternalSecret reads <prefix>/app whole
# (dataFrom.extract) and its migration hook reads the DATABASE_URL property of it, so that secret holds exactly the
# four keys the application needs:
#   <prefix>/app      JSON {"SECRET_KEY", "METRICS_TOKEN", "DATABASE_URL", "REDIS_URL"}
#   <prefix>/database JSON {"engine", "host", "port", "dbname", "username", "password"} (RDS secret format; backups)
#   <prefix>/redis    JSON {"auth_token"}: the ElastiCache AUTH token
# The database password is generated here, not by RDS (manage_master_user_password would rotate it every 7 days
# behind the DATABASE_URL's back). Rotate by re-applying: terraform apply -replace=module.secrets.random_password.database

locals {
  # sslmode=require: TLS always (rds.force_ssl=1 refuses anything else); verify-full needs the RDS CA bundle
  # mounted in the pods and sslrootcert=<path> added here (see database_sslmode / database_ssl_root_cert)
  database_query = var.database_ssl_root_cert == "" ? "sslmode=${var.database_sslmode}" : "sslmode=${var.database_sslmode}&sslrootcert=${var.database_ssl_root_cert}"
  database_url   = "postgresql://${var.database_username}:${random_password.database.result}@${var.database_host}:${var.database_port}/${var.database_name}?${local.database_query}"
  redis_url      = "rediss://:${random_password.redis_auth_token.result}@${var.redis_host}:${var.redis_port}/0"
}

resource "random_password" "secret_key" {
  length  = 64
  special = false
}

resource "random_password" "metrics_token" {
  length  = 48
  special = false
}

resource "random_password" "database" {
  length  = 48
  special = false # RDS refuses / @ " and space; alphanumerics need no escaping in the URL either
}

resource "random_password" "redis_auth_token" {
  length  = 64
  special = false # ElastiCache accepts printable ASCII without @, " and /: alphanumerics are always safe
}

resource "aws_secretsmanager_secret" "app" {
  name                    = "${var.prefix}/app"
  description             = "Smart Trader application secrets (SECRET_KEY, METRICS_TOKEN, DATABASE_URL, REDIS_URL)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "app" {
  secret_id = aws_secretsmanager_secret.app.id
  secret_string = jsonencode({
    SECRET_KEY    = random_password.secret_key.result
    METRICS_TOKEN = random_password.metrics_token.result
    DATABASE_URL  = local.database_url
    REDIS_URL     = local.redis_url
  })
}

resource "aws_secretsmanager_secret" "database" {
  name                    = "${var.prefix}/database"
  description             = "Smart Trader PostgreSQL credentials (RDS secret format: engine, host, port, dbname, username, password)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "database" {
  secret_id = aws_secretsmanager_secret.database.id
  secret_string = jsonencode({
    engine   = "postgres"
    host     = var.database_host
    port     = var.database_port
    dbname   = var.database_name
    username = var.database_username
    password = random_password.database.result
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
