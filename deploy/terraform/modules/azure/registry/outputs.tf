output "id" {
  description = "Id of the registry."
  value       = azurerm_container_registry.this.id
}

output "login_server" {
  description = "Login server, e.g. acrtrading.azurecr.io."
  value       = azurerm_container_registry.this.login_server
}
