output "resource_group" {
  description = "Resource group of the environment."
  value       = azurerm_resource_group.this.name
}

output "aks_cluster_name" {
  description = "AKS cluster (az aks get-credentials -g <rg> -n ...)."
  value       = module.aks.cluster_name
}

output "registry_login_server" {
  description = "Where CI pushes the image."
  value       = module.registry.login_server
}

output "postgres_fqdn" {
  description = "PostgreSQL host (the vault's database-url secret is built from it)."
  value       = module.postgres.fqdn
}

output "redis_hostname" {
  description = "Redis host (the vault's redis-url secret, rediss:// on 6380, is built from it)."
  value       = module.redis.hostname
}

output "key_vault_uri" {
  description = "Key Vault with secret-key, metrics-token, database-url, redis-url (the chart's four keys), postgres-admin-password and redis-access-key."
  value       = module.keyvault.uri
}

output "storage_blob_endpoint" {
  description = "Blob endpoint of the cold data (container parquet) and backups (container backups)."
  value       = module.storage.blob_endpoint
}

output "app_identity_client_id" {
  description = "Workload identity of the application's service account."
  value       = module.app_identity.client_id
}

output "backup_identity_client_id" {
  description = "Workload identity of the backup jobs' service account."
  value       = module.backup_identity.client_id
}
