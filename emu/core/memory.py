"""Guest physical RAM: one host buffer shared with unicorn, and a
bounds-checked accessor for devices, tools and the loader.

Devices never see unicorn: they get a PhysMem, whose every access is checked
against RAM, so a hostile guest cannot make a device touch host memory or
MMIO through DMA.

Layer: core (imports nothing from emu).
"""

from __future__ import annotations

import ctypes
import mmap


class DmaError(Exception):
    """A physical access fell outside RAM (carries the offending address)."""

    def __init__(self, addr: int, size: int) -> None:
        super().__init__(f"physical access 0x{addr:x}+{size} outside RAM")
        self.addr = addr
        self.size = size


class PhysMem:
    """RAM of `size` bytes at physical address `base`, backed by an mmap.

    `buf` is the writable buffer (for the MMU walkers), `address` the host
    pointer given to unicorn's mem_map_ptr. `written` has one byte per 4 KiB
    page, set by every `write` (the loader, devices' DMA, debuggers): the
    MMU's code-page check reads and clears it (emu/mmu/tlb.py). Stores the
    hart makes through unicorn do not set it; the MMU sees those itself.
    """

    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.size = size
        self.buf = mmap.mmap(-1, size)
        self.view = memoryview(self.buf)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self.buf))
        self.written = bytearray((size + 0xFFF) >> 12)

    def contains(self, addr: int, size: int = 1) -> bool:
        """Return True if [addr, addr+size) lies inside RAM (size >= 0)."""
        return size >= 0 and self.base <= addr and addr + size <= self.base + self.size

    def read(self, addr: int, size: int) -> bytes:
        """Return `size` bytes at physical `addr`. Raises DmaError outside RAM."""
        off = addr - self.base          # contains(), inline: every DMA comes here
        if size < 0 or off < 0 or off + size > self.size:
            raise DmaError(addr, size)
        return bytes(self.view[off:off + size])

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Write `data` at physical `addr`. Raises DmaError outside RAM."""
        n = len(data)
        off = addr - self.base
        if off < 0 or off + n > self.size:
            raise DmaError(addr, n)
        self.view[off:off + n] = data
        if n:
            first, last = off >> 12, (off + n - 1) >> 12
            if first == last:
                self.written[first] = 1
            else:
                self.written[first:last + 1] = b"\1" * (last - first + 1)

    def read_u32(self, addr: int) -> int:
        """Return the little-endian u32 at `addr`. Raises DmaError outside RAM."""
        return int.from_bytes(self.read(addr, 4), "little")

    def read_u64(self, addr: int) -> int:
        """Return the little-endian u64 at `addr`. Raises DmaError outside RAM."""
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u32(self, addr: int, value: int) -> None:
        """Store `value` as a little-endian u32 at `addr`. Raises DmaError."""
        self.write(addr, (value & 0xFFFF_FFFF).to_bytes(4, "little"))

    def write_u64(self, addr: int, value: int) -> None:
        """Store `value` as a little-endian u64 at `addr`. Raises DmaError."""
        self.write(addr, (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little"))
