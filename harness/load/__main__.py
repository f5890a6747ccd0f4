"""Entry point of `python -m harness.load`."""

import sys

from harness.load.cli import main

sys.exit(main())
