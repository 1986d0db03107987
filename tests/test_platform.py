"""The address map exists once: emu/platform.py, mirrored by memlayout.h."""

from __future__ import annotations

import re

from emu import platform
from tests.conftest import REPO


def _defines(path) -> dict[str, int]:
    out = {}
    for m in re.finditer(r"^#define\s+(\w+)\s+(0x[0-9A-Fa-f]+|\d+)UL?\b", path.read_text(), re.M):
        out[m.group(1)] = int(m.group(2), 0)
    return out


def test_memlayout_matches_platform():
    defs = _defines(REPO / "guest" / "kernel" / "memlayout.h")
    assert len(defs) >= 15
    for name, value in defs.items():
        assert hasattr(platform, name), f"memlayout.h defines {name}, platform.py does not"
        assert getattr(platform, name) == value, f"{name}: header 0x{value:x} != platform"


def test_devices_do_not_overlap_ram_or_each_other():
    regions = sorted([(platform.TIMER_BASE, platform.TIMER_SIZE),
                      (platform.PLIC_BASE, platform.PLIC_SIZE),
                      (platform.UART_BASE, platform.UART_SIZE),
                      (platform.NIC_BASE, platform.NIC_SIZE),
                      (platform.RAM_BASE, platform.MAX_RAM_SIZE)])
    for (a, asz), (b, _) in zip(regions, regions[1:], strict=False):
        assert a + asz <= b
    for base, size in regions:
        assert base % 4096 == 0 and size % 4096 == 0
