# cython: language_level=3
"""Compiled twin of emu/machine/budget.py: the block-budget and interrupt-window hook
as a C callback registered directly with libunicorn (no Python on the
per-block path). Same names and contract as the reference (its docstring
explains the interrupt window for M and S)."""

from libc.stdint cimport uint64_t, uint32_t, uint16_t, int64_t, uint8_t
from libc.string cimport memcmp, memcpy

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
    int UC_PROT_EXEC
    uc_err uc_vmem_read(uc_engine *uc, uint64_t address, int prot, void *bytes,
                        size_t size) nogil
    ctypedef int uc_control_type
    int UC_CTL_TLB_FLUSH
    uc_control_type UC_CTL_WRITE(int ctl, int nr) nogil
    uc_err uc_ctl(uc_engine *uc, uc_control_type control, ...) nogil

cdef extern from "unicorn/riscv.h":
    int UC_RISCV_REG_SIE
    int UC_RISCV_REG_SSTATUS
    int UC_RISCV_REG_MIE
    int UC_RISCV_REG_MIP
    int UC_RISCV_REG_MSTATUS
    int UC_RISCV_REG_PRIV
    int UC_RISCV_REG_PC
    int UC_RISCV_REG_SEPC
    int UC_RISCV_REG_MEPC
    int UC_RISCV_REG_SATP

DEF SSTATUS_SIE = 2
DEF MSTATUS_MIE = 8
DEF PRIV_M = 3
include "budget_state.pxi"


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


cdef uint64_t _count_insns(uc_engine *uc, uint64_t pc, uint64_t size,
                           int *system) noexcept nogil:
    # Instructions in [pc, pc+size) as the hart fetches them now: a 16-bit
    # parcel whose low two bits are not 11 is a compressed instruction
    # (unprivileged spec, "Expanded Instruction-Length Encoding"). If the
    # bytes cannot be read, 4-byte instructions are assumed, at least one.
    # *system: SYS_* for the range's SYSTEM-opcode instructions.
    cdef uint8_t buf[MAX_BLOCK]
    cdef uint64_t i = 0, n = 0
    cdef uint32_t insn
    system[0] = SYS_INSIDE
    if size == 0:
        return 0
    if size > MAX_BLOCK or uc_vmem_read(uc, pc, UC_PROT_EXEC, buf, size) != 0:
        return (size + 3) >> 2
    system[0] = SYS_NONE
    while i < size:
        if (buf[i] & 3) != 3:
            i += 2
        else:
            if (buf[i] & 0x7F) == 0x0F and (buf[i + 1] & 0x70) == 0x10 and i + 4 >= size:
                system[0] = SYS_FENCE_I     # MISC-MEM, funct3 001: fence.i (ends its block)
            elif (buf[i] & 0x7F) == 0x73 and i + 4 <= size:
                insn = buf[i] | (<uint32_t>buf[i + 1] << 8) | (<uint32_t>buf[i + 2] << 16) \
                    | (<uint32_t>buf[i + 3] << 24)
                if i + 4 < size:
                    system[0] = SYS_INSIDE
                elif insn == 0x10200073:
                    system[0] = SYS_SRET
                elif insn == 0x30200073:
                    system[0] = SYS_MRET
                elif (insn >> 20) == 0x180 and ((insn >> 12) & 7) != 0:
                    system[0] = SYS_SATP    # csrrw/s/c(i) satp (a CSR access ends its block)
                elif 0x3A0 <= (insn >> 20) <= 0x3EF and ((insn >> 12) & 7) != 0:
                    system[0] = SYS_PMP     # pmpcfg0-15, pmpaddr0-63
                else:
                    system[0] = SYS_LAST
            i += 4
        n += 1
    return n


cdef inline void _satp_warl(uc_engine *uc, budget_state *s) noexcept nogil:
    # After a satp access: a MODE other than Bare or Sv39 is a write with no
    # effect (priv. spec 4.1.11: satp is WARL). unicorn 2.1.4 takes Sv48 and
    # Sv57, which our walker cannot serve and Linux probes for by writing
    # and reading back: put the previous value back before anything runs.
    # (The access ran in S or M: from U it traps, and satp is unchanged.)
    cdef uint64_t satp = 0, priv = 0
    uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv)
    if (priv & 3) == 0:
        return
    uc_reg_read(uc, UC_RISCV_REG_SATP, &satp)
    if (satp >> 60) == 0 or (satp >> 60) == 8:
        s.good_satp = satp
    else:
        uc_reg_write(uc, UC_RISCV_REG_SATP, &s.good_satp)
        s.satp_ignored += 1


