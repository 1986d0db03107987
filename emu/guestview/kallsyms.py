"""Symbols of a Linux kernel without its debug package: the kernel's own
kallsyms table read out of a raw `Image`, or a `System.map` file.

Debian ships a stub System.map (the real one is in the -dbg package, a
gigabyte), but every kernel built with CONFIG_KALLSYMS carries its symbol
table inside the image, compressed, for /proc/kallsyms and backtraces. Its
layout is what scripts/kallsyms.c writes (Linux 6.x, 64-bit: each table
aligned to 8 bytes, in this order):

    kallsyms_num_syms      u32                  number of symbols
    kallsyms_names         per symbol: a length byte (two if >= 0x80:
                           low 7 bits, then the next byte << 7), then
                           that many token numbers; the expansion's first
                           character is the nm-style type ('T', 't', ...)
    kallsyms_markers       u32 per 256 symbols  offset of every 256th name
    kallsyms_token_table   256 NUL-terminated strings: what each byte means
    kallsyms_token_index   256 u16              offset of each string
    kallsyms_offsets       u32 per symbol       address - relative_base
    kallsyms_relative_base u64

(kernel/kallsyms.c: kallsyms_expand_symbol, kallsyms_sym_address.) Nothing
marks where the tables start, so the reader anchors on the token table: a
byte that no token stands for expands to itself, so the digits appear there
as "0\\0" "1\\0" ... "9\\0" at positions 48-57. Every other table is found
from that one and checked against it (markers increasing from 0, names
that decode exactly onto the markers), so a wrong match is refused, not
returned.

Layer: guestview (reads images; below the tools and the debugger).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from emu.machine.loader import Symbols

DIGITS = b"".join(bytes([c]) + b"\0" for c in b"0123456789")
RISCV_IMAGE_MAGIC = b"RSC\x05"      # Documentation/arch/riscv/boot-image-header.rst
RISCV_MAGIC_OFFSET = 0x38
ALIGN = 8
MAX_SYMS = 1 << 22
MAX_LAST_BLOCK = 256 * (2 + 0x7FFF)   # 256 names after the last marker, each at most this long


class KallsymsError(ValueError):
    """The image has no kallsyms table emu can read, or a map file is malformed (one line)."""


def is_linux_image(data: bytes) -> bool:
    """True if `data` starts with the RISC-V Linux Image header."""
    return data[RISCV_MAGIC_OFFSET:RISCV_MAGIC_OFFSET + 4] == RISCV_IMAGE_MAGIC


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def _u32(data: bytes, off: int) -> int:
    return struct.unpack_from("<I", data, off)[0]


def _token_table(data: bytes) -> tuple[int, list[bytes], int] | None:
    """Find the token table: (start, the 256 tokens, token_index offset)."""
    for m in re.finditer(re.escape(DIGITS), data):
        # walk back from token 48 ('0') to token 0
        start = m.start()
        for _ in range(ord("0")):
            prev_nul = data.rfind(b"\0", 0, start - 1)
            if prev_nul < 0:
                break
            start = prev_nul + 1
        else:
            if start % ALIGN:
                continue
            tokens, pos = [], start
            for _ in range(256):                     # a byte no name needs has an empty token
                end = data.find(b"\0", pos)
                if end < 0:
                    break
                tokens.append(data[pos:end])
                pos = end + 1
            if len(tokens) != 256:
                continue
            index_at = _align(pos)
            index = struct.unpack_from("<256H", data, index_at)
            want, off = [], 0
            for t in tokens:
                want.append(off)
                off += len(t) + 1
            if list(index) == want:
                return start, tokens, index_at
    return None


def _markers(data: bytes, table_start: int) -> tuple[int, list[int]]:
    """The markers end just before the token table (after up to 4 bytes of
    padding) and count back down to their first entry, 0."""
    pos = table_start - 4
    if _u32(data, pos) == 0 and pos % ALIGN:
        pos -= 4                                     # padding after an odd count
    values: list[int] = []
    while pos >= 0:
        v = _u32(data, pos)
        if values and v >= values[-1]:
            raise KallsymsError("kallsyms markers do not decrease towards their start")
        values.append(v)
        if v == 0:
            break
        pos -= 4
    else:
        raise KallsymsError("kallsyms markers have no start")
    if pos % ALIGN:
        raise KallsymsError("kallsyms markers are not aligned")
    return pos, values[::-1]


def _name_at(data: bytes, pos: int) -> tuple[int, int]:
    """(where the compressed name at `pos` starts, its length in tokens):
    one length byte, or two when the first has bit 7 set (low 7 bits first)."""
    n = data[pos]
    if n & 0x80:
        return pos + 2, (n & 0x7F) | (data[pos + 1] << 7)
    return pos + 1, n


def _name_ends(data: bytes, start: int, count: int) -> int:
    """Skip `count` compressed names from `start`; returns where the next begins."""
    pos = start
    for _ in range(count):
        pos, n = _name_at(data, pos)
        pos += n
    return pos


def _names_start(data: bytes, markers_at: int, markers: list[int]) -> tuple[int, int]:
    """(kallsyms_names offset, number of symbols): the u32 before the names
    must be a count that fits the markers, and the names must decode onto
    the markers exactly."""
    lo_count, hi_count = (len(markers) - 1) * 256 + 1, len(markers) * 256
    last_marker = markers[-1]
    highest = (markers_at - last_marker) & ~(ALIGN - 1)
    for names_at in range(highest, max(ALIGN - 1, highest - MAX_LAST_BLOCK), -ALIGN):
        count = _u32(data, names_at - ALIGN)
        if not lo_count <= count <= hi_count:
            continue
        try:
            if len(markers) > 1 and _name_ends(data, names_at, 256) != names_at + markers[1]:
                continue
            end = _name_ends(data, names_at + last_marker, count - (len(markers) - 1) * 256)
        except IndexError:
            continue
        if _align(end) == markers_at and not any(data[end:markers_at]):   # zero padding only
            return names_at, count
    raise KallsymsError("kallsyms names that fit the markers were not found")


def read_kallsyms(data: bytes) -> Symbols:
    """Decode the kallsyms table of the kernel image `data` into Symbols
    (addresses as the kernel links them: virtual). Raises KallsymsError
    when there is none or it does not check out."""
    try:
        return _decode(data)
    except (struct.error, IndexError):
        raise KallsymsError("the kallsyms table runs past the end of the image") from None


def _decode(data: bytes) -> Symbols:
    found = _token_table(data)
    if found is None:
        raise KallsymsError("no kallsyms token table (a kernel without CONFIG_KALLSYMS?)")
    table_at, tokens, index_at = found
    markers_at, markers = _markers(data, table_at)
    names_at, count = _names_start(data, markers_at, markers)
    if not 0 < count <= MAX_SYMS:
        raise KallsymsError(f"implausible kallsyms count {count}")
    offsets_at = _align(index_at + 512)
    offsets = struct.unpack_from(f"<{count}I", data, offsets_at)
    base = struct.unpack_from("<Q", data, _align(offsets_at + 4 * count))[0]
    syms = Symbols()
    pos = names_at
    for i in range(count):
        pos, n = _name_at(data, pos)
        name = b"".join(tokens[b] for b in data[pos:pos + n])
        pos += n
        syms.add(name[1:].decode("ascii", "replace"), base + offsets[i], 0)
    syms.finish()
    return syms


_MAP_LINE = re.compile(r"^([0-9a-fA-F]+)\s+([A-Za-z?])\s+(\S+)")


def read_system_map(path: str | Path) -> Symbols:
    """Symbols from an nm-style map (`System.map`, `/proc/kallsyms`): lines
    `ADDRESS TYPE NAME [module]`. Raises KallsymsError for an unreadable
    file, a stub, or a line that is not one."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise KallsymsError(f"cannot read {path}: {exc.strerror}") from None
    syms = Symbols()
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _MAP_LINE.match(line)
        if m is None:
            raise KallsymsError(f"{path}:{lineno}: not an 'ADDRESS TYPE NAME' line: {line[:60]!r}")
        addr = int(m.group(1), 16)
        if addr == 0xFFFFFFFFFFFFFFFF:
            continue                               # Debian's stub: "the real one is in -dbg"
        syms.add(m.group(3), addr, 0)
    if not syms.by_name:
        raise KallsymsError(f"{path}: no symbols (Debian's System.map is a stub; the kernel's "
                            "own table is read from the Image instead)")
    syms.finish()
    return syms
