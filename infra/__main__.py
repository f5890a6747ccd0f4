"""Entry point of `python -m infra`."""

from infra.cli import main

raise SystemExit(main())
