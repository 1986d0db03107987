# cython: language_level=3
"""Compiled twin of emu/machine/budget.py: the block-budget and interrupt-window hook
as a C callback registered directly with libunicorn (no Python on the
per-block path). Same names and contract as the reference (its docstring
explains the interrupt window for M and S)."""

from libc.stdint cimport uint64_t, uint32_t, int64_t

cdef extern from "unicorn/unicorn.h":
    ctypedef struct uc_engine:
        pass
    ctypedef size_t uc_hook
    ctypedef int uc_err
    int UC_HOOK_BLOCK
    uc_err uc_hook_add(uc_engine *uc, uc_hook *hh, int type, void *callback,
                       void *user_data, uint64_t begin, uint64_t end, ...) nogil
    uc_err uc_hook_del(uc_engine *uc, uc_hook hh) nogil
    uc_err uc_emu_stop(uc_engine *uc) nogil
    uc_err uc_reg_read(uc_engine *uc, int regid, void *value) nogil
    uc_err uc_reg_write(uc_engine *uc, int regid, const void *value) nogil

cdef extern from "unicorn/riscv.h":
    int UC_RISCV_REG_SIE
    int UC_RISCV_REG_SSTATUS
    int UC_RISCV_REG_MIE
    int UC_RISCV_REG_MIP
    int UC_RISCV_REG_MSTATUS
    int UC_RISCV_REG_PRIV

DEF SSTATUS_SIE = 2
DEF MSTATUS_MIE = 8
DEF PRIV_M = 3


cdef struct budget_state:
    int64_t icount
    int64_t stop_at
    uint64_t lines
    uint64_t umip
    uint64_t mie
    uint64_t mideleg
    int in_m
    uint64_t blk_pc
    uint64_t blk_size
    int stopped
    int irq_stop


cdef inline uint64_t _m_csr(uc_engine *uc, int reg, uint64_t priv) noexcept nogil:
    # Read a CSR with PRIV temporarily M (host CSR accesses are checked
    # against the current privilege).
    cdef uint64_t v = 0, m = PRIV_M
    if priv == PRIV_M:
        uc_reg_read(uc, reg, &v)
        return v
    uc_reg_write(uc, UC_RISCV_REG_PRIV, &m)
    uc_reg_read(uc, reg, &v)
    uc_reg_write(uc, UC_RISCV_REG_PRIV, &priv)
    return v


cdef inline bint _irq_deliverable(uc_engine *uc, budget_state *s, uint64_t priv) noexcept nogil:
    cdef uint64_t v = 0, pending, to_m, to_s
    if priv == PRIV_M:
        if uc_reg_read(uc, UC_RISCV_REG_MIE, &v) == 0:
            s.mie = v
    elif priv == 1:
        if uc_reg_read(uc, UC_RISCV_REG_SIE, &v) == 0:
            s.mie = (s.mie & ~s.mideleg) | v
    pending = (s.lines | s.umip) & s.mie
    if not pending:
        return False
    to_m = pending & ~s.mideleg
    if to_m:
        if priv < PRIV_M:
            return True
        v = 0
        uc_reg_read(uc, UC_RISCV_REG_MSTATUS, &v)
        if v & MSTATUS_MIE:
            return True
    to_s = pending & s.mideleg
    if to_s:
        if priv == 0:
            return True
        if priv == 1:
            v = 0
            uc_reg_read(uc, UC_RISCV_REG_SSTATUS, &v)
            return (v & SSTATUS_SIE) != 0
    return False


cdef void _on_block(uc_engine *uc, uint64_t address, uint32_t size,
                    void *user) noexcept nogil:
    cdef budget_state *s = <budget_state *>user
    cdef uint64_t priv = 0
    cdef bint have_priv = False
    if s.stopped:
        return
    if s.icount >= s.stop_at:
        s.stopped = 1
        uc_emu_stop(uc)
        return
    if s.in_m:
        uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv)
        have_priv = True
        if priv != PRIV_M:                  # an mret: what did M leave pending?
            s.in_m = 0
            s.umip = _m_csr(uc, UC_RISCV_REG_MIP, priv)
    if s.lines | s.umip:
        if not have_priv:
            uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv)
        if _irq_deliverable(uc, s, priv):
            s.stopped = 1
            s.irq_stop = 1
            uc_emu_stop(uc)
            return
    s.blk_pc = address
    s.blk_size = size
    s.icount += size >> 2


