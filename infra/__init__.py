"""The pipeline stack defined once (stack.py), its lint, deploy to any endpoint (deploy/) and the CDK app (cdk/)."""

import sys
from pathlib import Path

# infra reads the handlers' own config types (thumbnailer.config, notifier.config); the project venv holds only
# dependencies, so make handlers/ (the zip root) importable for `python -m infra`, `python -m harness` and the CDK app.
_HANDLERS = str(Path(__file__).resolve().parent.parent / "handlers")
if _HANDLERS not in sys.path:
    sys.path.append(_HANDLERS)