cdef inline bint _cached(budget_state *s, count_entry *e, uint64_t pc,
                         uint32_t size) noexcept nogil:
    # `e` (pc's slot) holds pc's block as it is now: same size, and counted
    # in the MMU's current code epoch
    return e.pc == pc and e.size == size and e.epoch == s.code_epoch[0] + s.own_epoch


cdef inline void _count(budget_state *s, const count_entry *e, uint64_t address,
                        uint32_t size) noexcept nogil:
    # Let the block at `address` run: count it, and remember what the next
    # block's hook must check (SYSTEM instructions, where it must start).
    s.after_system = e.system
    s.expect = address + size
    s.expect_valid = 1
    s.blk_pc = address
    s.blk_size = size
    s.icount += e.n


cdef inline count_entry *_block(uc_engine *uc, budget_state *s, uint64_t pc,
                                uint32_t size) noexcept nogil:
    # Cached per translated block: valid while the MMU's code epoch stays
    # (a fetch fill that maps a page elsewhere or finds it changed moves it).
    cdef count_entry *e = &s.cache[(pc >> 1) & (NCACHE - 1)]
    cdef int system = 1
    if _cached(s, e, pc, size):
        return e
    e.pc = pc
    e.size = size
    e.epoch = s.code_epoch[0] + s.own_epoch
    e.n = <uint16_t>_count_insns(uc, pc, size, &system)
    e.system = <uint16_t>system
    s.counted += 1
    return e


cdef void _on_block_full(uc_engine *uc, uint64_t address, uint32_t size,
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
    if s.after_system:
        # Only a SYSTEM instruction changes the privilege, the enables or
        # mip while the hart runs; the machine's own changes come through
        # set_irq_state / set_stop / start, which set after_system.
        if s.after_system == SYS_FENCE_I:
            # code may have changed in place: refill every translation, so
            # the MMU checks each code page again (emu/mmu/tlb.py)
            uc_ctl(uc, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0))
            s.fence_i += 1
        if s.after_system == SYS_SATP:
            _satp_warl(uc, s)
        if s.pmp_state != NULL and (s.after_system == SYS_PMP or s.after_system == SYS_INSIDE) \
                and memcmp(s.pmp_seen, s.pmp_state, 256) != 0:
            # a PMP write: cached translations hold the old rights
            memcpy(s.pmp_seen, s.pmp_state, 256)
            uc_ctl(uc, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0))
            s.pmp_flushes += 1
        if s.after_system >= SYS_LAST and s.expect_valid:
            if s.after_system == SYS_SRET:
                uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv)
                s.expect = _m_csr(uc, UC_RISCV_REG_SEPC, priv)
            elif s.after_system == SYS_MRET:
                uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv)
                s.expect = _m_csr(uc, UC_RISCV_REG_MEPC, priv)
            if address != s.expect:         # unicorn delivered an interrupt itself
                s.stopped = 1
                s.native_trap = 1
                uc_emu_stop(uc)
                return
        if s.in_m:
            uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv)
            have_priv = True
            if priv != PRIV_M:                  # an mret: what did M leave pending?
                s.in_m = 0
                s.umip = _m_csr(uc, UC_RISCV_REG_MIP, priv)
        s.masked = 0
    if (s.lines | s.umip) and not s.masked:
        if not have_priv:
            uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv)
        if _irq_deliverable(uc, s, priv):
            s.stopped = 1
            s.irq_stop = 1
            uc_emu_stop(uc)
            return
        s.masked = 1
    _count(s, _block(uc, s, address, size), address, size)


# Called through a pointer so that the C compiler keeps the whole hook out of
# the leaf path (inlined, its saved registers would be pushed on every block).
ctypedef void (*block_hook_fn)(uc_engine *, uint64_t, uint32_t, void *) noexcept nogil
cdef block_hook_fn _full_hook = _on_block_full


cdef void _on_block(uc_engine *uc, uint64_t address, uint32_t size,
                    void *user) noexcept nogil:
    # The hook unicorn calls before every block. Most blocks need only the
    # count: nothing stopped, the slice not over, no SYSTEM instruction in
    # the block before, no pending interrupt unchecked, the block's count
    # cached. That path is this leaf function, small enough to need no
    # saved registers; anything else is the whole hook (_on_block_full),
    # entered as a tail call, which does exactly what it did before this
    # path existed.
    cdef budget_state *s = <budget_state *>user
    cdef count_entry *e = &s.cache[(address >> 1) & (NCACHE - 1)]
    if s.stopped or s.icount >= s.stop_at or s.after_system \
            or ((s.lines | s.umip) and not s.masked) or not _cached(s, e, address, size):
        _full_hook(uc, address, size, user)
        return
    _count(s, e, address, size)


