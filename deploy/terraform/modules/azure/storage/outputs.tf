output "id" {
  description = "Id of the storage account."
  value       = azurerm_storage_account.this.id
}

output "name" {
  description = "Name of the storage account."
  value       = azurerm_storage_account.this.name
}

output "blob_endpoint" {
  description = "Blob endpoint (containers parquet and backups)."
  value       = azurerm_storage_account.this.primary_blob_endpoint
}
