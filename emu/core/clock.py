"""Virtual time and the event queue: the machine's only notion of time.

Time is an integer count of virtual nanoseconds derived from retired
instructions (see emu/machine/machine.py) and from jumps to the next event while the
hart waits (wfi). Nothing here reads the wall clock, so the same run always
sees the same times. Events that fall due at the same instant fire in the
order they were scheduled.

Layer: core (imports nothing from emu).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TIME_MAX = (1 << 63) - 1      # the latest time an event may have (ns)


@dataclass(slots=True)
class Event:
    """A callback due at virtual time `at` (ns); `seq` breaks ties FIFO."""

    at: int
    seq: int
    callback: Callable[..., Any]
    args: tuple = ()
    cancelled: bool = False


class Clock:
    """Virtual nanoseconds plus a deterministic queue of future events."""

    def __init__(self) -> None:
        self.now: int = 0
        # (at, seq, event): tuples of ints compare in C (a dataclass's
        # generated __lt__ was a tenth of the swap demo's event handling)
        self._queue: list[tuple[int, int, Event]] = []
        self._seq = itertools.count()
        # Called with an event's time when it is scheduled ahead of every
        # other (the run loop shortens the slice that is running to it).
        self.on_earlier: Callable[[int], None] | None = None

    def schedule(self, at: int, callback: Callable[..., Any], *args: Any) -> Event:
        """Schedule `callback(*args)` at absolute virtual time `at` (ns).

        Times in the past are clamped to now; ValueError beyond 2**63-1 ns
        (292 years: the compiled twin keeps times in 64 bits, and no device
        schedules further - the CLINT stops at INT64_MAX as QEMU does).
        Returns the event (cancellable).
        """
        if at > TIME_MAX:
            raise ValueError(f"event time {at} ns is beyond 2**63-1 ns")
        ev = Event(max(int(at), self.now), next(self._seq), callback, args)
        q = self._queue
        earlier = not q or ev.at < q[0][0]
        heapq.heappush(q, (ev.at, ev.seq, ev))
        if earlier and self.on_earlier is not None:
            self.on_earlier(ev.at)
        return ev

    def after(self, delay: int, callback: Callable[..., Any], *args: Any) -> Event:
        """Schedule `callback(*args)` `delay` ns from now. Returns the event."""
        return self.schedule(self.now + max(0, int(delay)), callback, *args)

    @staticmethod
    def cancel(event: Event) -> None:
        """Cancel a scheduled event (no-op if it already fired)."""
        event.cancelled = True

    def next_time(self) -> int | None:
        """Return the time of the earliest pending event, or None if none."""
        q = self._queue
        while q and q[0][2].cancelled:
            heapq.heappop(q)
        return q[0][0] if q else None

    def pending(self) -> int:
        """Return the number of live (not cancelled) events."""
        return sum(1 for _, _, e in self._queue if not e.cancelled)

    def advance(self, to: int) -> None:
        """Move time forward to `to` (never backwards) without firing events."""
        if to > self.now:
            self.now = to

    def run_due(self) -> int:
        """Fire every event due at or before now, in order. Returns how many fired.

        Callbacks may schedule further events; those due now fire in this call.
        """
        fired = 0
        q = self._queue
        while q and q[0][0] <= self.now:
            ev = heapq.heappop(q)[2]
            if ev.cancelled:
                continue
            ev.callback(*ev.args)
            fired += 1
        return fired
