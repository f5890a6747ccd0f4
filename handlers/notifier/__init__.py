"""Notifier Lambda package: S3 event -> SQS message with object metadata (second topology)."""
