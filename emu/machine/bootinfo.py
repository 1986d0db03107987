"""The boot-info block: how emu's built-in firmware tells our kernel about
the machine (RAM, timebase, seed, command line) - a0 = hart id, a1 = its
address at kernel entry.

Layout (little-endian u64s at BOOTINFO_ADDR): magic "EMUBOOT1", version,
RAM base, RAM size, timebase in Hz, hart id, seed, command-line length; the
`-append` string at +BOOTINFO_CMDLINE_OFF, NUL-terminated, shorter than
BOOTINFO_CMDLINE_MAX bytes. guest/kernel/bootinfo.c reads it.

Layer: machine.
"""

from __future__ import annotations

import struct

from emu.core.memory import PhysMem
from emu.machine.board import RAM_BASE

BOOTINFO_ADDR = RAM_BASE + 0x1000        # inside the firmware's first 2 MiB of RAM
BOOTINFO_MAGIC = 0x3154_4F4F_4255_4D45   # "EMUBOOT1" read as a little-endian u64
BOOTINFO_CMDLINE_OFF = 64
BOOTINFO_CMDLINE_MAX = 1024


def write(mem: PhysMem, cmdline: str, timebase_hz: int, seed: int) -> int:
    """Write the block for `cmdline` into `mem`; returns its address."""
    cmd = cmdline.encode()
    hdr = struct.pack("<8Q", BOOTINFO_MAGIC, 1, mem.base, mem.size, timebase_hz, 0, seed,
                      len(cmd))
    mem.write(BOOTINFO_ADDR, hdr)
    mem.write(BOOTINFO_ADDR + BOOTINFO_CMDLINE_OFF, cmd + b"\0")
    return BOOTINFO_ADDR
