"""LocalStack Lambda runtime executor that runs each execution environment as a local process (harness plugin)."""
