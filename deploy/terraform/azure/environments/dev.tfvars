# Development (rg-trading-dev, North Europe): Free AKS tier, Standard Redis and registry, no standby or geo backups.
environment = "dev"
owner       = "platform-team"

address_space = "10.20.0.0/16"

aks_sku_tier       = "Free"
aks_apps_vm_size   = "Standard_D2s_v3"
aks_apps_min_count = 1
aks_apps_max_count = 3

postgres_sku_name              = "B_Standard_B2s"
postgres_storage_mb            = 32768
postgres_backup_retention_days = 7
postgres_geo_redundant_backup  = false
postgres_high_availability     = false

redis_sku_name = "Standard"
redis_capacity = 1

storage_account_name      = "tradingdevstorage"
storage_replication_type  = "ZRS"
storage_soft_delete_days  = 7
backups_expire_after_days = 180

registry_name  = "acrtradingdev"
registry_sku   = "Standard"
key_vault_name = "kv-trading-dev"
