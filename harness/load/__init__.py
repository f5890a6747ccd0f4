"""Load testing of the deployed pipeline: open-loop uploads, per-upload observation and accounting, reports.

The module map (one role each) is in harness/load/README.md.
"""
