# PostgreSQL Flexible Server with private access only (a delegated subnet and a private DNS zone, no public
# endpoint), TLS 1.2+ required, Entra ID and password authentication (the password generated, kept in Key Vault),
# automated backups, geo-redundant backups and zone-redundant high availability by variable (both on in prod).

resource "azurerm_private_dns_zone" "this" {
  name                = "${var.name}.private.postgres.database.azure.com"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "this" {
  name                  = "${var.name}-postgres-link"
  resource_group_name   = var.resource_group_name
  private_dns_zone_name = azurerm_private_dns_zone.this.name
  virtual_network_id    = var.virtual_network_id
  registration_enabled  = false
  tags                  = var.tags
}

resource "azurerm_postgresql_flexible_server" "this" {
  name                          = "psql-${var.name}"
  location                      = var.location
  resource_group_name           = var.resource_group_name
  version                       = var.postgres_version
  sku_name                      = var.sku_name
  storage_mb                    = var.storage_mb
  auto_grow_enabled             = true
  zone                          = "1"
  delegated_subnet_id           = var.subnet_id
  private_dns_zone_id           = azurerm_private_dns_zone.this.id
  public_network_access_enabled = false

  administrator_login    = var.administrator_login
  administrator_password = var.administrator_password

  authentication {
    active_directory_auth_enabled = true
    password_auth_enabled         = true
    tenant_id                     = var.tenant_id
  }

  backup_retention_days        = var.backup_retention_days
  geo_redundant_backup_enabled = var.geo_redundant_backup

  dynamic "high_availability" {
    for_each = var.high_availability ? [1] : []
    content {
      mode                      = "ZoneRedundant"
      standby_availability_zone = "2"
    }
  }

  maintenance_window {
    day_of_week  = 0
    start_hour   = 4
    start_minute = 30
  }

  tags       = var.tags
  depends_on = [azurerm_private_dns_zone_virtual_network_link.this]

  lifecycle {
    ignore_changes = [zone, high_availability[0].standby_availability_zone] # Azure swaps them on failover
  }
}

resource "azurerm_postgresql_flexible_server_configuration" "this" {
  for_each = {
    require_secure_transport     = "on"
    ssl_min_protocol_version     = "TLSv1.2"
    log_checkpoints              = "on"
    log_connections              = "on"
    log_disconnections           = "on"
    "connection_throttle.enable" = "on"
    log_min_duration_statement   = "1000"
  }
  server_id = azurerm_postgresql_flexible_server.this.id
  name      = each.key
  value     = each.value
}

resource "azurerm_postgresql_flexible_server_database" "this" {
  name      = var.database_name
  server_id = azurerm_postgresql_flexible_server.this.id
  charset   = "UTF8"
  collation = "en_US.utf8"

  lifecycle {
    prevent_destroy = true
  }
}

# DATABASE_URL for the pods (Key Vault secret database-url; the chart's ExternalSecret maps it to DATABASE_URL).
# sslmode=require: TLS always (require_secure_transport); verify-full needs the server's CA bundle mounted in the pods
# and sslrootcert=<path> (database_ssl_root_cert).
resource "azurerm_key_vault_secret" "database_url" {
  name         = "database-url"
  key_vault_id = var.key_vault_id
  value        = "postgresql://${var.administrator_login}:${urlencode(var.administrator_password)}@${azurerm_postgresql_flexible_server.this.fqdn}:5432/${azurerm_postgresql_flexible_server_database.this.name}?${var.database_ssl_root_cert == "" ? "sslmode=${var.database_sslmode}" : "sslmode=${var.database_sslmode}&sslrootcert=${var.database_ssl_root_cert}"}"
  content_type = "PostgreSQL URL of ${azurerm_postgresql_flexible_server.this.fqdn} (DATABASE_URL)"
  tags         = var.tags
}
