"""What the Lambda python3.13 runtime (Amazon Linux 2023) provides and allows: arches, glibc, libraries, sizes."""

from __future__ import annotations

from typing import Literal

Arch = Literal["arm64", "x86_64"]
ARCHES: tuple[str, ...] = ("arm64", "x86_64")
# Lambda architecture -> manylinux platform suffix, extension-module triplet
WHEEL_ARCH: dict[str, str] = {"arm64": "aarch64", "x86_64": "x86_64"}
TRIPLETS: dict[str, str] = {"arm64": "aarch64-linux-gnu", "x86_64": "x86_64-linux-gnu"}

# Lambda's python3.13 runtime (Amazon Linux 2023) has glibc 2.34: nothing bundled may need a newer symbol version.
GLIBC_MAX: tuple[int, int] = (2, 34)
# ...and its libstdc++ comes from GCC 11 (GLIBCXX_3.4.29); manylinux_2_28 wheels stay at or below 3.4.25.
GLIBCXX_MAX: tuple[int, int, int] = (3, 4, 29)
MANYLINUX_MIN_MINOR = 17
MAX_ZIPPED_BYTES = 50 * 1024 * 1024  # direct upload limit
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # function + layers, unzipped

# Top-level modules the Lambda python3.13 runtime provides, so the zip need not carry them.
RUNTIME_MODULES: frozenset[str] = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six", "awslambdaric"}
)
HANDLER_PACKAGES: tuple[str, ...] = ("thumbnailer", "notifier")
# Libraries the Lambda runtime (Amazon Linux 2023) provides; everything else an ELF file needs must be bundled.
SYSTEM_LIBRARIES: frozenset[str] = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "libpthread.so.0",
        "libresolv.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libgcc_s.so.1",
        "libstdc++.so.6",
        "libz.so.1",
        "ld-linux-aarch64.so.1",
        "ld-linux-x86-64.so.2",
    }
)