cdef class BlockBudget:
    """Counts instructions block by block; stops at `stop_at` or on an interrupt.

    Same contract as emu.budget.BlockBudget.
    """

    cdef budget_state s
    cdef object uc
    cdef uc_hook hh
    cdef bint installed
    cdef uint64_t no_mmu_epoch
    cdef object epoch_owner

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
        self.s.counted = 0
        self.s.masked = 0
        self.s.after_system = SYS_INSIDE
        self.s.expect = 0
        self.s.expect_valid = 0
        self.s.native_trap = 0
        self.s.pmp_state = NULL
        self.s.pmp_flushes = 0
        self.s.fence_i = 0
        self.s.good_satp = 0
        self.s.satp_ignored = 0
        self.s.own_epoch = 1          # never matches a zeroed cache entry
        self.no_mmu_epoch = 0
        self.s.code_epoch = &self.no_mmu_epoch
        self.epoch_owner = None
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
        self.s.native_trap = 0
        self.s.expect_valid = 0
        self.s.after_system = SYS_INSIDE   # the machine may have changed anything

    def start(self, unsigned long long pc):
        """A slice begins at `pc` (after set_stop): its first block must start
        there, or unicorn took an interrupt on entry."""
        self.s.expect = pc
        self.s.expect_valid = 1
        self.s.after_system = SYS_LAST

    def set_irq_state(self, unsigned long long lines, unsigned long long umip,
                      unsigned long long mie, unsigned long long mideleg, in_m):
        """Tell the hook what is pending (device `lines`, software-written
        `umip`), what mie and mideleg are, and whether the hart is in M."""
        self.s.lines = lines
        self.s.umip = umip
        self.s.mie = mie
        self.s.mideleg = mideleg
        self.s.in_m = 1 if in_m else 0
        self.s.expect_valid = 0
        if not self.s.after_system:
            self.s.after_system = SYS_INSIDE

    @property
    def error(self):
        """Always None: the C hook raises nothing (the reference keeps an
        exception raised inside its hook here)."""
        return None

    def watch_code(self, mmu):
        """Drop cached block counts whenever `mmu` (a fill hook exposing
        `code_epoch_address`) moves its code epoch on."""
        self.epoch_owner = mmu
        self.s.code_epoch = <uint64_t *><size_t>mmu.code_epoch_address

    def watch_pmp(self, size_t address):
        """Flush the TLB at the first block after a SYSTEM instruction that
        changed the PMP registers at `address` (emu.core.hartstate)."""
        self.s.pmp_state = <const unsigned char *>address
        memcpy(self.s.pmp_seen, self.s.pmp_state, 256)

    @property
    def fence_i(self):
        """fence.i instructions executed (each flushed the TLB)."""
        return self.s.fence_i

    @property
    def pmp_flushes(self):
        """TLB flushes done for a PMP change."""
        return self.s.pmp_flushes

    def satp_warl(self):
        """_satp_warl now (a fill failed before the next block could check):
        True if it undid a write."""
        cdef uint64_t before = self.s.satp_ignored
        _satp_warl(<uc_engine *><size_t>self.uc._uch.value, &self.s)
        return self.s.satp_ignored != before

    @property
    def satp_ignored(self):
        """satp writes of a MODE the walker lacks (Sv48, Sv57) undone."""
        return self.s.satp_ignored

    def forget_code(self):
        """Drop every cached block count (code changed in place)."""
        self.s.own_epoch += 1

    def retract_after(self, unsigned long long pc):
        """Uncount the instructions of the current block from `pc` on."""
        cdef uint64_t end = self.s.blk_pc + self.s.blk_size
        cdef uc_engine *eng = <uc_engine *><size_t>self.uc._uch.value
        cdef int system = 0
        if self.s.blk_pc <= pc < end:
            self.s.icount -= <int64_t>_count_insns(eng, pc, end - pc, &system)
            self.s.blk_size = pc - self.s.blk_pc

    @property
    def state_address(self):
        """Address of the C state (fast/budget_state.pxi), for the trap
        path's C interrupt hook."""
        return <size_t>&self.s

    @property
    def counted(self):
        """Blocks decoded to count their instructions (count-cache misses)."""
        return self.s.counted

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

    @property
    def native_trap(self):
        return bool(self.s.native_trap)


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
