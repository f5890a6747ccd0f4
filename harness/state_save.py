"""The emulator's state save as a stop sees it: the marker the executor plugin keeps while saving, the wait's bound."""

from __future__ import annotations

# A large S3 (thousands of objects after a soak) takes longer to save than a stop's grace period, and a SIGKILL then
# loses the save: a stop that sees this file under HARNESS_HOME (the executor plugin's persistence.SAVING_MARKER in
# its persist/ folder) waits for it to go, at most SAVE_TIMEOUT_S (embedded mode: harness.emulator; docker mode:
# harness.docker_emulator, through the state mount).
SAVING_MARKER = "persist/.saving"
SAVE_TIMEOUT_S = 600.0
