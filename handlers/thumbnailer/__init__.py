"""Thumbnailer Lambda package: SQS batch of S3 events -> thumbnails in S3 (zip root = handlers/)."""
