"""Entry point: `python -m benchmarks [--quick] ...` (see benchmarks/README.md)."""

import sys
from pathlib import Path

# the handlers' package (thumbnailer) lives in handlers/, the Lambda zip root; make it importable from a fresh clone
_HANDLERS = str(Path(__file__).resolve().parent.parent / "handlers")
if _HANDLERS not in sys.path:
    sys.path.insert(1, _HANDLERS)

from .run import main  # noqa: E402

raise SystemExit(main())
