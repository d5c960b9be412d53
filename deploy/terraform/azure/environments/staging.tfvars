# Staging: production-shaped (zone-redundant database, Premium Redis and registry) on smaller sizes.
environment = "staging"
owner       = "platform-team"

address_space = "10.21.0.0/16"

aks_sku_tier       = "Standard"
aks_apps_vm_size   = "Standard_D2s_v3"
aks_apps_min_count = 2
aks_apps_max_count = 6

postgres_sku_name              = "GP_Standard_D2s_v3"
postgres_storage_mb            = 65536
postgres_backup_retention_days = 14
postgres_geo_redundant_backup  = false
postgres_high_availability     = true

redis_sku_name = "Premium"
redis_capacity = 1

storage_account_name      = "tradingstagingstorage"
storage_replication_type  = "ZRS"
storage_soft_delete_days  = 14
backups_expire_after_days = 365

registry_name  = "acrtradingstaging"
registry_sku   = "Premium"
key_vault_name = "kv-trading-staging"
