# Storage account for Parquet cold data and backups: no public blob access and no public network access (a private
# endpoint for blobs; the AKS subnet by service endpoint), Entra ID only (shared keys off), HTTPS with TLS 1.2,
# infrastructure (double) encryption, blob versioning, change feed, soft delete of blobs and containers,
# point-in-time restore, and a lifecycle policy (cooler tiers, old versions deleted, backups expired).

resource "azurerm_storage_account" "this" {
  name                              = var.name
  location                          = var.location
  resource_group_name               = var.resource_group_name
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.replication_type
  access_tier                       = "Hot"
  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  public_network_access_enabled     = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false

  identity {
    type = "SystemAssigned"
  }

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices", "Logging", "Metrics"]
    virtual_network_subnet_ids = var.allowed_subnet_ids
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    versioning_enabled            = true
    change_feed_enabled           = true
    change_feed_retention_in_days = var.soft_delete_days + 7
    last_access_time_enabled      = true

    delete_retention_policy {
      days = var.soft_delete_days
    }
    container_delete_retention_policy {
      days = var.soft_delete_days
    }
    restore_policy {
      days = var.soft_delete_days - 1
    }
  }

  tags = var.tags
}

resource "azurerm_storage_container" "this" {
  for_each              = toset(["parquet", "backups"])
  name                  = each.key
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

resource "azurerm_storage_management_policy" "this" {
  storage_account_id = azurerm_storage_account.this.id

  rule {
    name    = "parquet-tiering"
    enabled = true
    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["parquet/"]
    }
    actions {
      base_blob {
        tier_to_cool_after_days_since_modification_greater_than = 30
        tier_to_cold_after_days_since_modification_greater_than = 180 # still readable at once by DuckDB/Polars
      }
      version {
        delete_after_days_since_creation = var.noncurrent_version_expire_after_days
      }
    }
  }

  rule {
    name    = "backups-tiering-and-expiry"
    enabled = true
    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["backups/"]
    }
    actions {
      base_blob {
        tier_to_cool_after_days_since_modification_greater_than    = 30
        tier_to_archive_after_days_since_modification_greater_than = 90
        delete_after_days_since_modification_greater_than          = var.backups_expire_after_days
      }
      version {
        delete_after_days_since_creation = var.noncurrent_version_expire_after_days
      }
    }
  }
}

module "endpoint" {
  source              = "../private_endpoint"
  name                = "pe-${var.name}-blob"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.endpoint_subnet_id
  virtual_network_id  = var.virtual_network_id
  resource_id         = azurerm_storage_account.this.id
  subresource_name    = "blob"
  dns_zone_name       = "privatelink.blob.core.windows.net"
  tags                = var.tags
}

# Blob reads, writes and deletes are logged to Log Analytics (resource logs: the classic Storage Analytics logging
# and storage insights need the shared keys, which are disabled)
resource "azurerm_monitor_diagnostic_setting" "blob" {
  name                       = "blob-to-log-analytics"
  target_resource_id         = "${azurerm_storage_account.this.id}/blobServices/default"
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}
