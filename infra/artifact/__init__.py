"""The Lambda deployment zip (handlers + manylinux wheels) for one architecture, one role per module.

pins (the bundled releases), runtime (what Lambda provides and allows), options (what to build), elf (ELF reader),
checks (the artifact against the runtime), report (Problem, ArtifactReport), archive (deterministic zip, unpack),
build (pip + zip + check), cli (`python -m infra.artifact`). Import from the module that owns a name.
"""
