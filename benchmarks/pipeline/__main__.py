"""`python -m benchmarks.pipeline`: see benchmarks.pipeline.run."""

from __future__ import annotations

import sys

from benchmarks.pipeline.run import main

if __name__ == "__main__":
    sys.exit(main())
