# Smart Trader on Azure, the 004 layout: one resource group per environment (rg-trading-<env>, North Europe) holding
# the VNet, AKS (aks-trading-<env>), PostgreSQL Flexible Server, Azure Cache for Redis (trading-<env>-redis), the
# storage account of the Parquet cold data and backups, the container registry and the Key Vault.
#   terraform init -backend-config=environments/<env>.azurerm.tfbackend
#   terraform plan -var-file=environments/<env>.tfvars

data "azurerm_client_config" "current" {}

locals {
  name = "trading-${var.environment}"
  tags = merge(var.extra_tags, {
    Project     = var.project
    Environment = var.environment
    Owner       = var.owner
    ManagedBy   = "terraform"
  })
}

resource "azurerm_resource_group" "this" {
  name     = "rg-trading-${var.environment}"
  location = var.location
  tags     = local.tags
}

module "network" {
  source              = "../modules/azure/network"
  name                = local.name
  location            = var.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = var.address_space
  tags                = local.tags
}

module "keyvault" {
  source              = "../modules/azure/keyvault"
  name                = var.key_vault_name
  location            = var.location
  resource_group_name = azurerm_resource_group.this.name
  operator_ip_ranges  = var.operator_ip_ranges
  allowed_subnet_ids  = [module.network.aks_subnet_id]
  endpoint_subnet_id  = module.network.endpoints_subnet_id
  virtual_network_id  = module.network.vnet_id

  log_analytics_workspace_id = module.aks.log_analytics_workspace_id
  tags                       = local.tags
}

module "registry" {
  source                = "../modules/azure/registry"
  name                  = var.registry_name
  location              = var.location
  resource_group_name   = azurerm_resource_group.this.name
  sku                   = var.registry_sku
  public_network_access = false
  endpoint_subnet_id    = module.network.endpoints_subnet_id
  virtual_network_id    = module.network.vnet_id
  tags                  = local.tags
}

module "aks" {
  source                 = "../modules/azure/aks"
  name                   = local.name
  location               = var.location
  resource_group_name    = azurerm_resource_group.this.name
  sku_tier               = var.aks_sku_tier
  private_cluster        = var.aks_private_cluster
  authorized_ip_ranges   = var.aks_authorized_ip_ranges
  admin_group_object_ids = var.aks_admin_group_object_ids
  subnet_id              = module.network.aks_subnet_id
  system_vm_size         = var.aks_system_vm_size
  system_min_count       = 2
  system_max_count       = 3
  apps_vm_size           = var.aks_apps_vm_size
  apps_min_count         = var.aks_apps_min_count
  apps_max_count         = var.aks_apps_max_count
  container_registry_id  = module.registry.id
  tags                   = local.tags
}

module "postgres" {
  source                 = "../modules/azure/postgres"
  name                   = local.name
  location               = var.location
  resource_group_name    = azurerm_resource_group.this.name
  sku_name               = var.postgres_sku_name
  storage_mb             = var.postgres_storage_mb
  administrator_password = module.keyvault.postgres_admin_password
  key_vault_id           = module.keyvault.writable_id
  database_sslmode       = var.database_sslmode
  database_ssl_root_cert = var.database_ssl_root_cert
  tenant_id              = data.azurerm_client_config.current.tenant_id
  backup_retention_days  = var.postgres_backup_retention_days
  geo_redundant_backup   = var.postgres_geo_redundant_backup
  high_availability      = var.postgres_high_availability
  subnet_id              = module.network.postgres_subnet_id
  virtual_network_id     = module.network.vnet_id
  tags                   = local.tags
}

module "redis" {
  source              = "../modules/azure/redis"
  name                = local.name
  location            = var.location
  resource_group_name = azurerm_resource_group.this.name
  sku_name            = var.redis_sku_name
  capacity            = var.redis_capacity
  endpoint_subnet_id  = module.network.endpoints_subnet_id
  virtual_network_id  = module.network.vnet_id
  key_vault_id        = module.keyvault.writable_id
  tags                = local.tags
}

module "storage" {
  source                    = "../modules/azure/storage"
  name                      = var.storage_account_name
  location                  = var.location
  resource_group_name       = azurerm_resource_group.this.name
  replication_type          = var.storage_replication_type
  soft_delete_days          = var.storage_soft_delete_days
  backups_expire_after_days = var.backups_expire_after_days
  allowed_subnet_ids        = [module.network.aks_subnet_id]
  endpoint_subnet_id        = module.network.endpoints_subnet_id
  virtual_network_id        = module.network.vnet_id

  log_analytics_workspace_id = module.aks.log_analytics_workspace_id
  tags                       = local.tags
}

module "app_identity" {
  source              = "../modules/azure/workload_identity"
  name                = "id-${local.name}-app"
  location            = var.location
  resource_group_name = azurerm_resource_group.this.name
  oidc_issuer_url     = module.aks.oidc_issuer_url
  namespace           = var.k8s_namespace
  service_account     = var.k8s_service_account
  role_assignments = {
    secrets   = { role = "Key Vault Secrets User", scope = module.keyvault.id }
    cold-data = { role = "Storage Blob Data Contributor", scope = "${module.storage.id}/blobServices/default/containers/parquet" }
  }
  tags = local.tags
}

module "backup_identity" {
  source              = "../modules/azure/workload_identity"
  name                = "id-${local.name}-backup"
  location            = var.location
  resource_group_name = azurerm_resource_group.this.name
  oidc_issuer_url     = module.aks.oidc_issuer_url
  namespace           = var.k8s_namespace
  service_account     = var.k8s_backup_service_account
  role_assignments = {
    secrets   = { role = "Key Vault Secrets User", scope = module.keyvault.id }
    backups   = { role = "Storage Blob Data Contributor", scope = "${module.storage.id}/blobServices/default/containers/backups" }
    cold-data = { role = "Storage Blob Data Reader", scope = "${module.storage.id}/blobServices/default/containers/parquet" }
  }
  tags = local.tags
}
