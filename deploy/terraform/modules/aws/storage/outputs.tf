output "bucket_names" {
  description = "Data bucket names by short name."
  value       = { for k, b in aws_s3_bucket.this : k => b.id }
}

output "bucket_arns" {
  description = "Data bucket ARNs by short name."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "access_logs_bucket" {
  description = "Bucket receiving the server access logs."
  value       = aws_s3_bucket.logs.id
}
