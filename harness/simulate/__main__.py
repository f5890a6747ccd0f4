"""`python -m harness.simulate`: the simulator's command line."""

from __future__ import annotations

import sys

from harness.simulate.cli import main

sys.exit(main())
