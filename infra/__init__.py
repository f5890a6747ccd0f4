"""The pipeline stack defined once (stack.py), its lint, deploy to any endpoint (deploy.py) and the CDK app (cdk/)."""
