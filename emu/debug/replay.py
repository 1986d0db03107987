"""Deterministic replay in the debugger's run control: a run is a
function of (config, image), so `run-to fault N` and `run-to insn N` boot a
fresh Machine and stop at exactly that event; user breakpoints are ignored
while replaying so that the target is reached. Mixed into Controller
(control.py), whose state it shares.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from emu.debug.stops import DebugError, Stop


class Replay:
    """run-to fault N / run-to insn N (a part of Controller)."""

    # -- replay ------------------------------------------------------------------
    def run_to_fault(self, n: int) -> Stop:
        """Restart and stop before the delivery of the Nth page/access fault
        of the run. Returns the Stop (an exit if the run has fewer faults)."""
        if n < 1:
            raise DebugError("fault numbers start at 1")
        self._boot()
        self._replay_fault = n
        self._replaying = True
        try:
            while True:
                st = self._slice_or_interrupt()
                if st is not None:
                    return st
        finally:
            self._replay_fault = None
            self._replaying = False

    def run_to_insn(self, n: int) -> Stop:
        """Restart and stop when exactly `n` instructions have retired."""
        if n < 0:
            raise DebugError("instruction numbers start at 0")
        self._boot()
        m = self.machine
        cfg = m.config
        saved = cfg.slice_insns
        self._replaying = True
        try:
            while m.icount < n:
                rem = n - m.icount
                if rem > 1024:
                    # Whole slices, shortened so that the block crossing the
                    # budget (at most 512 instructions in QEMU) cannot overshoot.
                    cfg.slice_insns = min(saved, rem - 600)
                else:
                    cfg.slice_insns = saved
                    self._arm_step(rem)
                st = self._slice_or_interrupt()
                if st is not None:
                    return st
        finally:
            cfg.slice_insns = saved
            self._step_left = 0
            self._replaying = False
        pc = m.cpu.pc
        return self._stop(Stop("step", pc, f"run-to: instruction {n} reached, pc 0x{pc:x}"
                               f"{self.where(pc)}"))
