"""Print the `name==version[ ; marker]` pins of a lock file in requirements/ (hashes dropped), for pip's -c.

Stdlib only: it runs on the host (wheelhouse) and inside the image build. The locks carry hashes of PyPI's files;
the image installs wheels built on the host (pyvips is an sdist), so it takes the versions, not the hashes.
Usage: python lock_pins.py requirements/emulator.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*==[^\s\\;]+)\s*(;[^\\]*)?")


def lock_pins(lock: Path) -> list[str]:
    pins = []
    for line in lock.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            marker = (match.group(2) or "").strip()
            pins.append(f"{match.group(1)} {marker}" if marker else match.group(1))
    return pins


if __name__ == "__main__":
    sys.stdout.write("".join(f"{pin}\n" for pin in lock_pins(Path(sys.argv[1]))))
