output "id" {
  description = "Id of the vault."
  value       = azurerm_key_vault.this.id
}

output "uri" {
  description = "URI of the vault."
  value       = azurerm_key_vault.this.vault_uri
}

output "postgres_admin_password" {
  description = "The generated PostgreSQL administrator password (as stored in the vault)."
  value       = azurerm_key_vault_secret.this["postgres-admin-password"].value
  sensitive   = true
}
