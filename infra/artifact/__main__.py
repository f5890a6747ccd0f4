"""Entry point of `python -m infra.artifact` (the Makefile's `make package`)."""

from infra.artifact.cli import main

raise SystemExit(main())
