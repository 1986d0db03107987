"""Real peers: the outside world a run may wait on - a bridged interface, a
person at the console, a gdb client - and the clock mode that follows.

With only emulated peers, virtual time is all there is: when the hart
waits in `wfi`, time jumps to the next event, and the run is a function of
its image, flags and seed. A real peer answers in wall-clock time, so while
the guest waits on it virtual time must not outrun the wall clock, or the
guest's timers (AoE retransmission, the deadlock detector) fire long before
the peer could have answered. Coupled ("wall") mode therefore waits on the
host at `wfi` - for the next virtual event, or until a peer has something
(a frame, a byte), or a signal - and advances virtual time by the wall time
that really passed, as QEMU without -icount follows the host clock.

Modes (`--clock`): "virtual" never waits; "wall" always couples; "auto"
(the default) couples as soon as a real peer is attached.

The wake pipe lets a signal handler end a wait at once (PEP 475 retries an
interrupted select; the handler's byte in the pipe makes it return).

Layer: machine.
"""

from __future__ import annotations

import os
import select
import time

CLOCK_MODES = ("virtual", "wall", "auto")


class RealPeers:
    """The real peers of one run, their file descriptors, and the clock mode."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in CLOCK_MODES:
            raise ValueError(f"clock mode must be one of {', '.join(CLOCK_MODES)}, not {mode!r}")
        self.mode = mode
        self._fds: dict[str, int] = {}
        self.ever: list[str] = []          # every peer that was attached, in order
        self._wake_r: int | None = None    # the wake pipe, opened by the first wait
        self._wake_w: int | None = None
        self.waits = 0
        self.waited_ns = 0

    def add(self, name: str, fd: int) -> None:
        """Attach a real peer readable on `fd` (a wait ends when it is)."""
        self._fds[name] = fd
        if name not in self.ever:
            self.ever.append(name)

    def remove(self, name: str) -> None:
        """Detach a peer (no-op if absent). The mode keeps what it was."""
        self._fds.pop(name, None)

    @property
    def names(self) -> list[str]:
        """The peers attached now."""
        return list(self._fds)

    @property
    def coupled(self) -> bool:
        """True when virtual time must not outrun the wall clock in waits."""
        return self.mode == "wall" or (self.mode == "auto" and bool(self.ever))

    def describe(self) -> str:
        """One line for the report: the mode used, and why."""
        if not self.coupled:
            return "virtual (deterministic)"
        why = ", ".join(self.ever) if self.ever else "--clock wall"
        return f"wall-coupled ({why})"

    def wait(self, max_ns: int | None) -> int:
        """Wait on the host until a peer is readable, a wake() came, or
        `max_ns` of wall time passed (None: no limit). Returns the wall
        nanoseconds that passed (never more than max_ns)."""
        if self._wake_r is None:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
        fds = [*self._fds.values(), self._wake_r]
        t0 = time.perf_counter_ns()
        timeout = None if max_ns is None else max_ns / 1e9
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):   # a peer's fd went away: do not spin
            ready = []
        if self._wake_r in ready:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        waited = time.perf_counter_ns() - t0
        if max_ns is not None:
            waited = min(waited, max_ns)
        self.waits += 1
        self.waited_ns += waited
        return waited

    def wake(self) -> None:
        """End a wait now (safe from a signal handler; nothing to do when no
        wait ever began)."""
        if self._wake_w is None:
            return
        try:
            os.write(self._wake_w, b"!")
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        """Close the wake pipe (a later wait opens a new one)."""
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wake_r = self._wake_w = None
