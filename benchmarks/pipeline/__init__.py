"""`make bench-pipeline`: the real pipeline (emulator, executor, handler) under an S3 latency model, as Power Tuning."""
