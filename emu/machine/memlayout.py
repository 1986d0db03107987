"""What guest/kernel/memlayout.h mirrors: the board table's bases, sizes and
interrupt lines, the devices' register offsets the kernel uses, and the
boot-info block, each under its C name. tests/test_platform.py checks that
the header and this list agree.

Layer: machine.
"""

from __future__ import annotations

from emu.devices import plic, timer
from emu.machine import board, bootinfo


def c_constants() -> dict[str, int]:
    """Every constant memlayout.h defines, by its C name."""
    out = {"RAM_BASE": board.RAM_BASE, "KERNEL_BASE": board.KERNEL_BASE,
           "TIMEBASE_HZ": board.TIMEBASE_HZ,
           "BOOTINFO_ADDR": bootinfo.BOOTINFO_ADDR, "BOOTINFO_MAGIC": bootinfo.BOOTINFO_MAGIC,
           "BOOTINFO_CMDLINE_OFF": bootinfo.BOOTINFO_CMDLINE_OFF,
           "BOOTINFO_CMDLINE_MAX": bootinfo.BOOTINFO_CMDLINE_MAX,
           "TIMER_MTIME": timer.TIMER_MTIME}
    for s in board.SLOTS:
        out[f"{s.name.upper()}_BASE"] = s.base
        out[f"{s.name.upper()}_SIZE"] = s.size
        if s.irq is not None:
            out[f"IRQ_{s.name.upper()}"] = s.irq
    for name in ("PLIC_NUM_SOURCES", "PLIC_PRIORITY", "PLIC_PENDING", "PLIC_SENABLE",
                 "PLIC_STHRESHOLD", "PLIC_SCLAIM"):
        out[name] = getattr(plic, name)
    return out
