"""Load testing of the deployed pipeline: open-loop generator, per-upload observation and accounting, reports.

Modules: scenario (TOML scenarios and rate profiles), corpus (weighted file mix), generator (open-loop uploads),
storage (the boto3 adapters), observe (outcomes, timings, samples: `observe.collect(...) -> Accounting`),
baseline (raw resize throughput on the same cores), report (Markdown, JSON, PNG), runner (one scenario end to end),
cli (`python -m harness.load`).
"""
