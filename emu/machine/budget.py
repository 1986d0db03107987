"""Instruction budget and interrupt window: counts retired instructions per
translated block and stops the CPU at a block boundary when the slice's
budget is spent or a pending interrupt becomes deliverable (pure-Python
reference; fast/budget.pyx is its twin with the same names, a C hook
registered with libunicorn).

Counting: a block of `size` bytes of 4-byte instructions retires size/4.
Stopping from a block hook happens *before* the block runs, so a block is
counted only when it is let run; the run loop uncounts the tail of a block
an exception cut short (`retract_after`).

Interrupts (privileged spec 3.1.9): the machine tells the hook what is
pending and enabled (`set_irq_state`): the device `lines`, the mip bits
software wrote (`umip`: SSIP, STIP, SEIP), and mie and mideleg. While
something is pending and enabled, the hook checks at each block start
whether the hart takes it now - an interrupt mideleg does not delegate is
taken below M, or in M with mstatus.MIE; a delegated one in U, or in S with
sstatus.SIE - and stops so the machine can deliver it. CSR writes end a
translated block, so an interrupt is taken right after the instruction that
enables it; in S the hook rereads sie (mie's S view), in M all of mie.

M-mode code may write mip (xv6's timervec raises SSIP, OpenSBI forwards
STIP) and then `mret`: while the hart is in M (`in_m`, set by the machine
when it enters M) the hook watches the privilege at every block, and on
the way out of M rereads mip.

Layer: machine.
"""

from __future__ import annotations

import unicorn as uc_mod
from unicorn import riscv_const as R

from emu.core.isa import MSTATUS_MIE, SSTATUS_SIE

PRIV_M = 3


class BlockBudget:
    """Counts instructions block by block; stops at `stop_at` or on an interrupt.

    Attributes: `icount` (instructions retired so far), `stop_at` (absolute
    icount at which the CPU is stopped, checked at block starts), `lines`,
    `umip`, `mie`, `mideleg`, `in_m` (the interrupt state, see the module
    docstring), `blk_pc`, `blk_size` (the last block let run), `stopped`
    (the hook stopped the CPU in this slice), `irq_stop` (it stopped
    because an interrupt became deliverable).
    """

    def __init__(self, uc: uc_mod.Uc) -> None:
        self.uc = uc
        self.icount = 0
        self.stop_at = 0
        self.lines = 0
        self.umip = 0
        self.mie = 0
        self.mideleg = 0
        self.in_m = False
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

    def _m_csr(self, uc: uc_mod.Uc, reg: int, priv: int) -> int:
        """Read a CSR with PRIV temporarily M (unicorn checks the current
        privilege on host CSR accesses)."""
        if priv == PRIV_M:
            return uc.reg_read(reg)
        uc.reg_write(R.UC_RISCV_REG_PRIV, PRIV_M)
        v = uc.reg_read(reg)
        uc.reg_write(R.UC_RISCV_REG_PRIV, priv)
        return v

    def _irq_deliverable(self, uc: uc_mod.Uc, priv: int) -> bool:
        if priv == PRIV_M:
            self.mie = uc.reg_read(R.UC_RISCV_REG_MIE)
        elif priv == 1:
            self.mie = (self.mie & ~self.mideleg) | uc.reg_read(R.UC_RISCV_REG_SIE)
        pending = (self.lines | self.umip) & self.mie
        if not pending:
            return False
        to_m = pending & ~self.mideleg
        if to_m and (priv < PRIV_M or uc.reg_read(R.UC_RISCV_REG_MSTATUS) & MSTATUS_MIE):
            return True
        to_s = pending & self.mideleg
        if to_s and (priv == 0 or (priv == 1 and uc.reg_read(R.UC_RISCV_REG_SSTATUS)
                                   & SSTATUS_SIE)):
            return True
        return False

    def _on_block(self, uc: uc_mod.Uc, address: int, size: int, _user: object) -> None:
        if self.stopped:
            return
        if self.icount >= self.stop_at:
            self.stopped = True
            uc.emu_stop()
            return
        priv = -1
        if self.in_m:
            priv = uc.reg_read(R.UC_RISCV_REG_PRIV)
            if priv != PRIV_M:               # an mret: what did M leave pending?
                self.in_m = False
                self.umip = self._m_csr(uc, R.UC_RISCV_REG_MIP, priv)
        if self.lines | self.umip:
            if priv < 0:
                priv = uc.reg_read(R.UC_RISCV_REG_PRIV)
            if self._irq_deliverable(uc, priv):
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

    def set_irq_state(self, lines: int, umip: int, mie: int, mideleg: int,
                      in_m: bool) -> None:
        """Tell the hook what is pending (device `lines`, software-written
        `umip`), what mie and mideleg are, and whether the hart is in M."""
        self.lines = lines
        self.umip = umip
        self.mie = mie
        self.mideleg = mideleg
        self.in_m = bool(in_m)

    def retract_after(self, pc: int) -> None:
        """Uncount the instructions of the current block from `pc` on.

        Called when an exception cut the block at `pc` (those instructions did
        not retire). No effect if `pc` is outside the last block.
        """
        end = self.blk_pc + self.blk_size
        if self.blk_pc <= pc < end:
            self.icount -= (end - pc) >> 2
            self.blk_size = pc - self.blk_pc
