"""The address map exists once: the board table (emu/machine/board.py),
mirrored by guest/kernel/memlayout.h through emu/machine/memlayout.py."""

from __future__ import annotations

import re

from emu.machine import board
from emu.machine.memlayout import c_constants
from tests.conftest import REPO


def _defines(path) -> dict[str, int]:
    out = {}
    for m in re.finditer(r"^#define\s+(\w+)\s+(0x[0-9A-Fa-f]+|\d+)UL?\b", path.read_text(), re.M):
        out[m.group(1)] = int(m.group(2), 0)
    return out


def test_memlayout_matches_the_board():
    defs = _defines(REPO / "guest" / "kernel" / "memlayout.h")
    consts = c_constants()
    assert len(defs) >= 15
    for name, value in defs.items():
        assert name in consts, f"memlayout.h defines {name}, the board does not"
        assert consts[name] == value, f"{name}: header 0x{value:x} != board 0x{consts[name]:x}"
    for s in board.SLOTS:   # every device of the table is in the header
        assert f"{s.name.upper()}_BASE" in defs, f"memlayout.h lacks {s.name.upper()}_BASE"


def test_devices_do_not_overlap_ram_or_each_other():
    regions = sorted([(s.base, s.size) for s in board.SLOTS]
                     + [(board.RAM_BASE, board.MAX_RAM_SIZE)])
    for (a, asz), (b, _) in zip(regions, regions[1:], strict=False):
        assert a + asz <= b
    for base, size in regions:
        assert base % 4096 == 0 and size % 4096 == 0
