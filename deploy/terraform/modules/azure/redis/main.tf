# Azure Cache for Redis: TLS only (non-TLS port disabled, TLS 1.2 minimum), no public network access (a private
# endpoint in the VNet), Premium by default (zones, replicas); its access key is written to Key Vault for the pods.

locals {
  premium = var.sku_name == "Premium"
}

resource "azurerm_redis_cache" "this" {
  name                          = "${var.name}-redis"
  location                      = var.location
  resource_group_name           = var.resource_group_name
  sku_name                      = var.sku_name
  family                        = local.premium ? "P" : "C"
  capacity                      = var.capacity
  redis_version                 = "6"
  non_ssl_port_enabled          = false
  minimum_tls_version           = "1.2"
  public_network_access_enabled = false
  zones                         = local.premium ? ["1", "2", "3"] : null
  replicas_per_primary          = local.premium ? var.premium_replicas : null

  redis_configuration {
    authentication_enabled = true
  }

  tags = var.tags
}

module "endpoint" {
  source              = "../private_endpoint"
  name                = "pe-${var.name}-redis"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.endpoint_subnet_id
  virtual_network_id  = var.virtual_network_id
  resource_id         = azurerm_redis_cache.this.id
  subresource_name    = "redisCache"
  dns_zone_name       = "privatelink.redis.cache.windows.net"
  tags                = var.tags
}

resource "azurerm_key_vault_secret" "access_key" {
  name         = "redis-access-key"
  key_vault_id = var.key_vault_id
  value        = azurerm_redis_cache.this.primary_access_key
  content_type = "Redis access key of ${azurerm_redis_cache.this.hostname}:${azurerm_redis_cache.this.ssl_port} (rediss://)"
  tags         = var.tags
}

# REDIS_URL for the pods (Key Vault secret redis-url; the chart's ExternalSecret maps it to REDIS_URL): TLS on 6380,
# the access key URL-encoded (it is base64: + / =)
resource "azurerm_key_vault_secret" "url" {
  name         = "redis-url"
  key_vault_id = var.key_vault_id
  value        = "rediss://:${urlencode(azurerm_redis_cache.this.primary_access_key)}@${azurerm_redis_cache.this.hostname}:${azurerm_redis_cache.this.ssl_port}/0"
  content_type = "Redis URL of ${azurerm_redis_cache.this.hostname}:${azurerm_redis_cache.this.ssl_port} (REDIS_URL)"
  tags         = var.tags
}
