# Development: one NAT gateway, small instances, no Multi-AZ standby, deletion allowed (a final snapshot is still taken).
environment = "dev"
owner       = "platform-team"

single_nat_gateway = true
log_retention_days = 365

eks_node_groups = {
  general = {
    instance_types = ["t3.large"]
    capacity_type  = "ON_DEMAND"
    min_size       = 1
    max_size       = 3
    desired_size   = 2
  }
}

rds_instance_class           = "db.t4g.medium"
rds_allocated_storage_gb     = 20
rds_max_allocated_storage_gb = 100
rds_multi_az                 = false
rds_deletion_protection      = false
rds_backup_retention_days    = 7
rds_backup_replication       = false

redis_node_type               = "cache.t4g.small"
redis_num_cache_clusters      = 2
redis_snapshot_retention_days = 1

backups_expire_after_days            = 180
noncurrent_version_expire_after_days = 60
