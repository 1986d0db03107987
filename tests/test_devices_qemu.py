"""emu's CLINT, PLIC, UART and test finisher against QEMU 7.2's, access by access.

One script - the registers' reset values, access sizes and holes, xv6's and
Linux's register sequences, THRE and receive interrupts through the PLIC's
M and S contexts, FIFOs, overruns and the character timeout in loopback,
claim/complete with a line held high, the timer compare and mtime writes,
the finisher's ignored writes - runs on QEMU's `virt` board (a bare-metal
probe, tests/qemu_probe.py) and on emu's devices wired as on that board.
Every value read, every mip read and the UART's output must agree; where
QEMU raises an access fault, emu (whose devices cannot fault) must log a
guest error instead.

Needs qemu-system-riscv64 (a real peer: skipped outside CI when absent).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emu.core import isa, twins
from emu.core.clock import Clock
from emu.devices import plic as P
from emu.devices import uart as U
from emu.devices.clint import CLINT_MSIP, CLINT_MTIME, CLINT_MTIMECMP, Clint
from emu.devices.finisher import Finisher
from emu.devices.plic import Plic
from emu.devices.uart import Uart
from tests.conftest import need_fast
from tests.qemu_probe import QEMU, Script, run_qemu

pytestmark = pytest.mark.peer

CLINT, PLIC, UART, TEST = 0x0200_0000, 0x0C00_0000, 0x1000_0000, 0x10_0000
IRQ_UART = 10
MIP_MSIP, MIP_MTIP, MIP_MEIP = 1 << 3, 1 << 7, 1 << 11     # privileged spec, mip
MIP_SEIP = isa.SIP_SEIP

# Where emu differs from QEMU on purpose (docs/devices.md).
DIFFERENCES = {
    "rbr as a doubleword": "unicorn hands emu two 32-bit reads (RBR, then MCR at +4)",
}


class EmuVirt:
    """emu's four devices at QEMU virt's addresses, with a hart's mip."""

    def __init__(self, plic: type = Plic) -> None:
        self.clock = Clock()
        self.mip = 0
        self.out = bytearray()
        self.errors: list[str] = []
        self.ended: list[int | str] = []
        now = self._now

        def pin(bit: int):
            return lambda level: self._set_mip(bit, level)

        self.plic = plic(meip=pin(MIP_MEIP), seip=pin(MIP_SEIP))
        self.clint = Clint(self.clock, now, pin(MIP_MSIP), pin(MIP_MTIP), lambda level: None)
        self.uart = Uart(self.plic.line(IRQ_UART), self.out.extend, self.clock, now)
        self.test = Finisher(self.ended.append, lambda: self.ended.append("reset"))
        self.map = ((CLINT, 0x1_0000, self.clint), (PLIC, P.PLIC_SIZE, self.plic),
                    (UART, 0x1000, self.uart), (TEST, 0x1000, self.test))
        for _, _, dev in self.map:
            dev.log = self._log

    def _now(self) -> int:
        return self.clock.now

    def _set_mip(self, bit: int, level: bool) -> None:
        self.mip = self.mip | bit if level else self.mip & ~bit

    def _log(self, topic: str, msg: str) -> None:
        if topic == "guest_errors":
            self.errors.append(msg)

    def access(self, addr: int, size: int, value: int | None = None) -> int:
        """One guest access; a 64-bit one is two 32-bit ones, low half first
        (what unicorn's mmio_map does)."""
        base, dev = next((b, d) for b, length, d in self.map if b <= addr < b + length)
        off = addr - base
        parts = [(off, size)] if size <= 4 else [(off, 4), (off + 4, 4)]
        got = 0
        for k, (o, n) in enumerate(parts):
            if value is None:
                got |= dev.read(o, n) << (32 * k)
            else:
                dev.write(o, n, value >> (32 * k) & ((1 << (8 * n)) - 1))
        return got

    def wait(self, done) -> int:
        """Let virtual time run, event by event, until `done()` (or no event is left)."""
        while not done():
            t = self.clock.next_time()
            if t is None:
                return 0
            self.clock.advance(t)
            self.clock.run_due()
        return 1

    def run(self, script: Script) -> list[tuple[int, bool]]:
        """(value, logged a guest error) per op."""
        results = []
        for op in script.ops:
            before = len(self.errors)
            if op[0] == "r":
                v = self.access(op[1], op[2])
            elif op[0] == "w":
                self.access(op[1], op[2], op[3])
                v = 0
            elif op[0] == "mip":
                v = self.mip
            elif op[0] == "poll":
                _, addr, size, mask, want = op
                v = self.wait(lambda: self.access(addr, size) & mask == want)  # noqa: B023
            else:
                _, mask, want = op
                v = self.wait(lambda: self.mip & mask == want)  # noqa: B023
            results.append((v, len(self.errors) > before))
        return results


