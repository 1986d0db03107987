"""Platform-level interrupt controller (RISC-V PLIC spec), one hart, the
supervisor context only (context 1 on QEMU virt: enable at 0x2080,
threshold at 0x201000, claim/complete at 0x201004).

Sources are level-triggered: a source is pending while its line is high and
it is not claimed; the claim returns the highest-priority enabled pending
source above the threshold (ties: lowest id). SEIP follows "some source is
deliverable".

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.devices.bus import IrqLine, no_log

# Register offsets, hart 0's supervisor context (QEMU virt's context 1; PLIC
# spec: priorities at 0, pending bits at 0x1000, enables at 0x2000 + 0x80 per
# context, threshold and claim/complete at 0x200000 + 0x1000 per context).
PLIC_NUM_SOURCES = 32
PLIC_PRIORITY = 0x0
PLIC_PENDING = 0x1000
PLIC_SENABLE = 0x2080
PLIC_STHRESHOLD = 0x20_1000
PLIC_SCLAIM = 0x20_1004


class Plic:
    """The interrupt controller; `on_seip(level)` drives the hart's SEIP."""

    name = "plic"

    def __init__(self, on_seip: Callable[[bool], None]) -> None:
        n = PLIC_NUM_SOURCES
        self.on_seip = on_seip
        self.priority = [0] * n
        self.level = [False] * n
        self.claimed = [False] * n
        self.enable = 0
        self.threshold = 0
        self.claims = 0
        self.seip = False
        self.log = no_log

    def line(self, source: int) -> IrqLine:
        """Return the IrqLine for source id `source` (1..31)."""
        if not 0 < source < PLIC_NUM_SOURCES:
            raise ValueError(f"PLIC source {source} out of range")
        return IrqLine(self, source)

    def set_level(self, source: int, level: bool) -> None:
        """Record the line level of `source` and update SEIP."""
        self.level[source] = level
        self._update()

    def _pending(self) -> list[int]:
        return [s for s in range(1, PLIC_NUM_SOURCES)
                if self.level[s] and not self.claimed[s]]

    def _best(self) -> int:
        best, best_prio = 0, self.threshold
        for s in self._pending():
            if self.enable >> s & 1 and self.priority[s] > best_prio:
                best, best_prio = s, self.priority[s]
        return best

    def _update(self) -> None:
        seip = self._best() != 0
        if seip != self.seip:
            self.seip = seip
            self.on_seip(seip)

    def read(self, offset: int, size: int) -> int:
        """Return the register at `offset`; unknown offsets read 0."""
        n = PLIC_NUM_SOURCES
        if offset < 4 * n and offset % 4 == 0:
            return self.priority[offset // 4]
        if offset == PLIC_PENDING:
            return sum(1 << s for s in self._pending())
        if offset == PLIC_SENABLE:
            return self.enable
        if offset == PLIC_STHRESHOLD:
            return self.threshold
        if offset == PLIC_SCLAIM:
            s = self._best()
            if s:
                self.claimed[s] = True
                self.claims += 1
                self._update()
            return s
        self.log("guest_errors", f"plic: read of unknown register +0x{offset:x}")
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """Write the register at `offset`; unknown offsets are ignored."""
        n = PLIC_NUM_SOURCES
        if offset < 4 * n and offset % 4 == 0:
            if offset:
                self.priority[offset // 4] = value & 7
        elif offset == PLIC_SENABLE:
            self.enable = value & ~1 & 0xFFFF_FFFF
        elif offset == PLIC_STHRESHOLD:
            self.threshold = value & 7
        elif offset == PLIC_SCLAIM:
            if 0 < value < n:
                self.claimed[value] = False
            else:
                self.log("guest_errors", f"plic: completion of invalid source {value}")
        else:
            self.log("guest_errors", f"plic: write of 0x{value:x} to unknown register "
                     f"+0x{offset:x} ignored")
            return
        self._update()
