"""Thumbnail pipeline harness: emulator lifecycle, executor plugin, load, faults, observation, reports, CLI.

The harness reads what the handler writes through `thumbnailer.contract` (metadata keys, log-line and DLQ fields, the
output-key rule), so handlers/ (the Lambda zip root) must be importable; the project venv holds dependencies only, so
this package makes it importable for `python -m harness`, `python -m harness.load` and the rest (as infra/ does).
"""

import sys

from common.paths import HANDLERS_DIR

if str(HANDLERS_DIR) not in sys.path:
    sys.path.append(str(HANDLERS_DIR))
