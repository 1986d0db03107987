"""The device protocol and the MMIO bus that routes accesses to devices.

A device sees register offsets, sizes and values - never unicorn. Registers
are at most 32 bits wide (unicorn's mmio_map splits a 64-bit access into two
32-bit callbacks). Devices that raise interrupts get an IrqLine from the PLIC;
devices that do DMA get the machine's PhysMem; devices that need time get the
Clock.

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


def no_log(topic: str, msg: str) -> None:
    """A device's log before the machine wires it: says nothing."""


class Device(Protocol):
    """What the bus needs from a device. Where it is mapped (base, size) and
    its interrupt line are the board's business (emu/machine/board.py).
    `log(topic, msg)` is the machine's -d log (topics "guest_errors" for an
    access the device rejects, "unimp" for a feature it does not have);
    devices start with no_log."""

    name: str
    log: Callable[[str, str], None]

    def read(self, offset: int, size: int) -> int:
        """Return the value of the register at `offset` (1, 2 or 4 bytes)."""

    def write(self, offset: int, size: int, value: int) -> None:
        """Write `value` to the register at `offset` (1, 2 or 4 bytes)."""


class IrqLine:
    """One interrupt source wired to the PLIC, as QEMU's qemu_irq: every
    set() reaches the PLIC, even when the level does not change. That is
    what makes QEMU's PLIC (hw/intc/sifive_plic.c) pend a source again: it
    latches each high level a device drives, and only a claim clears the
    latch (docs/devices.md, "PLIC"). `level` is the last level driven."""

    def __init__(self, plic: IrqSink, source: int) -> None:
        self.plic = plic
        self.source = source
        self.level = False

    def set(self, level: bool) -> None:
        """Drive the line high (True) or low (False), as qemu_set_irq."""
        self.level = level
        self.plic.set_level(self.source, level)

    def raise_(self) -> None:
        """Drive the line high."""
        self.set(True)

    def lower(self) -> None:
        """Drive the line low."""
        self.set(False)


class IrqSink(Protocol):
    """The interrupt controller side of an IrqLine."""

    def set_level(self, source: int, level: bool) -> None:
        """Take the level `source` reports (called on every device update)."""