cdef class BlockBudget:
    """Counts instructions block by block; stops at `stop_at` or on an interrupt.

    Same contract as emu.budget.BlockBudget.
    """

    cdef budget_state s
    cdef object uc
    cdef uc_hook hh
    cdef bint installed

    def __init__(self, uc):
        self.uc = uc
        self.s.icount = 0
        self.s.stop_at = 0
        self.s.lines = 0
        self.s.umip = 0
        self.s.mie = 0
        self.s.mideleg = 0
        self.s.in_m = 0
        self.s.blk_pc = 0
        self.s.blk_size = 0
        self.s.stopped = 0
        self.s.irq_stop = 0
        self.installed = False

    def install(self):
        """Register the C block hook on the engine."""
        cdef uc_engine *eng = <uc_engine *><size_t>self.uc._uch.value
        cdef uc_err err = uc_hook_add(eng, &self.hh, UC_HOOK_BLOCK, <void *>_on_block,
                                      <void *>&self.s, 1, 0)
        if err != 0:
            raise RuntimeError(f"uc_hook_add(UC_HOOK_BLOCK) failed: {err}")
        self.installed = True

    def uninstall(self):
        """Remove the block hook (no-op if not installed)."""
        cdef uc_engine *eng
        if self.installed:
            eng = <uc_engine *><size_t>self.uc._uch.value
            uc_hook_del(eng, self.hh)
            self.installed = False

    def set_stop(self, long long stop_at):
        """Arm the budget: stop at the first block start with icount >= stop_at."""
        self.s.stop_at = stop_at
        self.s.stopped = 0
        self.s.irq_stop = 0

    def set_irq_state(self, unsigned long long lines, unsigned long long umip,
                      unsigned long long mie, unsigned long long mideleg, in_m):
        """Tell the hook what is pending (device `lines`, software-written
        `umip`), what mie and mideleg are, and whether the hart is in M."""
        self.s.lines = lines
        self.s.umip = umip
        self.s.mie = mie
        self.s.mideleg = mideleg
        self.s.in_m = 1 if in_m else 0

    def retract_after(self, unsigned long long pc):
        """Uncount the instructions of the current block from `pc` on."""
        cdef uint64_t end = self.s.blk_pc + self.s.blk_size
        if self.s.blk_pc <= pc < end:
            self.s.icount -= <int64_t>((end - pc) >> 2)
            self.s.blk_size = pc - self.s.blk_pc

    @property
    def icount(self):
        return self.s.icount

    @icount.setter
    def icount(self, long long v):
        self.s.icount = v

    @property
    def stop_at(self):
        return self.s.stop_at

    @property
    def lines(self):
        return self.s.lines

    @property
    def umip(self):
        return self.s.umip

    @property
    def mie(self):
        return self.s.mie

    @property
    def mideleg(self):
        return self.s.mideleg

    @property
    def in_m(self):
        return bool(self.s.in_m)

    @property
    def blk_pc(self):
        return self.s.blk_pc

    @property
    def blk_size(self):
        return self.s.blk_size

    @property
    def stopped(self):
        return bool(self.s.stopped)

    @property
    def irq_stop(self):
        return bool(self.s.irq_stop)


cdef void _null_block(uc_engine *uc, uint64_t address, uint32_t size,
                      void *user) noexcept nogil:
    pass


cdef class NullBlockHook:
    """Benchmark baseline, not a budget: an empty UC_HOOK_BLOCK C callback.
    Its cost per block is unicorn's fixed price for any block hook (the floor
    under BlockBudget; bench/test_bench_machine.py)."""

    cdef object uc
    cdef uc_hook hh

    def __init__(self, uc):
        self.uc = uc

    def install(self):
        """Register the empty C block hook on the engine."""
        cdef uc_engine *eng = <uc_engine *><size_t>self.uc._uch.value
        cdef uc_err err = uc_hook_add(eng, &self.hh, UC_HOOK_BLOCK, <void *>_null_block,
                                      NULL, 1, 0)
        if err != 0:
            raise RuntimeError(f"uc_hook_add(UC_HOOK_BLOCK) failed: {err}")
