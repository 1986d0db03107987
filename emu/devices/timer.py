"""The timer: a CLINT-like mtime register (virtual nanoseconds) and the
supervisor timer compare that the firmware's SBI set_timer programs.

When virtual time reaches the compare value, STIP rises; a new set_timer
clears it (SBI spec, TIME extension).

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.core.clock import Clock, Event
from emu.devices.bus import no_log

TIMER_MTIME = 0xBFF8    # mtime's offset, as on the CLINT of QEMU's virt


class Timer:
    """mtime MMIO (read-only to the guest) plus the S-mode timer compare."""

    name = "timer"

    def __init__(self, clock: Clock, now: Callable[[], int],
                 on_stip: Callable[[bool], None]) -> None:
        self.clock = clock
        self.now = now
        self.on_stip = on_stip
        self.stimecmp = 0xFFFF_FFFF_FFFF_FFFF
        self.log = no_log
        self._event: Event | None = None
        self.fired = 0

    def set_timer(self, when: int) -> None:
        """Program the compare value (absolute virtual ns); clears STIP."""
        self.stimecmp = when & 0xFFFF_FFFF_FFFF_FFFF
        self.on_stip(False)
        if self._event is not None:
            Clock.cancel(self._event)
            self._event = None
        if self.stimecmp != 0xFFFF_FFFF_FFFF_FFFF:
            self._event = self.clock.schedule(self.stimecmp, self._expire)

    def _expire(self) -> None:
        self._event = None
        self.fired += 1
        self.on_stip(True)

    def read(self, offset: int, size: int) -> int:
        """mtime low/high words at 0xBFF8/0xBFFC; anything else reads 0."""
        t = self.now()
        if offset == TIMER_MTIME:
            return t & (0xFFFF_FFFF if size == 4 else 0xFFFF_FFFF_FFFF_FFFF)
        if offset == TIMER_MTIME + 4:
            return (t >> 32) & 0xFFFF_FFFF
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """mtime is read-only from S-mode: writes are ignored."""
        self.log("guest_errors", f"timer: write of 0x{value:x} to +0x{offset:x} ignored "
                 "(read-only from S-mode)")