def build_script() -> Script:
    s = Script()
    r4 = lambda addr, label: s.r(addr, label, 4)                 # noqa: E731
    w4 = lambda addr, value, label="": s.w(addr, value, label, 4)  # noqa: E731
    s.mip("mip at power-on (mtimecmp 0: MTIP)")

    # -- UART: reset values, sizes, holes --------------------------------
    for i in range(8):
        s.r(UART + i, f"uart reset +{i}")
    s.w(UART + U.UART_LCR, U.LCR_DLAB)
    s.r(UART + U.UART_DLL, "dll at reset")
    s.r(UART + U.UART_DLM, "dlm at reset")
    s.w(UART + U.UART_DLL, 0x00)          # divisor 0x1000: 97 baud, so that the
    s.w(UART + U.UART_DLM, 0x10)          # character timeout (0.4 s) never fires by chance
    s.w(UART + U.UART_LCR, 0x03)
    s.r(UART + U.UART_RBR, "rbr as a word", 4)
    s.r(UART + U.UART_RBR, "rbr as a doubleword", 8)
    s.r(UART + U.UART_MCR, "mcr as a halfword", 2)
    s.r(UART + U.UART_LSR, "lsr as a word (past the 8 bytes)", 4)
    s.r(UART + 8, "uart +8")
    s.r(UART + 0xFFF, "uart +0xfff")
    s.w(UART + 8, 0x41, "write to uart +8")
    s.w(UART + U.UART_SCR, 0xA5)
    s.r(UART + U.UART_SCR, "scr")
    s.w(UART + U.UART_MCR, 0xAABB0B, "mcr written as a word", 4)
    s.r(UART + U.UART_MCR, "mcr after a word write")
    s.w(UART + U.UART_LSR, 0, "write to lsr")
    s.w(UART + U.UART_MSR, 0, "write to msr")
    s.r(UART + U.UART_LSR, "lsr after write")
    s.r(UART + U.UART_MSR, "msr")

    # -- Linux 8250 autoconfig and startup ---------------------------------
    s.w(UART + U.UART_IER, 0)
    s.r(UART + U.UART_IER, "linux: ier after 0")
    s.w(UART + U.UART_IER, 0x0F)
    s.r(UART + U.UART_IER, "linux: ier after 0x0f")
    s.w(UART + U.UART_IER, 0)
    s.w(UART + U.UART_MCR, U.MCR_LOOP | U.MCR_OUT2 | U.MCR_RTS)
    s.r(UART + U.UART_MSR, "linux: msr in loopback (DCD|CTS)")
    s.w(UART + U.UART_MCR, U.MCR_OUT2)
    s.w(UART + U.UART_LCR, 0xBF)
    s.w(UART + 2, 0, "linux: EFR (FCR here)")
    s.w(UART + U.UART_LCR, 0)
    s.w(UART + U.UART_FCR, U.FCR_FE)
    s.r(UART + U.UART_IIR, "linux: iir with FIFOs (16550A)")
    s.w(UART + U.UART_FCR, 0x21)
    s.r(UART + U.UART_IIR, "linux: iir with the 64-byte bit")
    s.w(UART + U.UART_LCR, 0xE0)
    s.r(UART + 2, "linux: EXCR1 (IIR here)")
    s.w(UART + U.UART_LCR, 0)
    s.w(UART + U.UART_IER, 0x40)
    s.r(UART + U.UART_IER, "linux: ier UUE bit")
    s.w(UART + U.UART_FCR, U.FCR_RFR | U.FCR_XFR)   # clear and disable the FIFOs
    s.r(UART + U.UART_LSR, "linux startup: lsr")
    s.r(UART + U.UART_RBR, "linux startup: rbr")
    s.r(UART + U.UART_IIR, "linux startup: iir")
    s.r(UART + U.UART_MSR, "linux startup: msr")
    s.w(UART + U.UART_LCR, 0x03)
    s.w(UART + U.UART_IER, U.IER_THRI)
    s.r(UART + U.UART_LSR, "linux TXEN test: lsr")
    s.r(UART + U.UART_IIR, "linux TXEN test: iir")
    s.w(UART + U.UART_IER, 0)
    s.w(UART + U.UART_IER, U.IER_THRI)
    s.r(UART + U.UART_IIR, "linux THRE test: iir1")
    s.w(UART + U.UART_IER, 0)
    s.w(UART + U.UART_IER, U.IER_THRI)
    s.r(UART + U.UART_IIR, "linux THRE test: iir")
    s.r(UART + U.UART_IIR, "iir once THRE was reported")
    s.w(UART + U.UART_IER, U.IER_THRI, "ier THRI again (no change)")
    s.r(UART + U.UART_IIR, "iir after an unchanged ier write")
    s.w(UART + U.UART_IER, 0)

    # -- PLIC registers ---------------------------------------------------
    r4(PLIC, "priority of source 0")
    w4(PLIC, 7)
    r4(PLIC, "priority of source 0 after a write")
    for value in (9, 0xFF, 3):
        w4(PLIC + 4 * IRQ_UART, value)
        r4(PLIC + 4 * IRQ_UART, f"priority after writing {value}")
    w4(PLIC + 4 * 96, 5)
    r4(PLIC + 4 * 96, "priority of source 96")
    w4(PLIC + 4 * 97, 5)
    r4(PLIC + 4 * 97, "priority of source 97")
    for word in range(4):
        r4(PLIC + P.PLIC_PENDING + 4 * word, f"pending word {word}")
        w4(PLIC + P.PLIC_MENABLE + 4 * word, 0xFFFF_FFFF)
        r4(PLIC + P.PLIC_MENABLE + 4 * word, f"m enable word {word}")
        w4(PLIC + P.PLIC_MENABLE + 4 * word, 0)
    w4(PLIC + P.PLIC_PENDING, 0xFFFF_FFFF, "write to the pending bits")
    r4(PLIC + P.PLIC_ENABLE + 2 * P.PLIC_ENABLE_STRIDE, "context 2 enable")
    w4(PLIC + P.PLIC_MTHRESHOLD, 9)
    r4(PLIC + P.PLIC_MTHRESHOLD, "m threshold after writing 9")
    w4(PLIC + P.PLIC_MTHRESHOLD, 0)
    r4(PLIC + P.PLIC_MTHRESHOLD + 8, "m context +8")
    r4(PLIC + P.PLIC_CONTEXT + 2 * P.PLIC_CONTEXT_STRIDE, "context 2 threshold")
    s.r(PLIC + P.PLIC_MTHRESHOLD, "m threshold as a byte", 1)
    s.r(PLIC + P.PLIC_MTHRESHOLD, "m threshold as a halfword", 2)
    s.w(PLIC + P.PLIC_MTHRESHOLD, 1, "m threshold written as a byte", 1)
    r4(PLIC + P.PLIC_MTHRESHOLD, "m threshold after the byte write")
    r4(PLIC + P.PLIC_SIZE - 4, "last word of the PLIC")

    # -- xv6: plicinit, plicinithart, uartinit; THRE through context 1 --------
    w4(PLIC + 4 * IRQ_UART, 1)
    w4(PLIC + 4 * 1, 1)
    w4(PLIC + P.PLIC_SENABLE, (1 << IRQ_UART) | (1 << 1))
    w4(PLIC + P.PLIC_STHRESHOLD, 0)
    s.w(UART + U.UART_IER, 0)
    s.w(UART + U.UART_LCR, U.LCR_DLAB)
    s.w(UART + U.UART_DLL, 0x03)
    s.w(UART + U.UART_DLM, 0x00)
    s.w(UART + U.UART_LCR, 0x03)
    s.w(UART + U.UART_FCR, U.FCR_FE | U.FCR_RFR | U.FCR_XFR)
    s.w(UART + U.UART_IER, U.IER_THRI | U.IER_RDI)
    r4(PLIC + P.PLIC_PENDING, "xv6: pending after uartinit")
    s.mip("xv6: mip after uartinit (SEIP)")
    s.r(UART + U.UART_LSR, "xv6 uartstart: lsr")
    s.w(UART + U.UART_THR, ord("x"))
    r4(PLIC + P.PLIC_SCLAIM, "xv6: claim")
    s.mip("xv6: mip after the claim")
    r4(PLIC + P.PLIC_PENDING, "xv6: pending after the claim")
    s.r(UART + U.UART_LSR, "xv6 uartgetc: lsr")
    s.r(UART + U.UART_LSR, "xv6 uartstart: lsr (nothing to send)")
    w4(PLIC + P.PLIC_SCLAIM, IRQ_UART, "xv6: complete")
    r4(PLIC + P.PLIC_PENDING, "xv6: pending after complete, THRE still up")
    s.mip("xv6: mip after complete (no storm)")
    s.w(UART + U.UART_SCR, 1, "scr write: no update")
    r4(PLIC + P.PLIC_PENDING, "pending after a scr write")
    s.w(UART + U.UART_THR, ord("y"))
    r4(PLIC + P.PLIC_PENDING, "pending after a THR write")
    s.mip("mip after a THR write")
    w4(PLIC + P.PLIC_MENABLE, 1 << IRQ_UART, "m enable (outputs not re-evaluated)")
    s.mip("mip after the m enable write")
    w4(PLIC + P.PLIC_MTHRESHOLD, 0, "m threshold write")
    s.mip("mip after the m threshold write")
    w4(PLIC + P.PLIC_MENABLE, 0)
    s.mip("mip after the m enable is cleared")
    w4(PLIC + P.PLIC_STHRESHOLD, 1)
    s.mip("mip with the s threshold at the priority")
    r4(PLIC + P.PLIC_SCLAIM, "claim under the threshold")
    w4(PLIC + P.PLIC_STHRESHOLD, 0)
    r4(PLIC + P.PLIC_MCLAIM, "m claim (not enabled)")
    r4(PLIC + P.PLIC_SCLAIM, "s claim")
    r4(PLIC + P.PLIC_SCLAIM, "s claim again")
    s.r(UART + U.UART_IIR, "iir: THRE")
    r4(PLIC + P.PLIC_PENDING, "pending after the iir read")
    w4(PLIC + P.PLIC_SCLAIM, IRQ_UART)
    for value in (0, 96, 5):
        w4(PLIC + P.PLIC_SCLAIM, value, f"complete {value}")
    s.mip("mip at the end of the xv6 part")

    # -- receive, FIFOs and overruns in loopback --------------------------------
    s.w(UART + U.UART_IER, 0)
    s.w(UART + U.UART_FCR, 0)
    s.w(UART + U.UART_LCR, U.LCR_DLAB)
    s.w(UART + U.UART_DLL, 0x00)
    s.w(UART + U.UART_DLM, 0x10)
    s.w(UART + U.UART_LCR, 0x03)
    s.w(UART + U.UART_MCR, U.MCR_LOOP | U.MCR_OUT2)
    s.w(UART + U.UART_THR, ord("a"))
    s.r(UART + U.UART_LSR, "loop: lsr after one byte")
    s.r(UART + U.UART_IIR, "loop: iir, RDI off")
    s.w(UART + U.UART_IER, U.IER_RDI)
    s.r(UART + U.UART_IIR, "loop: iir, RDI on")
    r4(PLIC + P.PLIC_PENDING, "loop: pending")
    s.w(UART + U.UART_THR, ord("b"))
    s.r(UART + U.UART_LSR, "loop: lsr after an overrun")
    s.r(UART + U.UART_LSR, "loop: lsr read again")
    s.r(UART + U.UART_RBR, "loop: rbr")
    s.r(UART + U.UART_RBR, "loop: rbr when empty")
    s.w(UART + U.UART_IER, U.IER_RDI | U.IER_RLSI)
    s.w(UART + U.UART_THR, ord("1"))
    s.w(UART + U.UART_THR, ord("2"))
    s.r(UART + U.UART_IIR, "loop: iir line status")
    s.r(UART + U.UART_LSR, "loop: lsr clears OE")
    s.r(UART + U.UART_IIR, "loop: iir after the lsr read")
    s.r(UART + U.UART_RBR, "loop: rbr 2")
    s.w(UART + U.UART_FCR, U.FCR_FE | U.FCR_RFR | U.FCR_XFR)
    s.r(UART + U.UART_IIR, "fifo: iir empty")
    for i in range(3):
        s.w(UART + U.UART_THR, ord("c") + i)
    s.r(UART + U.UART_IIR, "fifo: iir, 3 bytes at trigger 1")
    for fcr, n in ((0x41, 3), (0x41, 4), (0x81, 7), (0x81, 8), (0xC1, 13), (0xC1, 14)):
        s.w(UART + U.UART_FCR, fcr | U.FCR_RFR)
        for i in range(n):
            s.w(UART + U.UART_THR, 0x30 + i)
        s.r(UART + U.UART_IIR, f"fifo: iir, {n} bytes at fcr 0x{fcr:x}")
        s.r(UART + U.UART_LSR, f"fifo: lsr, {n} bytes at fcr 0x{fcr:x}")
    s.w(UART + U.UART_FCR, 0xC1 | U.FCR_RFR)
    for i in range(20):
        s.w(UART + U.UART_THR, 0x40 + i)
    s.r(UART + U.UART_LSR, "fifo: lsr after 20 bytes")
    for i in range(17):
        s.r(UART + U.UART_RBR, f"fifo: rbr {i}")
    s.r(UART + U.UART_LSR, "fifo: lsr when drained")
    s.w(UART + U.UART_IER, U.IER_RDI | U.IER_THRI)
    s.r(UART + U.UART_IIR, "fifo: iir THRE")
    s.w(UART + U.UART_THR, 0x41)
    s.r(UART + U.UART_IIR, "fifo: iir THRE again below the trigger")
    s.r(UART + U.UART_RBR, "fifo: rbr")
    s.r(UART + U.UART_IIR, "fifo: iir after the read")
    s.w(UART + U.UART_FCR, 0, "fifo off")
    s.r(UART + U.UART_IIR, "iir after the FIFOs are switched off")
    s.w(UART + U.UART_IER, 0)
    # the character timeout: divisor 12 (33266 baud), 3 bytes below trigger 8
    s.w(UART + U.UART_LCR, U.LCR_DLAB)
    s.w(UART + U.UART_DLL, 0x0C)
    s.w(UART + U.UART_DLM, 0x00)
    s.w(UART + U.UART_LCR, 0x03)
    s.w(UART + U.UART_FCR, 0x81 | U.FCR_RFR)
    s.w(UART + U.UART_IER, U.IER_RDI)
    for i in range(3):
        s.w(UART + U.UART_THR, ord("p") + i)
    s.poll(UART + U.UART_IIR, 0xFF, 0xCC, "timeout: iir reaches CTI")
    s.r(UART + U.UART_RBR, "timeout: rbr")
    s.r(UART + U.UART_IIR, "timeout: iir after a read")
    s.poll(UART + U.UART_IIR, 0xFF, 0xCC, "timeout: CTI again")
    s.r(UART + U.UART_RBR, "timeout: rbr 2")
    s.r(UART + U.UART_RBR, "timeout: rbr 3")
    s.r(UART + U.UART_IIR, "timeout: iir when drained")
    s.w(UART + U.UART_IER, 0)
    s.w(UART + U.UART_FCR, 0)
    s.w(UART + U.UART_MCR, U.MCR_OUT2)
    s.w(UART + U.UART_THR, ord("z"))
    s.w(UART + U.UART_LCR, 0x43, "lcr break: QEMU still sends")
    s.w(UART + U.UART_THR, ord("!"))
    s.w(UART + U.UART_LCR, 0x03)

    # -- CLINT ------------------------------------------------------------
    r4(CLINT + CLINT_MSIP, "msip")
    w4(CLINT + CLINT_MSIP, 0xFF)
    r4(CLINT + CLINT_MSIP, "msip after 0xff")
    s.mip("mip with msip")
    w4(CLINT + CLINT_MSIP, 2)
    r4(CLINT + CLINT_MSIP, "msip after 2")
    s.mip("mip after msip 2")
    r4(CLINT + CLINT_MSIP + 4, "hart 1 msip")
    w4(CLINT + CLINT_MSIP + 4, 1, "hart 1 msip write")
    r4(CLINT + 0x3FFC, "last msip word")
    s.r(CLINT + CLINT_MSIP, "msip as a byte", 1)
    s.r(CLINT + CLINT_MSIP, "msip as a halfword", 2)
    s.w(CLINT + CLINT_MSIP, 1, "msip written as a byte", 1)
    s.mip("mip after the byte write")
    s.r(CLINT + CLINT_MTIMECMP, "mtimecmp at power-on", 8)
    s.w(CLINT + CLINT_MTIMECMP, 0x1122_3344_5566_7788, "mtimecmp (64-bit)", 8)
    r4(CLINT + CLINT_MTIMECMP, "mtimecmp low")
    r4(CLINT + CLINT_MTIMECMP + 4, "mtimecmp high")
    s.mip("mip with a far mtimecmp")
    w4(CLINT + CLINT_MTIMECMP + 4, 0, "mtimecmp high = 0")
    s.r(CLINT + CLINT_MTIMECMP, "mtimecmp", 8)
    s.mip("mip, mtimecmp 0x55667788")
    w4(CLINT + CLINT_MTIMECMP, 0xFFFF_FFFF)
    w4(CLINT + CLINT_MTIMECMP + 4, 0xFFFF_FFFF)
    s.mip("mip, mtimecmp all ones")
    r4(CLINT + CLINT_MTIMECMP + 8, "hart 1 mtimecmp")
    s.r(CLINT + CLINT_MTIMECMP, "mtimecmp as a halfword", 2)
    r4(CLINT + 0xBFF0, "clint +0xbff0")
    r4(CLINT + 0xC000, "clint +0xc000")
    r4(CLINT + 0xFFFC, "clint +0xfffc")
    s.w(CLINT + CLINT_MTIME, 1 << 44, "mtime = 2**44", 8)
    r4(CLINT + CLINT_MTIME + 4, "mtime high")
    s.mip("mip after the mtime write")
    s.w(CLINT + CLINT_MTIME, 0, "mtime = 0", 8)
    s.w(CLINT + CLINT_MTIMECMP, 100_000, "mtimecmp = 10 ms", 8)
    s.mip("mip before 10 ms")
    s.poll_mip(MIP_MTIP, MIP_MTIP, "MTIP at 10 ms")
    s.w(CLINT + CLINT_MTIMECMP, (1 << 63) + 5, "mtimecmp far away", 8)
    s.mip("mip after moving mtimecmp away")
    w4(CLINT + CLINT_MTIME + 4, 0x8000_0000, "mtime high = 2**31")
    s.mip("mip after mtime passes mtimecmp")
    w4(CLINT + CLINT_MTIME + 4, 0, "mtime high = 0")
    s.mip("mip after mtime goes back")
    w4(CLINT + CLINT_MTIMECMP + 4, 0)
    s.mip("mip, mtimecmp 5")

    # -- the finisher (PASS at the end of the probe) ------------------------
    r4(TEST, "finisher")
    r4(TEST + 8, "finisher +8")
    s.r(TEST, "finisher as a halfword", 2)
    s.r(TEST, "finisher as a byte", 1)
    w4(TEST, 0x1234, "finisher: unknown value")
    w4(TEST + 4, 0x5555, "finisher: PASS at +4")
    s.w(TEST, 0x5555, "finisher: PASS as a byte", 1)
    return s


