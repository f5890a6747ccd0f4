"""Read what the artifact checks need from an ELF file in memory: machine, class, DT_NEEDED, GLIBC/GLIBCXX versions.

Standard library only, so it works for any target machine (unlike a host objdump).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

ELF_MACHINES: dict[int, str] = {183: "arm64", 62: "x86_64", 3: "x86", 40: "arm"}  # e_machine -> Lambda arch name


@dataclass(frozen=True)
class ElfInfo:
    """What the checks need from one ELF file: machine, needed libraries and GLIBC_x.y symbol versions."""

    machine: str
    elf_class: int  # 32 or 64
    needed: tuple[str, ...]
    glibc_versions: tuple[tuple[int, int], ...]
    glibcxx_versions: tuple[tuple[int, ...], ...] = ()

    @property
    def max_glibc(self) -> tuple[int, int] | None:
        return max(self.glibc_versions) if self.glibc_versions else None

    @property
    def max_glibcxx(self) -> tuple[int, ...] | None:
        return max(self.glibcxx_versions) if self.glibcxx_versions else None


SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
DT_NEEDED = 1


def is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def read_elf(data: bytes) -> ElfInfo:
    """Machine, DT_NEEDED and the GLIBC_ versions from .gnu.version_r of an ELF image held in memory."""
    if not is_elf(data) or len(data) < 52:
        raise ValueError("not an ELF file")
    elf_class = {1: 32, 2: 64}.get(data[4])
    endian = {1: "<", 2: ">"}.get(data[5])
    if elf_class is None or endian is None:
        raise ValueError(f"unknown ELF class/data {data[4]}/{data[5]}")
    (e_machine,) = struct.unpack_from(endian + "H", data, 18)
    machine = ELF_MACHINES.get(e_machine, f"e_machine={e_machine}")
    if elf_class == 64:
        (e_shoff,) = struct.unpack_from(endian + "Q", data, 0x28)
        e_shentsize, e_shnum = struct.unpack_from(endian + "HH", data, 0x3A)
        sh_fmt = endian + "IIQQQQIIQQ"
    else:
        (e_shoff,) = struct.unpack_from(endian + "I", data, 0x20)
        e_shentsize, e_shnum = struct.unpack_from(endian + "HH", data, 0x2E)
        sh_fmt = endian + "IIIIIIIIII"
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        if off + struct.calcsize(sh_fmt) > len(data):
            break
        _name, sh_type, _flags, _addr, sh_offset, sh_size, sh_link, sh_info, _align, _entsize = struct.unpack_from(
            sh_fmt, data, off
        )
        sections.append((sh_type, sh_offset, sh_size, sh_link, sh_info))

    def cstr(strtab_index: int, offset: int) -> str:
        _t, base, size, _l, _i = sections[strtab_index]
        start = base + offset
        end = data.index(b"\0", start, base + size)
        return data[start:end].decode("ascii", "replace")

    needed: list[str] = []
    versions: set[tuple[int, int]] = set()
    cxx_versions: set[tuple[int, ...]] = set()
    for sh_type, sh_offset, sh_size, sh_link, sh_info in sections:
        if sh_type == SHT_DYNAMIC:
            dyn_fmt = endian + ("qQ" if elf_class == 64 else "iI")
            step = struct.calcsize(dyn_fmt)
            for pos in range(sh_offset, sh_offset + sh_size - step + 1, step):
                tag, val = struct.unpack_from(dyn_fmt, data, pos)
                if tag == 0:
                    break
                if tag == DT_NEEDED:
                    needed.append(cstr(sh_link, val))
        elif sh_type == SHT_GNU_VERNEED:
            pos = sh_offset
            for _ in range(sh_info):  # sh_info = number of Verneed entries
                _ver, cnt, _file, aux, nxt = struct.unpack_from(endian + "HHIII", data, pos)
                apos = pos + aux
                for _ in range(cnt):
                    _hash, _flags, _other, name, anext = struct.unpack_from(endian + "IHHII", data, apos)
                    vname = cstr(sh_link, name)
                    m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", vname)
                    if m:
                        versions.add((int(m.group(1)), int(m.group(2))))
                    m = re.fullmatch(r"GLIBCXX_(\d+(?:\.\d+)*)", vname)
                    if m:
                        cxx_versions.add(tuple(int(x) for x in m.group(1).split(".")))
                    if not anext:
                        break
                    apos += anext
                if not nxt:
                    break
                pos += nxt
    return ElfInfo(
        machine=machine,
        elf_class=elf_class,
        needed=tuple(needed),
        glibc_versions=tuple(sorted(versions)),
        glibcxx_versions=tuple(sorted(cxx_versions)),
    )
