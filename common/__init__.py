"""The basics every upper package shares: paths, the polling helper, the emulator's test credentials, the coded error.

Layer rule: `common` imports nothing of ours (handlers, infra, harness, benchmarks all sit above it).
"""
