"""A calibrated discrete-event simulation of the pipeline at AWS scale (issue 17), validated against local runs.

Modules: rules (AWS's documented scaling, throttling and pricing rules, each with its source), knobs (the stack
settings a run simulates, `--set knob=value`), calibration (service times and failure rates from measured load and
chaos reports), arrivals (the scenario's arrival profile, vectorised), engine (the event-heap simulation),
metrics (the run's figures: backlog, oldest age, percentiles, throttles, cost), report (Markdown, JSON, PNG),
sweep (memory x batch size x MaximumConcurrency, and what the settings cannot sustain), validate (prediction vs the
measured local runs), cli (`python -m harness simulate` / `python -m harness.simulate`).
"""
