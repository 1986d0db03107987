"""Platform-level interrupt controller (RISC-V PLIC spec), one hart, the
supervisor context only (context 1 on QEMU virt: enable at 0x2080,
threshold at 0x201000, claim/complete at 0x201004).

Sources are level-triggered: a source is pending while its line is high and
it is not claimed; the claim returns the highest-priority enabled pending
source above the threshold (ties: lowest id). SEIP follows "some source is
deliverable".
"""

from __future__ import annotations

from collections.abc import Callable

from emu import platform
from emu.devices.bus import IrqLine


class Plic:
    """The interrupt controller; `on_seip(level)` drives the hart's SEIP."""

    name = "plic"
    base = platform.PLIC_BASE
    size = platform.PLIC_SIZE

    def __init__(self, on_seip: Callable[[bool], None]) -> None:
        n = platform.PLIC_NUM_SOURCES
        self.on_seip = on_seip
        self.priority = [0] * n
        self.level = [False] * n
        self.claimed = [False] * n
        self.enable = 0
        self.threshold = 0
        self.claims = 0
        self.seip = False

    def line(self, source: int) -> IrqLine:
        """Return the IrqLine for source id `source` (1..31)."""
        if not 0 < source < platform.PLIC_NUM_SOURCES:
            raise ValueError(f"PLIC source {source} out of range")
        return IrqLine(self, source)

    def set_level(self, source: int, level: bool) -> None:
        """Record the line level of `source` and update SEIP."""
        self.level[source] = level
        self._update()

    def _pending(self) -> list[int]:
        return [s for s in range(1, platform.PLIC_NUM_SOURCES)
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
        n = platform.PLIC_NUM_SOURCES
        if offset < 4 * n and offset % 4 == 0:
            return self.priority[offset // 4]
        if offset == platform.PLIC_PENDING:
            return sum(1 << s for s in self._pending())
        if offset == platform.PLIC_SENABLE:
            return self.enable
        if offset == platform.PLIC_STHRESHOLD:
            return self.threshold
        if offset == platform.PLIC_SCLAIM:
            s = self._best()
            if s:
                self.claimed[s] = True
                self.claims += 1
                self._update()
            return s
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """Write the register at `offset`; unknown offsets are ignored."""
        n = platform.PLIC_NUM_SOURCES
        if offset < 4 * n and offset % 4 == 0:
            if offset:
                self.priority[offset // 4] = value & 7
        elif offset == platform.PLIC_SENABLE:
            self.enable = value & ~1 & 0xFFFF_FFFF
        elif offset == platform.PLIC_STHRESHOLD:
            self.threshold = value & 7
        elif offset == platform.PLIC_SCLAIM:
            if 0 < value < n:
                self.claimed[value] = False
        else:
            return
        self._update()
