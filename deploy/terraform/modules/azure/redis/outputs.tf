output "hostname" {
  description = "Host name (REDIS_URL: rediss://:ACCESS_KEY@HOST:6380/0)."
  value       = azurerm_redis_cache.this.hostname
}

output "ssl_port" {
  description = "TLS port."
  value       = azurerm_redis_cache.this.ssl_port
}
