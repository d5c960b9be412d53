output "fqdn" {
  description = "Private host name of the server."
  value       = azurerm_postgresql_flexible_server.this.fqdn
}

output "database_name" {
  description = "Application database."
  value       = azurerm_postgresql_flexible_server_database.this.name
}

output "administrator_login" {
  description = "Administrator login."
  value       = azurerm_postgresql_flexible_server.this.administrator_login
}
