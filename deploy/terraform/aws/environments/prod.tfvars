# Production: Multi-AZ database with deletion protection and 30 days of point-in-time recovery, three Redis nodes,
# one NAT gateway per zone, 7-year backup retention (audit log, 003).
environment = "prod"
owner       = "platform-team"

single_nat_gateway = false

eks_node_groups = {
  general = {
    instance_types = ["m6i.xlarge"]
    capacity_type  = "ON_DEMAND"
    min_size       = 3
    max_size       = 12
    desired_size   = 3
  }
}

rds_instance_class           = "db.r6g.xlarge"
rds_allocated_storage_gb     = 100
rds_max_allocated_storage_gb = 1000
rds_multi_az                 = true
rds_deletion_protection      = true
rds_backup_retention_days    = 30
rds_backup_replication       = true
dr_region                    = "us-west-2"

redis_node_type               = "cache.r7g.large"
redis_num_cache_clusters      = 3
redis_snapshot_retention_days = 14

backups_expire_after_days            = 2557
noncurrent_version_expire_after_days = 90
