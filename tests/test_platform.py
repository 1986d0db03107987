"""The address map exists once: the board table (emu/machine/board.py). The
guest kernel learns it from the device tree; guest/kernel/memlayout.h holds
only what the tree does not say, listed by emu/machine/memlayout.py."""

from __future__ import annotations

import re

from emu.machine import board
from emu.machine.memlayout import c_constants
from tests.conftest import REPO

MEMLAYOUT_H = REPO / "guest" / "kernel" / "memlayout.h"


def _defines(path) -> dict[str, int]:
    out = {}
    for m in re.finditer(r"^#define\s+(\w+)\s+(0x[0-9A-Fa-f]+|\d+)UL?\b", path.read_text(), re.M):
        out[m.group(1)] = int(m.group(2), 0)
    return out


def test_memlayout_matches_the_board():
    defs = _defines(MEMLAYOUT_H)
    consts = c_constants()
    assert set(defs) == set(consts), "memlayout.h and emu/machine/memlayout.py list different names"
    for name, value in defs.items():
        assert consts[name] == value, f"{name}: header 0x{value:x} != board 0x{consts[name]:x}"


def test_memlayout_leaves_the_devices_to_the_device_tree():
    """No device address, size or interrupt source in the header: the kernel
    takes them from the tree, so a second copy could only go stale."""
    text = MEMLAYOUT_H.read_text()
    for s in board.SLOTS:
        for name in (f"{s.name.upper()}_BASE", f"{s.name.upper()}_SIZE", f"IRQ_{s.name.upper()}"):
            assert not re.search(rf"\b{name}\b", text), f"memlayout.h still defines {name}"
    for name in ("RAM_BASE", "TIMEBASE_HZ", "BOOTINFO_ADDR"):
        assert not re.search(rf"\b{name}\b", text), f"memlayout.h still defines {name}"


def test_devices_do_not_overlap_ram_or_each_other():
    regions = sorted([(s.base, s.size) for s in board.SLOTS]
                     + [(board.RAM_BASE, board.MAX_RAM_SIZE)])
    for (a, asz), (b, _) in zip(regions, regions[1:], strict=False):
        assert a + asz <= b
    for base, size in regions:
        assert base % 4096 == 0 and size % 4096 == 0


def test_architecture_md_shows_the_board_table():
    """ARCHITECTURE.md's board table is the table: every slot with its base,
    size and PLIC source, in the same words."""
    text = (REPO / "ARCHITECTURE.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith("0x"):
            rows[cells[0].split()[0].lower()] = cells
    for s in board.SLOTS:
        # "virtio0..7" stands for eight slots, 0x1000 apart, sources 1 + i
        i = int(s.name[6:]) if s.name.startswith("virtio") else 0
        row = rows.get("virtio0..7" if s.name.startswith("virtio") else s.name)
        assert row is not None, f"ARCHITECTURE.md has no row for {s.name}"
        assert int(row[1].replace("_", ""), 16) + 0x1000 * i == s.base
        if i:
            assert s.irq == int(row[3]) + i
            continue
        size = s.size >> 20 if s.size >= 1 << 20 else s.size >> 10
        unit = "MiB" if s.size >= 1 << 20 else "KiB"
        assert row[2] == f"{size} {unit}", (s.name, row[2])
        assert row[3] == (str(s.irq) if s.irq is not None else "-"), (s.name, row[3])
