"""The progress line of long runs (rich): virtual time, MIPS, faults/s, swap
I/O and retransmits, redrawn a few times a wall second. Only when stdout is a
terminal; the guest's console lines are printed above it.

Layer: tools.
"""

from __future__ import annotations

import time
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from emu.tools.timeline import Timeline

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


class ProgressLine:
    """A live status line under the guest console (see module docstring)."""

    def __init__(self, machine: Any, timeline: Timeline, out: IO[str],
                 refresh_s: float = 0.25) -> None:
        self.machine = machine
        self.timeline = timeline
        self.console = Console(file=out, highlight=False, soft_wrap=True)
        self.live = Live(Text(""), console=self.console, transient=True,
                         auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
        self.refresh_s = refresh_s
        self._last = 0.0
        self._partial = b""
        self._prev: tuple[float, int, int] | None = None

    def __enter__(self) -> ProgressLine:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self.live.stop()

    def console_write(self, data: bytes) -> None:
        """Print guest console bytes above the live line (whole lines only)."""
        self._partial += data
        if b"\n" in self._partial:
            text, _, self._partial = self._partial.rpartition(b"\n")
            self.live.console.print(Text(text.decode(errors="replace").replace("\r", "")),
                                    highlight=False)

    def flush(self) -> None:
        """Print a pending partial console line."""
        if self._partial:
            self.live.console.print(Text(self._partial.decode(errors="replace")))
            self._partial = b""

    def __call__(self) -> None:
        """Slice-end observer: redraw if enough wall time passed."""
        now = time.perf_counter()
        if now - self._last < self.refresh_s:
            return
        self._last = now
        self.live.update(self.render(now), refresh=True)

    def render(self, wall: float) -> Text:
        """Return the status line for the current state."""
        m = self.machine
        icount, vt = m.icount, m.now()
        faults = sum(m.cpu.mmu.faults_by_cause.values())
        mips, fps = 0.0, 0.0
        if self._prev is not None:
            w0, i0, f0 = self._prev
            dw = max(wall - w0, 1e-9)
            mips = (icount - i0) / dw / 1e6
            fps = (faults - f0) / dw
        self._prev = (wall, icount, faults)
        parts = [f"vt {vt / 1e9:8.3f}s", f"{mips:7.1f} MIPS", f"{fps:8.0f} faults/s"]
        last = self.timeline.samples[-1].values if self.timeline.samples else {}
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
        return Text("  ".join(parts), style="bold")
