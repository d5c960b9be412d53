# Production (rg-trading-prod, North Europe): zone-redundant HA and geo-redundant backups for PostgreSQL, Premium
# Redis over three zones, GZRS storage, a Premium registry reachable only through its private endpoint.
environment = "prod"
owner       = "platform-team"

address_space = "10.22.0.0/16"

aks_sku_tier       = "Standard"
aks_apps_vm_size   = "Standard_D4s_v3"
aks_apps_min_count = 3
aks_apps_max_count = 12

postgres_sku_name              = "GP_Standard_D4s_v3"
postgres_storage_mb            = 131072
postgres_backup_retention_days = 35
postgres_geo_redundant_backup  = true
postgres_high_availability     = true

redis_sku_name = "Premium"
redis_capacity = 1

storage_account_name      = "tradingprodstorage"
storage_replication_type  = "GZRS"
storage_soft_delete_days  = 30
backups_expire_after_days = 2557

registry_name  = "acrtradingprod"
registry_sku   = "Premium"
key_vault_name = "kv-trading-prod"
