output "vnet_id" {
  description = "Id of the VNet."
  value       = azurerm_virtual_network.this.id
}

output "aks_subnet_id" {
  description = "Subnet of the AKS nodes."
  value       = azurerm_subnet.aks.id
}

output "postgres_subnet_id" {
  description = "Subnet delegated to PostgreSQL Flexible Server."
  value       = azurerm_subnet.postgres.id
}

output "endpoints_subnet_id" {
  description = "Subnet of the private endpoints."
  value       = azurerm_subnet.endpoints.id
}
