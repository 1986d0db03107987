"""Instruction budget and interrupt window: counts retired instructions per
translated block and stops the CPU at a block boundary when the slice's
budget is spent or a pending interrupt becomes deliverable (pure-Python
reference).

Every guest instruction is 4 bytes (the guest is built without the C
extension), so a block of `size` bytes retires size/4 instructions. Stopping
from a block hook happens *before* the block runs, so a block is counted only
when it is let run; the run loop uncounts the tail of a block an exception
cut short (`retract_after`).

Interrupts: while some interrupt is pending (`sip` != 0, set by the machine)
the hook checks, at each block start, whether it is now deliverable - sie
has its bit and the hart is in U-mode or has sstatus.SIE set - and stops so
the machine can take it. CSR writes end a translated block, so an interrupt
is taken right after the instruction that enables it. The compiled twin in
fast/budget.pyx has the same names and registers a C hook with libunicorn.

Layer: machine.
"""

from __future__ import annotations

import unicorn as uc_mod
from unicorn import riscv_const as R

from emu.core.isa import SSTATUS_SIE


class BlockBudget:
    """Counts instructions block by block; stops at `stop_at` or on an interrupt.

    Attributes: `icount` (instructions retired so far), `stop_at` (absolute
    icount at which the CPU is stopped, checked at block starts), `sip`
    (pending interrupt bits), `sie` (cached sie), `blk_pc`, `blk_size` (the last block let run),
    `stopped` (the hook stopped the CPU in this slice), `irq_stop` (it
    stopped because an interrupt became deliverable).
    """

    def __init__(self, uc: uc_mod.Uc) -> None:
        self.uc = uc
        self.icount = 0
        self.stop_at = 0
        self.sip = 0
        self.sie = 0
        self.blk_pc = 0
        self.blk_size = 0
        self.stopped = False
        self.irq_stop = False
        self._handle: int | None = None

    def install(self) -> None:
        """Register the block hook on the engine."""
        self._handle = self.uc.hook_add(uc_mod.UC_HOOK_BLOCK, self._on_block)

    def uninstall(self) -> None:
        """Remove the block hook (no-op if not installed)."""
        if self._handle is not None:
            self.uc.hook_del(self._handle)
            self._handle = None

    def _irq_deliverable(self, uc: uc_mod.Uc) -> bool:
        # S-mode CSRs cannot be read from U-mode (unicorn checks the current
        # privilege), but sie only changes in S-mode: use the value cached at
        # the last S-mode block or set_sip().
        if uc.reg_read(R.UC_RISCV_REG_PRIV) == 0:
            return bool(self.sip & self.sie)
        self.sie = uc.reg_read(R.UC_RISCV_REG_SIE)
        return bool(self.sip & self.sie) and bool(
            uc.reg_read(R.UC_RISCV_REG_SSTATUS) & SSTATUS_SIE)

    def _on_block(self, uc: uc_mod.Uc, address: int, size: int, _user: object) -> None:
        if self.stopped:
            return
        if self.icount >= self.stop_at:
            self.stopped = True
            uc.emu_stop()
            return
        if self.sip and self._irq_deliverable(uc):
            self.stopped = self.irq_stop = True
            uc.emu_stop()
            return
        self.blk_pc = address
        self.blk_size = size
        self.icount += size >> 2

    def set_stop(self, stop_at: int) -> None:
        """Arm the budget: stop at the first block start with icount >= stop_at."""
        self.stop_at = stop_at
        self.stopped = False
        self.irq_stop = False

    def set_sip(self, sip: int, sie: int) -> None:
        """Tell the hook which interrupts are pending (sip bits) and the
        current sie (read by the caller with M privilege)."""
        self.sip = sip
        self.sie = sie

    def retract_after(self, pc: int) -> None:
        """Uncount the instructions of the current block from `pc` on.

        Called when an exception cut the block at `pc` (those instructions did
        not retire). No effect if `pc` is outside the last block.
        """
        end = self.blk_pc + self.blk_size
        if self.blk_pc <= pc < end:
            self.icount -= (end - pc) >> 2
            self.blk_size = pc - self.blk_pc
