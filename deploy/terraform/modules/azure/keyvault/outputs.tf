output "id" {
  description = "Id of the vault."
  value       = azurerm_key_vault.this.id
}

output "writable_id" {
  description = "Id of the vault, known once Terraform's identity may write secrets into it (for other modules' secrets)."
  value       = azurerm_role_assignment.terraform.scope
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
