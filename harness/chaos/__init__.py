"""Failure injection with invariants: S3 fault proxy, named reversible scenarios, DLQ redrive, reports (issue 7)."""
