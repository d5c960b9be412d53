# Staging: production-shaped (Multi-AZ, one NAT per zone) on smaller instances; deletion allowed.
environment = "staging"
owner       = "platform-team"

single_nat_gateway = false

eks_node_groups = {
  general = {
    instance_types = ["m6i.large"]
    capacity_type  = "ON_DEMAND"
    min_size       = 2
    max_size       = 6
    desired_size   = 3
  }
}

rds_instance_class           = "db.r6g.large"
rds_allocated_storage_gb     = 50
rds_max_allocated_storage_gb = 500
rds_multi_az                 = true
rds_deletion_protection      = false
rds_backup_retention_days    = 7
rds_backup_replication       = false

redis_node_type               = "cache.r7g.large"
redis_num_cache_clusters      = 2
redis_snapshot_retention_days = 3

backups_expire_after_days            = 365
noncurrent_version_expire_after_days = 60
