output "client_id" {
  description = "Client id for the service account's azure.workload.identity/client-id annotation."
  value       = azurerm_user_assigned_identity.this.client_id
}
