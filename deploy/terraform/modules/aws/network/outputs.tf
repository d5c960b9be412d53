output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (one per zone)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets for the EKS nodes (one per zone)."
  value       = aws_subnet.private[*].id
}

output "database_subnet_ids" {
  description = "Database subnets without an internet route (one per zone)."
  value       = aws_subnet.database[*].id
}

output "availability_zones" {
  description = "The three zones used."
  value       = local.azs
}
