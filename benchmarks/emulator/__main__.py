"""Entry point: `python -m benchmarks.emulator [--quick] [--sides before,after,ministack]`."""

from .run import main

raise SystemExit(main())
