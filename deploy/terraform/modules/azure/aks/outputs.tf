output "cluster_name" {
  description = "Name of the cluster."
  value       = azurerm_kubernetes_cluster.this.name
}

output "oidc_issuer_url" {
  description = "OIDC issuer of the cluster (workload identity)."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

output "log_analytics_workspace_id" {
  description = "Workspace of Container Insights."
  value       = azurerm_log_analytics_workspace.this.id
}
