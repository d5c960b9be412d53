# Azure Container Registry: admin user disabled, anonymous pull disabled; on Premium (production) no public network
# access (a private endpoint), zone redundancy, untagged-manifest retention, export disabled and dedicated data
# endpoints. Basic and Standard lack those features, so they are gated on the SKU.

locals {
  premium = var.sku == "Premium"
}

resource "azurerm_container_registry" "this" {
  name                          = var.name
  location                      = var.location
  resource_group_name           = var.resource_group_name
  sku                           = var.sku
  admin_enabled                 = false
  anonymous_pull_enabled        = false
  public_network_access_enabled = local.premium ? var.public_network_access : true
  network_rule_bypass_option    = "AzureServices"
  zone_redundancy_enabled       = local.premium
  retention_policy_in_days      = local.premium ? 7 : null
  export_policy_enabled         = local.premium && !var.public_network_access ? false : true
  data_endpoint_enabled         = local.premium

  tags = var.tags
}

module "endpoint" {
  source              = "../private_endpoint"
  count               = local.premium ? 1 : 0
  name                = "pe-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.endpoint_subnet_id
  virtual_network_id  = var.virtual_network_id
  resource_id         = azurerm_container_registry.this.id
  subresource_name    = "registry"
  dns_zone_name       = "privatelink.azurecr.io"
  tags                = var.tags
}
