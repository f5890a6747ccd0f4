"""The CDK app for real AWS, rendered from the same stack definition as deploy/ (infra.stack)."""
