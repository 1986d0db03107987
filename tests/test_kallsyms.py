"""The kallsyms reader (emu/guestview/kallsyms.py) on tables written the way
scripts/kallsyms.c writes them, built here from a symbol list: every name
and address comes back; damaged tables and random bytes give one-line
KallsymsErrors, never a wrong table; System.map files as nm writes them.
The real kernel's table is checked against its own /proc/kallsyms in
tests/test_linux.py."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.guestview.kallsyms import KallsymsError, read_kallsyms, read_system_map

BASE = 0xFFFFFFFF80000000
# multi-character tokens for byte values no name uses as a character
WORDS = [b"T_", b"t_", b"handle_", b"fault", b"swap_", b"page", b"mm_", b"_init", b"do_"]


def _pad(buf: bytearray) -> None:
    buf.extend(bytes(-len(buf) % 8))


def build(symbols: list[tuple[str, int, str]], *, lead: bytes = b"\x13" * 4096) -> bytes:
    """An image holding a kallsyms table for (type, address offset, name)."""
    return build_with_layout(symbols, lead=lead)[0]


def build_with_layout(symbols: list[tuple[str, int, str]], *,
                      lead: bytes = b"\x13" * 4096) -> tuple[bytes, dict[str, int]]:
    """build(), and where each table starts. Byte 0 has an empty token,
    as a byte value no name needs has in the kernel's tables."""
    tokens = [bytes([i]) if i else b"" for i in range(256)]
    free = list(range(1, 32))
    for w, i in zip(WORDS, free, strict=False):
        tokens[i] = w
    by_token = sorted(((t, i) for i, t in enumerate(tokens) if len(t) > 1),
                      key=lambda x: -len(x[0]))

    def compress(s: bytes) -> bytes:
        out, pos = bytearray(), 0
        while pos < len(s):
            for t, i in by_token:
                if s.startswith(t, pos):
                    out.append(i)
                    pos += len(t)
                    break
            else:
                out.append(s[pos])
                pos += 1
        return bytes(out)

    img, at = bytearray(lead), {}
    _pad(img)
    img += struct.pack("<I", len(symbols))
    _pad(img)
    at["names"] = len(img)
    names, markers = bytearray(), []
    for k, (typ, _, name) in enumerate(symbols):
        if k % 256 == 0:
            markers.append(len(names))
        c = compress((typ + name).encode())
        if len(c) >= 0x80:
            names += bytes([(len(c) & 0x7F) | 0x80, len(c) >> 7])
        else:
            names.append(len(c))
        names += c
    img += names
    _pad(img)
    at["markers"] = len(img)
    img += struct.pack(f"<{len(markers)}I", *markers)
    _pad(img)
    index, off = [], 0
    for t in tokens:
        index.append(off)
        img += t + b"\0"
        off += len(t) + 1
    _pad(img)
    img += struct.pack("<256H", *index)
    _pad(img)
    img += struct.pack(f"<{len(symbols)}I", *(a for _, a, _ in symbols))
    _pad(img)
    img += struct.pack("<Q", BASE)
    img += b"\x00" * 64
    return bytes(img), at


SYMS = [("T", 0, "_start"), ("t", 0x40, "pe_head_start"), ("T", 0x2000, "handle_mm_fault"),
        ("T", 0x2100, "do_page_fault"), ("t", 0x2200, "swap_writepage"),
        ("D", 0x100000, "init_mm"), ("B", 0x200000, "_end")]


def test_every_name_and_address_comes_back() -> None:
    syms = read_kallsyms(build(SYMS))
    assert {n: a - BASE for n, a in syms.by_name.items()} == {n: a for _, a, n in SYMS}
    assert syms.describe(BASE + 0x2004) == "handle_mm_fault+0x4"


def test_many_symbols_long_names_and_several_markers() -> None:
    many = [("t", 16 * i, f"fn_{i}_" + "x" * (i % 300)) for i in range(1000)]
    syms = read_kallsyms(build(many))
    assert len(syms.by_name) == 1000
    assert syms.by_name["fn_999_" + "x" * (999 % 300)] == BASE + 16 * 999


def test_damaged_markers_or_count_are_refused() -> None:
    syms = [("t", 4 * i, f"f{i}") for i in range(600)]
    img, at = build_with_layout(syms)
    bad = bytearray(img)
    struct.pack_into("<I", bad, at["markers"] + 4, 3)           # the second marker
    with pytest.raises(KallsymsError, match="names that fit the markers"):
        read_kallsyms(bytes(bad))
    bad = bytearray(img)
    struct.pack_into("<I", bad, at["names"] - 8, 599)           # one symbol fewer
    with pytest.raises(KallsymsError, match="names that fit the markers"):
        read_kallsyms(bytes(bad))


def test_an_image_without_a_table_says_so() -> None:
    with pytest.raises(KallsymsError, match="no kallsyms token table"):
        read_kallsyms(b"\x13\x00\x00\x00" * 10000)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.integers(0, 3000), st.binary(min_size=1, max_size=64))
def test_random_truncated_and_patched_images_give_errors_not_crashes(junk: bytes, cut: int,
                                                                     patch: bytes) -> None:
    """Whatever is in front of the table, the table comes back whole; cut
    short or overwritten, it comes back whole (the damage missed it) or the
    reader says it cannot read it - it never raises anything else, and never
    returns a table with symbols missing or added."""
    img = build(SYMS, lead=junk)
    assert {n for _, _, n in read_kallsyms(img)._entries} == {n for _, _, n in SYMS}
    cut = min(cut, len(img))
    for data in (img[:len(img) - cut], img[:cut] + patch + img[cut + len(patch):]):
        try:
            syms = read_kallsyms(data)
        except KallsymsError:
            continue
        assert len(syms._entries) == len(SYMS)


def test_system_map_as_nm_writes_it(tmp_path) -> None:
    p = tmp_path / "System.map"
    p.write_text("ffffffff80000000 T _start\nffffffff8026cf52 T handle_mm_fault\n"
                 "ffffffff81000000 d some_data\tmodname\n")
    syms = read_system_map(p)
    assert syms.by_name == {"_start": BASE, "handle_mm_fault": 0xFFFFFFFF8026CF52,
                            "some_data": 0xFFFFFFFF81000000}


def test_debians_stub_map_and_junk_are_one_line_errors(tmp_path) -> None:
    stub = tmp_path / "System.map-6.12"
    stub.write_text("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg "
                    "package\n")
    with pytest.raises(KallsymsError, match="stub"):
        read_system_map(stub)
    junk = tmp_path / "junk"
    junk.write_text("hello world\n")
    with pytest.raises(KallsymsError, match="junk:1: not an 'ADDRESS TYPE NAME' line"):
        read_system_map(junk)
    with pytest.raises(KallsymsError, match="cannot read"):
        read_system_map(tmp_path / "missing")
