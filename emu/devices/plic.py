"""The platform-level interrupt controller of QEMU's `virt` board (one hart):
96 sources, context 0 = hart 0 M-mode (MEIP), context 1 = hart 0 S-mode
(SEIP), as QEMU 7.2's hw/intc/sifive_plic.c with hw/riscv/virt.c's
parameters ("MS" hart config, num-sources 96, 7 priorities).

What a guest sees, as QEMU 7.2 (checked by tests/test_devices_qemu.py against
the real one):

- A device driving its line high (IrqLine.set(True), QEMU's qemu_set_irq)
  sets the source's pending bit; driving it low does not clear it (QEMU
  commit a84be2ba "Don't clear pending bits on IRQ lowering", in Debian's
  7.2.22): only a claim does, so a claim may find a source whose device has
  since gone quiet. Completion only clears the claimed bit: a source whose
  line is still high is not pending again until its device drives the line
  again (the UART does on any register access that re-evaluates its
  interrupt). This is QEMU's behaviour, not the PLIC specification's
  gateway, and xv6 relies on it: its UART handler completes with THRE still
  up and is not interrupted again.
- Claim returns the enabled, pending, unclaimed source of the highest
  priority above the context's threshold (ties: the lowest id), or 0; claims
  and completions are not checked against the context's enables.
- The outputs (MEIP, SEIP) are re-evaluated after priority, threshold, claim
  and completion writes and line changes, but not after enable writes: QEMU
  7.2 leaves them as they were until the next of those.
- Priorities and thresholds keep value % 8; every register is 32 bits and
  QEMU faults any other access size (emu cannot: it logs guest_errors).

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.devices.bus import IrqLine, no_log

# The register map (sifive_plic_create() arguments in hw/riscv/virt.c;
# riscv-plic-spec chapter "Memory Map").
PLIC_NUM_SOURCES = 96            # QEMU's num-sources: counts source 0; lines 1..95
PLIC_NUM_PRIORITIES = 7          # priorities 0 (never) .. 7
PLIC_CONTEXTS = 2                # 0: hart 0 M-mode, 1: hart 0 S-mode
PLIC_PRIORITY = 0x0              # u32 per source; source s at 4*s (s = 1..96)
PLIC_PENDING = 0x1000            # u32 words of pending bits, read-only
PLIC_ENABLE = 0x2000             # u32 words of enable bits, per context:
PLIC_ENABLE_STRIDE = 0x80        #   PLIC_ENABLE + 0x80 * context
PLIC_CONTEXT = 0x20_0000         # threshold (+0) and claim/complete (+4),
PLIC_CONTEXT_STRIDE = 0x1000     #   per context at PLIC_CONTEXT + 0x1000 * context
PLIC_SIZE = 0x60_0000            # QEMU's aperture (VIRT_PLIC_SIZE); beyond it faults
CTX_M, CTX_S = 0, 1

PLIC_MENABLE = PLIC_ENABLE + PLIC_ENABLE_STRIDE * CTX_M
PLIC_SENABLE = PLIC_ENABLE + PLIC_ENABLE_STRIDE * CTX_S
PLIC_MTHRESHOLD = PLIC_CONTEXT + PLIC_CONTEXT_STRIDE * CTX_M
PLIC_MCLAIM = PLIC_MTHRESHOLD + 4
PLIC_STHRESHOLD = PLIC_CONTEXT + PLIC_CONTEXT_STRIDE * CTX_S
PLIC_SCLAIM = PLIC_STHRESHOLD + 4

_WORDS = (PLIC_NUM_SOURCES + 31) // 32       # 3 words of pending / enable bits
_LAST_PRIORITY = PLIC_NUM_SOURCES            # QEMU 7.2 maps 4..0x180: sources 1..96


def no_output(level: bool) -> None:
    """An unwired context output."""


class Plic:
    """The interrupt controller. `meip(level)` and `seip(level)` drive the
    hart's MEIP and SEIP (contexts 0 and 1); each is called when its level
    changes."""

    name = "plic"

    def __init__(self, meip: Callable[[bool], None] = no_output,
                 seip: Callable[[bool], None] = no_output) -> None:
        self.outputs = (meip, seip)
        self.levels = [False] * PLIC_CONTEXTS
        self.priority = [0] * (_LAST_PRIORITY + 1)
        self.pending = 0                             # bit s: source s
        self.claimed = 0
        self.enable = [0] * PLIC_CONTEXTS            # bits 0..95 per context
        self.threshold = [0] * PLIC_CONTEXTS
        self.claims = 0
        self.log = no_log

    def line(self, source: int) -> IrqLine:
        """Return the IrqLine for source id `source` (1..95)."""
        if not 0 < source < PLIC_NUM_SOURCES:
            raise ValueError(f"PLIC source {source} out of range 1..{PLIC_NUM_SOURCES - 1}")
        return IrqLine(self, source)

    def set_level(self, source: int, level: bool) -> None:
        """A device drove `source` to `level`: high sets the pending bit and
        re-evaluates the outputs, low does nothing (sifive_plic_irq_request)."""
        if level:
            self.pending |= 1 << source
            self._update()

    def best(self, ctx: int) -> int:
        """The source a claim by context `ctx` would return now (0: none)."""
        cand = self.pending & ~self.claimed & self.enable[ctx]
        best, best_prio = 0, self.threshold[ctx]
        while cand:
            low = cand & -cand
            s = low.bit_length() - 1
            if self.priority[s] > best_prio:
                best, best_prio = s, self.priority[s]
            cand ^= low
        return best

    def _update(self) -> None:
        for ctx in range(PLIC_CONTEXTS):
            level = self.best(ctx) != 0
            if level != self.levels[ctx]:
                self.levels[ctx] = level
                self.outputs[ctx](level)

    def _claim(self, ctx: int) -> int:
        s = self.best(ctx)
        if s:
            self.pending &= ~(1 << s)
            self.claimed |= 1 << s
            self.claims += 1
        self._update()
        return s

    def _bad(self, what: str, offset: int, size: int) -> None:
        self.log("guest_errors", f"plic: {what} at +0x{offset:x} (size {size}) ignored")

    # -- MMIO ----------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        """Return the 32-bit register at `offset`; a claim register read claims.
        Anything else reads 0 (and is logged)."""
        if size != 4 or offset % 4:
            self._bad("read of the wrong size (QEMU: access fault)", offset, size)
            return 0
        if 0 < offset <= 4 * _LAST_PRIORITY:
            return self.priority[offset // 4]
        if PLIC_PENDING <= offset < PLIC_PENDING + 4 * _WORDS:
            return self.pending >> (8 * (offset - PLIC_PENDING)) & 0xFFFF_FFFF
        ctx, word = divmod(offset - PLIC_ENABLE, PLIC_ENABLE_STRIDE)
        if 0 <= ctx < PLIC_CONTEXTS and word < 4 * _WORDS:
            return self.enable[ctx] >> (8 * word) & 0xFFFF_FFFF
        ctx, reg = divmod(offset - PLIC_CONTEXT, PLIC_CONTEXT_STRIDE)
        if 0 <= ctx < PLIC_CONTEXTS and reg == 0:
            return self.threshold[ctx]
        if 0 <= ctx < PLIC_CONTEXTS and reg == 4:
            return self._claim(ctx)
        self._bad("read of an invalid register", offset, size)
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """Write the 32-bit register at `offset`. Invalid registers, the
        pending bits and completions of sources >= 96 are ignored (logged)."""
        if size != 4 or offset % 4:
            self._bad(f"write of 0x{value:x} of the wrong size (QEMU: access fault)",
                      offset, size)
            return
        value &= 0xFFFF_FFFF
        if 0 < offset <= 4 * _LAST_PRIORITY:
            self.priority[offset // 4] = value % (PLIC_NUM_PRIORITIES + 1)
            self._update()
            return
        if PLIC_PENDING <= offset < PLIC_PENDING + 4 * _WORDS:
            self._bad(f"write of 0x{value:x} to the read-only pending bits", offset, size)
            return
        ctx, word = divmod(offset - PLIC_ENABLE, PLIC_ENABLE_STRIDE)
        if 0 <= ctx < PLIC_CONTEXTS and word < 4 * _WORDS:
            shift = 8 * word
            self.enable[ctx] = self.enable[ctx] & ~(0xFFFF_FFFF << shift) | value << shift
            return                        # QEMU 7.2 does not re-evaluate its outputs here
        ctx, reg = divmod(offset - PLIC_CONTEXT, PLIC_CONTEXT_STRIDE)
        if 0 <= ctx < PLIC_CONTEXTS and reg == 0:
            self.threshold[ctx] = value % (PLIC_NUM_PRIORITIES + 1)
            self._update()
            return
        if 0 <= ctx < PLIC_CONTEXTS and reg == 4:
            if value < PLIC_NUM_SOURCES:
                self.claimed &= ~(1 << value)
                self._update()
            else:
                self._bad(f"completion of invalid source {value}", offset, size)
            return
        self._bad(f"write of 0x{value:x} to an invalid register", offset, size)
