# cython: language_level=3
"""Compiled twin of emu/machine/budget.py: the block-budget and interrupt-window hook
as a C callback registered directly with libunicorn (no Python on the
per-block path). Same names and contract as the reference."""

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

cdef extern from "unicorn/riscv.h":
    int UC_RISCV_REG_SIE
    int UC_RISCV_REG_SSTATUS
    int UC_RISCV_REG_PRIV

DEF SSTATUS_SIE = 2


cdef struct budget_state:
    int64_t icount
    int64_t stop_at
    uint64_t sip
    uint64_t sie
    uint64_t blk_pc
    uint64_t blk_size
    int stopped
    int irq_stop


cdef inline bint _irq_deliverable(uc_engine *uc, budget_state *s) noexcept nogil:
    # S-mode CSRs cannot be read from U-mode (unicorn checks the current
    # privilege), but sie only changes in S-mode: use the cached value there.
    cdef uint64_t sie = 0, priv = 0, sstatus = 0
    if uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv) != 0 or priv == 0:
        return (s.sip & s.sie) != 0
    if uc_reg_read(uc, UC_RISCV_REG_SIE, &sie) == 0:
        s.sie = sie
    if not (s.sip & s.sie):
        return False
    if uc_reg_read(uc, UC_RISCV_REG_SSTATUS, &sstatus) != 0:
        return False
    return (sstatus & SSTATUS_SIE) != 0


cdef void _on_block(uc_engine *uc, uint64_t address, uint32_t size,
                    void *user) noexcept nogil:
    cdef budget_state *s = <budget_state *>user
    if s.stopped:
        return
    if s.icount >= s.stop_at:
        s.stopped = 1
        uc_emu_stop(uc)
        return
    if s.sip and _irq_deliverable(uc, s):
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
        self.s.sip = 0
        self.s.sie = 0
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

    def set_sip(self, unsigned long long sip, unsigned long long sie):
        """Tell the hook which interrupts are pending (sip bits) and the
        current sie (read by the caller with M privilege)."""
        self.s.sip = sip
        self.s.sie = sie

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
    def sip(self):
        return self.s.sip

    @property
    def sie(self):
        return self.s.sie

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
