"""The host wall time a guest spends in swapoff: a slice-end observer that
watches the kernel's `swapoff_active` gauge (kstats) and adds the wall
time between its rising and falling edges - the "wall time" beside the
kernel's own virtual-time figure in the report and `emu experiment
swapoff`. It looks every CHECK slices (a slice is ~0.1 ms of wall time), so
a figure is good to about a millisecond.

Layer: tools.
"""

from __future__ import annotations

import struct
import time
from typing import Any

from emu.guestview import kstats

CHECK = 8


class SwapoffClock:
    """Observer for `machine.after_slice`; `wall_s` is the wall time spent
    in swapoff calls so far. Does nothing for a kernel without kstats."""

    def __init__(self, machine: Any) -> None:
        self.machine = machine
        self.addr = kstats.field_address(machine, "swapoff_active")
        self.wall_s = 0.0
        self._since: float | None = None
        self._n = 0

    def __call__(self) -> None:
        self._n += 1
        if self.addr is None or self._n % CHECK:
            return
        active = struct.unpack("<Q", self.machine.mem.read(self.addr, 8))[0] == 1
        if active and self._since is None:
            self._since = time.perf_counter()
        elif not active and self._since is not None:
            self.wall_s += time.perf_counter() - self._since
            self._since = None

    def add_figures(self, stats: dict[str, Any]) -> None:
        """Put wall_s (and MB per wall second) into the report's swapoff
        figures, when the kernel has them."""
        so = (stats.get("kernel") or {}).get("swapoff")
        if so is None:
            return
        if self._since is not None:              # the run ended inside a call
            self.wall_s += time.perf_counter() - self._since
            self._since = time.perf_counter()
        so["wall_s"] = round(self.wall_s, 6)
