"""The progress of a long run, on stderr: virtual time, MIPS, faults/s, swap
I/O, retransmits, free memory and reserve use.

On a terminal it is a live status bar (rich) as wide as the terminal,
redrawn a few times a wall second. The guest's console stays on stdout; when
stdout is that terminal too, each console line is written whole between
erasing the bar and drawing it again, so the lines read intact above it.

Not on a terminal (`--progress on` into a file or a pipe) it is one plain
line every PLAIN_PERIOD_S wall seconds with the same figures, as pip or
rsync print. Such a line is only written while the console is at the start
of a line (stdout flushed first), so that `2>&1` cuts no console line.

Layer: tools.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from emu.guestview import kstats
from emu.tools.timeline import flatten

LIVE_PERIOD_S = 0.25     # wall seconds between redraws of the live bar
PLAIN_PERIOD_S = 2.0     # wall seconds between plain lines
# Timeline keys (emu/guestview/kstats.py, flattened) shown when the kernel swaps.
SWAP_OUT_KEYS = ("kernel.swap.swap_outs",)
SWAP_IN_KEYS = ("kernel.swap.swap_ins",)
RETRANSMIT_KEYS = ("kernel.aoe.retransmits",)


def first_key(values: dict[str, int], candidates: tuple[str, ...]) -> str | None:
    """Return the first of `candidates` present in `values`, or None."""
    for k in candidates:
        if k in values:
            return k
    return None


def live_terminal(err: IO[str]) -> bool:
    """True when `err` is a terminal rich can draw a live bar on."""
    con = Console(file=err)
    return con.is_terminal and not con.is_dumb_terminal


def same_terminal(a: IO[Any] | None, b: IO[Any] | None) -> bool:
    """True when streams `a` and `b` are the same terminal device."""
    try:
        return (a is not None and b is not None and a.isatty() and b.isatty()
                and os.fstat(a.fileno()).st_rdev == os.fstat(b.fileno()).st_rdev)
    except (AttributeError, ValueError, OSError):
        return False


def kernel_counters(machine: Any) -> dict[str, int]:
    """The guest kernel's counters as flat "kernel.dotted.keys" (as a
    Timeline sample names them); {} for a guest without kstats."""
    return flatten(kstats.collect(machine), "kernel.")


class Progress:
    """The progress display of one run (see the module docstring): a
    slice-end observer (call it) and the console's sink (console_write).

    `err`: where progress goes; live when it is a terminal (live_terminal),
    plain lines otherwise. `console`: the guest console's stream (stdout).
    `counters`: reads the kernel's counters when a figure is drawn (a few
    times a wall second, not every sample of a Timeline). `wall`: the wall
    clock (seconds). Both replaceable for tests."""

    def __init__(self, machine: Any, err: IO[str], console: IO[bytes] | None = None, *,
                 counters: Callable[[Any], dict[str, int]] = kernel_counters,
                 wall: Callable[[], float] = time.perf_counter) -> None:
        self.machine = machine
        self.counters = counters
        self.console = console
        self.wall = wall
        self.live_mode = live_terminal(err)
        self.period_s = LIVE_PERIOD_S if self.live_mode else PLAIN_PERIOD_S
        self.con = Console(file=err, highlight=False, soft_wrap=not self.live_mode)
        self.live: Live | None = None
        if self.live_mode:
            self.live = Live(Text(""), console=self.con, transient=True, auto_refresh=False,
                             redirect_stdout=False, redirect_stderr=False)
        # The console shares the bar's terminal: whole lines between erase and redraw.
        self._shared = self.live_mode and same_terminal(console, err)
        self._partial = b""
        self._line_start = True
        self._start = self._last = wall()
        self._prev: tuple[float, int, int] | None = None
        self._bar = Text("")

    def __enter__(self) -> Progress:
        self._start = self._last = self.wall()
        self._prev = (self._start, self.machine.icount, self._faults())
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        if self.live is not None:
            self.live.stop()

    def console_write(self, data: bytes) -> None:
        """The guest printed `data`: pass it to the console stream, whole
        lines only while the bar shares its terminal."""
        if self.console is None or not data:
            return
        if not self._shared:
            self.console.write(data)
            self._line_start = data.endswith(b"\n")
            return
        self._partial += data
        if b"\n" not in self._partial:
            return
        text, _, self._partial = self._partial.rpartition(b"\n")
        assert self.live is not None
        self.live.update(Text(""), refresh=True)          # erase the bar
        self.console.write(text + b"\n")
        self.console.flush()
        self.live.update(self._bar, refresh=True)

    def flush(self) -> None:
        """Write a held-back partial console line (nothing when the
        console's reader has gone)."""
        if self._partial and self.console is not None:
            if self.live is not None:
                self.live.update(Text(""), refresh=True)
            data, self._partial = self._partial, b""
            try:
                self.console.write(data)
                self.console.flush()
            except BrokenPipeError:
                self.console = None

    def __call__(self) -> None:
        """Slice-end observer: redraw the bar, or write a plain line, when
        its period has passed."""
        now = self.wall()
        if now - self._last < self.period_s:
            return
        if self.live is not None:
            self._last = now
            self._bar = self.bar(now)
            self.live.update(self._bar, refresh=True)
            return
        if not self._line_start:          # mid console line: wait for its end
            return
        self._last = now
        if self.console is not None:
            try:
                self.console.flush()         # the console's lines first
            except BrokenPipeError:          # its reader left: the run is ending
                self.console = None
        self.con.print("emu: " + ", ".join(self.figures(now)))

    def _faults(self) -> int:
        return sum(self.machine.cpu.mmu.faults_by_cause.values())

    def figures(self, wall: float) -> list[str]:
        """The figures at wall time `wall`, each a short phrase (swap,
        free and reserve figures in pages); rates are over the time since
        the previous call."""
        m = self.machine
        icount, vt, faults = m.icount, m.now(), self._faults()
        mips, fps = 0.0, 0.0
        if self._prev is not None:
            w0, i0, f0 = self._prev
            dw = max(wall - w0, 1e-9)
            mips = (icount - i0) / dw / 1e6
            fps = (faults - f0) / dw
        self._prev = (wall, icount, faults)
        parts = [f"virtual {vt / 1e9:,.3f} s", f"{mips:,.1f} MIPS", f"{fps:,.0f} faults/s"]
        last = self.counters(m)
        k_out, k_in = first_key(last, SWAP_OUT_KEYS), first_key(last, SWAP_IN_KEYS)
        if k_out and k_in:
            parts.append(f"swap out {last[k_out]:,} in {last[k_in]:,}")
        k_rt = first_key(last, RETRANSMIT_KEYS)
        if k_rt:
            parts.append(f"retransmits {last[k_rt]:,}")
        if "kernel.memory.pages_free" in last and "kernel.memory.watermarks.min" in last:
            parts.append(f"free {last['kernel.memory.pages_free']:,}/min "
                         f"{last['kernel.memory.watermarks.min']:,}")
        used = sum(v for k, v in last.items()
                   if k.startswith("kernel.reserve.") and k.endswith(".usage"))
        if used:
            parts.append(f"reserve {used:,} pages")
        return parts

    def bar(self, wall: float) -> Text:
        """The live bar: the figures on one line, cut with an ellipsis where
        the terminal ends."""
        pieces: list[tuple[str, str]] = []
        for p in self.figures(wall):
            pieces += [("  ", ""), (p, "bold")]
        return Text.assemble(*pieces[1:], no_wrap=True, overflow="ellipsis")