def test_emu_devices_answer_as_qemu(tmp_path: Path) -> None:
    if QEMU is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must install qemu-system-misc (qemu-system-riscv64)")
        pytest.skip("needs qemu-system-riscv64; not in CI, so skipping")
    script = build_script()
    theirs = run_qemu(tmp_path, script)
    emu = EmuVirt()
    ours = emu.run(script)
    pairs = list(zip(script.labels, theirs, ours, strict=True))
    differ = [f"{label}: qemu 0x{q:x} emu 0x{e:x}" for label, (q, _), (e, _) in pairs
              if q != e and label not in DIFFERENCES]
    assert differ == [], "\n".join(differ)
    stale = [label for label, (q, _), (e, _) in pairs if q == e and label in DIFFERENCES]
    assert stale == [], f"documented differences that no longer differ: {stale}"
    unflagged = [label for label, (_, fault), (_, logged) in pairs if fault and not logged]
    assert unflagged == [], f"QEMU faults where emu logs no guest error: {unflagged}"
    assert emu.out == (tmp_path / "serial.out").read_bytes()
    assert emu.ended == []        # nothing the script wrote may end or reset the run


def test_the_script_covers_every_device() -> None:
    """Without QEMU, at least check that emu runs the script and reaches every device."""
    script = build_script()
    emu = EmuVirt()
    got = emu.run(script)
    assert len(got) == len(script.ops)
    assert emu.plic.claims == 2, emu.plic.claims
    # three rising edges of MTIP written by the script (power-on MTIP is not counted)
    assert emu.clint.mtimecmp.fired == 3, emu.clint.mtimecmp.fired
    assert emu.out == b"xyz!"
    assert any("finisher" in e for e in emu.errors) and any("uart" in e for e in emu.errors)


def test_the_plic_twin_answers_the_script_as_the_reference() -> None:
    """The compiled PLIC (emu._fast.plic) gives every value, mip and guest
    error of the script exactly as the reference, which the test above
    checks against QEMU."""
    need_fast(twins.available("plic"), "the compiled PLIC twin")
    ref, twin = EmuVirt(), EmuVirt(twins.compiled("plic").Plic)
    script = build_script()
    assert twin.run(script) == ref.run(script)
    assert (twin.errors, twin.out, twin.plic.claims) == (ref.errors, ref.out, ref.plic.claims)
