"""`python -m harness.chaos`: the chaos CLI."""

import sys

from harness.chaos.cli import main

sys.exit(main())
