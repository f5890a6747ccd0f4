"""Thumbnail pipeline harness: emulator lifecycle, executor plugin, load, faults, observation, reports, CLI."""
