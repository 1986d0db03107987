"""A ns16550a UART subset: transmit to the console, receive from an input
queue (host stdin when interactive, or bytes a test injects).

Registers (byte-wide, offsets from the UART's base; DLAB ignored): 0 RBR/THR,
1 IER (bit 0: RX data interrupt), 2 IIR (read), 3 LCR, 4 MCR, 5 LSR
(bit 0 DR, bit 5 THRE, bit 6 TEMT), 7 SCR.

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from emu.devices.bus import IrqLine, no_log

LSR_DR = 0x01
LSR_THRE = 0x20
LSR_TEMT = 0x40
IER_RDI = 0x01
IIR_NONE = 0x01
IIR_RDA = 0x04


class Uart:
    """ns16550a subset; `output(bytes)` receives every transmitted byte."""

    name = "uart"

    def __init__(self, irq: IrqLine, output: Callable[[bytes], None]) -> None:
        self.irq = irq
        self.output = output
        self.log = no_log
        self.rx: deque[int] = deque()
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.tx_bytes = 0

    def feed(self, data: bytes) -> None:
        """Queue `data` as received bytes (raises the RX interrupt if enabled)."""
        self.rx.extend(data)
        self._update_irq()

    def _update_irq(self) -> None:
        self.irq.set(bool(self.ier & IER_RDI) and bool(self.rx))

    def read(self, offset: int, size: int) -> int:
        """Return the register at `offset`; unknown offsets read 0."""
        if offset == 0:
            v = self.rx.popleft() if self.rx else 0
            self._update_irq()
            return v
        if offset == 1:
            return self.ier
        if offset == 2:
            return IIR_RDA if (self.ier & IER_RDI and self.rx) else IIR_NONE
        if offset == 3:
            return self.lcr
        if offset == 4:
            return self.mcr
        if offset == 5:
            return LSR_THRE | LSR_TEMT | (LSR_DR if self.rx else 0)
        if offset == 7:
            return self.scr
        self.log("guest_errors", f"uart: read of unknown register +0x{offset:x}")
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """Write the register at `offset`; unknown offsets are ignored."""
        value &= 0xFF
        if self.lcr & 0x80 and offset in (0, 1):
            self.log("unimp", f"uart: divisor latch write (DLAB) of 0x{value:x} ignored")
        if offset == 0:
            self.tx_bytes += 1
            self.output(bytes((value,)))
        elif offset == 1:
            self.ier = value & 0x0F
            self._update_irq()
        elif offset == 3:
            self.lcr = value
        elif offset == 4:
            self.mcr = value
        elif offset == 7:
            self.scr = value
        else:
            self.log("guest_errors", f"uart: write of 0x{value:x} to register +0x{offset:x} "
                     "ignored")
