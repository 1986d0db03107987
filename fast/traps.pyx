# cython: language_level=3
"""Compiled twin of emu/machine/traps.py's TrapCore: the register work of the
trap path - trap entry, the interrupt check, CSR access with PRIV swapped,
the slice's start and its pc/privilege, SBI arguments and results, counter
emulation - through libunicorn's C API, registers in batches. Same names and
contract as the reference; tests/test_traps_diff.py holds the two together."""

from libc.stdint cimport uint64_t, int64_t, uint32_t, uint16_t
from cpython.ref cimport PyObject

cdef extern from "unicorn/unicorn.h" nogil:
    ctypedef struct uc_engine:
        pass
    ctypedef int uc_err
    uc_err uc_reg_read(uc_engine *uc, int regid, void *value)
    uc_err uc_reg_write(uc_engine *uc, int regid, const void *value)
    uc_err uc_reg_read_batch(uc_engine *uc, int *regs, void **vals, int count)
    uc_err uc_reg_write_batch(uc_engine *uc, int *regs, void **vals, int count)
    uc_err uc_emu_start(uc_engine *uc, uint64_t begin, uint64_t until, uint64_t timeout,
                        size_t count)
    ctypedef size_t uc_hook
    int UC_HOOK_INTR
    int UC_PROT_EXEC
    uc_err uc_hook_add(uc_engine *uc, uc_hook *hh, int type, void *callback,
                       void *user_data, uint64_t begin, uint64_t end, ...)
    uc_err uc_hook_del(uc_engine *uc, uc_hook hh)
    uc_err uc_vmem_read(uc_engine *uc, uint64_t address, int prot, void *bytes,
                        size_t size) nogil

cdef extern from "unicorn/riscv.h":
    int UC_RISCV_REG_PC
    int UC_RISCV_REG_PRIV
    int UC_RISCV_REG_X0
    int UC_RISCV_REG_A0
    int UC_RISCV_REG_A1
    int UC_RISCV_REG_SIE
    int UC_RISCV_REG_SSTATUS
    int UC_RISCV_REG_MIE
    int UC_RISCV_REG_MIP
    int UC_RISCV_REG_MIDELEG
    int UC_RISCV_REG_MEDELEG
    int UC_RISCV_REG_MSTATUS
    int UC_RISCV_REG_SCAUSE
    int UC_RISCV_REG_STVAL
    int UC_RISCV_REG_SEPC
    int UC_RISCV_REG_STVEC
    int UC_RISCV_REG_MCAUSE
    int UC_RISCV_REG_MTVAL
    int UC_RISCV_REG_MEPC
    int UC_RISCV_REG_MTVEC
    int UC_RISCV_REG_MCOUNTEREN
    int UC_RISCV_REG_SCOUNTEREN

DEF SSTATUS_SIE = 2
DEF MSTATUS_MIE = 8
NO_IRQ = -1
# Priority orders (privileged spec 3.1.9): into M, MEI MSI MTI SEI SSI STI;
# into S, SEI SSI STI.
cdef int M_PRIORITY[6]
M_PRIORITY[:] = [11, 3, 7, 9, 1, 5]
cdef int S_PRIORITY[3]
S_PRIORITY[:] = [9, 1, 5]

from emu.machine.traps import M_MODE, S_MODE
cdef uint64_t INTERRUPT_BIT = (<uint64_t>1) << 63

include "budget_state.pxi"

DEF CSR_TIME = 0xC01
DEF COUNTEREN_TM = 2
DEF NS_PER_TICK = 100     # the CLINT's 10 MHz timebase (emu/devices/clint.py)


cdef struct trap_mode:
    # One privilege level's trap registers (emu.machine.traps.TrapMode).
    uint64_t priv
    int status, cause, tval, epc, tvec
    uint64_t ie, pie
    int pp_shift, pp_bits


cdef trap_mode _mode(m):
    cdef trap_mode t
    t.priv, t.status, t.cause, t.tval, t.epc, t.tvec, t.ie, t.pie, t.pp_shift, t.pp_bits = m
    return t


cdef trap_mode MODE_S = _mode(S_MODE)
cdef trap_mode MODE_M = _mode(M_MODE)


cdef uint64_t _enter(uc_engine *eng, trap_mode *t, uint64_t cause, uint64_t tval,
                     uint64_t epc, bint interrupt) noexcept nogil:
    # Trap entry into t's mode (privileged spec 3.1.6-3.1.7, 4.1.1): the
    # previous privilege into xPP, xIE into xPIE, xIE cleared, cause, tval,
    # epc, and pc from xtvec (vectored: interrupts at base + 4 x cause).
    # Returns the new pc. Same steps as TrapCore.enter_trap (the reference).
    cdef uint64_t prev = 0, m = 3, st = 0, tvec = 0, pc, base
    cdef uint64_t pp_max = ((<uint64_t>1) << t.pp_bits) - 1
    cdef uint64_t vcause = (INTERRUPT_BIT if interrupt else 0) | cause
    cdef uint64_t npriv = t.priv
    cdef int rregs[2]
    cdef void *rvals[2]
    cdef int wregs[6]
    cdef void *wvals[6]
    uc_reg_read(eng, UC_RISCV_REG_PRIV, &prev)
    uc_reg_write(eng, UC_RISCV_REG_PRIV, &m)
    rregs[0] = t.status
    rregs[1] = t.tvec
    rvals[0] = &st
    rvals[1] = &tvec
    uc_reg_read_batch(eng, rregs, rvals, 2)
    st = (st & ~(pp_max << t.pp_shift)) | ((prev if prev < pp_max else pp_max) << t.pp_shift)
    st = (st & ~t.pie) | (t.pie if st & t.ie else 0)
    st &= ~t.ie
    base = tvec & ~(<uint64_t>3)
    pc = base + 4 * cause if (interrupt and (tvec & 3) == 1) else base
    wregs[0] = t.status
    wregs[1] = t.cause
    wregs[2] = t.tval
    wregs[3] = t.epc
    wregs[4] = UC_RISCV_REG_PRIV
    wregs[5] = UC_RISCV_REG_PC
    wvals[0] = &st
    wvals[1] = &vcause
    wvals[2] = &tval
    wvals[3] = &epc
    wvals[4] = &npriv
    wvals[5] = &pc
    uc_reg_write_batch(eng, wregs, wvals, 6)
    return pc


cdef struct intr_state:
    uc_engine *eng
    budget_state *budget      # the block budget's C state, or NULL
    int fast                  # handle ecall and rdtime here (no observer wants them)
    int builtin_sbi           # ecall from S is an SBI call: always the Python path
    uint64_t traps[16]        # exceptions delivered here, by cause (drained per slice)
    uint64_t user_traps
    uint64_t rdtime_reads
    int64_t ns_per_insn       # mtime = (icount x ns_per_insn + base_ns) / 100 + delta
    int64_t base_ns
    uint64_t delta
    PyObject *slow            # the Python handler: slow(intno)


cdef inline void _m_read(uc_engine *eng, int *regs, void **vals, int n) noexcept nogil:
    # Read CSRs with PRIV temporarily M (host CSR accesses are privilege-checked).
    cdef uint64_t p = 0, m = 3
    uc_reg_read(eng, UC_RISCV_REG_PRIV, &p)
    uc_reg_write(eng, UC_RISCV_REG_PRIV, &m)
    uc_reg_read_batch(eng, regs, vals, n)
    uc_reg_write(eng, UC_RISCV_REG_PRIV, &p)


cdef void _rearm(intr_state *st, uint64_t npriv) noexcept nogil:
    # After a trap delivered here: what Traps.arm tells the budget - mip,
    # mie, mideleg, whether the hart is in M - and that the next block
    # starts at the vector, not behind the ecall.
    cdef budget_state *b = st.budget
    cdef uint64_t mip = 0, mie = 0, mideleg = 0
    cdef int regs[3]
    cdef void *vals[3]
    if b == NULL:
        return
    regs[0] = UC_RISCV_REG_MIP
    regs[1] = UC_RISCV_REG_MIE
    regs[2] = UC_RISCV_REG_MIDELEG
    vals[0] = &mip
    vals[1] = &mie
    vals[2] = &mideleg
    _m_read(st.eng, regs, vals, 3)
    b.umip = mip
    b.mie = mie
    b.mideleg = mideleg
    b.in_m = 1 if npriv == 3 else 0
    b.expect_valid = 0
    b.masked = 0
    b.after_system = SYS_INSIDE


cdef bint _ecall(intr_state *st, uint64_t priv) noexcept nogil:
    # ecall from U, from S (no built-in firmware) or from M: cause 8, 9, 11,
    # delivered where medeleg sends it; unicorn has moved pc past it.
    cdef uint64_t pc = 0, medeleg = 0, cause
    cdef int regs[1]
    cdef void *vals[1]
    cdef trap_mode *t
    cause = 8 if priv == 0 else (9 if priv == 1 else 11)
    uc_reg_read(st.eng, UC_RISCV_REG_PC, &pc)
    regs[0] = UC_RISCV_REG_MEDELEG
    vals[0] = &medeleg
    _m_read(st.eng, regs, vals, 1)
    t = &MODE_S if priv <= 1 and (medeleg >> cause) & 1 else &MODE_M
    _enter(st.eng, t, cause, 0, pc - 4, False)
    st.traps[cause] += 1
    if priv == 0:
        st.user_traps += 1
    _rearm(st, t.priv)
    return True


cdef bint _rdtime(intr_state *st, uint64_t priv) noexcept nogil:
    # `csrr rd, time` traps as illegal in unicorn: answer it from the CLINT's
    # mtime where mcounteren/scounteren allow (Exits._time_readable), as
    # Exits._handle_intr does. False: leave it to the Python path.
    cdef uint64_t pc = 0, mcen = 0, scen = 0, mtime, value
    cdef uint32_t insn = 0
    cdef budget_state *b = st.budget
    cdef int regs[2]
    cdef void *vals[2]
    cdef int rd
    if b == NULL:
        return False
    uc_reg_read(st.eng, UC_RISCV_REG_PC, &pc)
    if b.blk_pc <= pc < b.blk_pc + b.blk_size:
        return False              # instructions behind it in the block: the reference uncounts
    if uc_vmem_read(st.eng, pc - 4, UC_PROT_EXEC, &insn, 4) != 0:
        return False
    if (insn & 0x7F) != 0x73 or ((insn >> 12) & 7) != 2 or ((insn >> 15) & 31) != 0 \
            or (insn >> 20) != CSR_TIME:
        return False
    rd = (insn >> 7) & 31
    if priv != 3:
        regs[0] = UC_RISCV_REG_MCOUNTEREN
        regs[1] = UC_RISCV_REG_SCOUNTEREN
        vals[0] = &mcen
        vals[1] = &scen
        _m_read(st.eng, regs, vals, 2)
        if not (mcen & COUNTEREN_TM) or (priv == 0 and not (scen & COUNTEREN_TM)):
            return False
    mtime = <uint64_t>((b.icount * st.ns_per_insn + st.base_ns) // NS_PER_TICK) + st.delta
    if rd:
        value = mtime
        uc_reg_write(st.eng, UC_RISCV_REG_X0 + rd, &value)
    st.rdtime_reads += 1
    return True


cdef void _on_intr(uc_engine *eng, uint32_t intno, void *user) noexcept nogil:
    cdef intr_state *st = <intr_state *>user
    cdef uint64_t priv = 0
    if st.fast:
        uc_reg_read(eng, UC_RISCV_REG_PRIV, &priv)
        if intno == 8 and not (priv == 1 and st.builtin_sbi):
            if _ecall(st, priv):
                return
        elif intno == 2:
            if _rdtime(st, priv):
                return
    with gil:
        (<object>st.slow)(intno)


cdef class TrapCore:
    """Same contract as emu.machine.traps.TrapCore."""

    cdef object uc
    cdef uc_engine *eng
    cdef intr_state ist
    cdef uc_hook intr_hh
    cdef object slow
    cdef object budget

    def __init__(self, uc):
        self.uc = uc
        self.eng = <uc_engine *><size_t>uc._uch.value
        self.ist.eng = self.eng
        self.ist.budget = NULL
        self.ist.fast = 0
        self.ist.ns_per_insn = 1
        self.ist.base_ns = 0
        self.ist.delta = 0
        self.ist.user_traps = 0
        self.ist.rdtime_reads = 0
        for i in range(16):
            self.ist.traps[i] = 0

    def install_intr(self, handler, budget, bint builtin_sbi):
        """Serve UC_HOOK_INTR: ecall and `csrr rd, time` in C while
        set_intr_fast(True) (counted for drain_intr), everything else - and
        everything while it is False - by handler(intno), the reference's
        path. `budget` is the block budget (its C state is rearmed after a
        trap delivered here)."""
        self.slow = handler
        self.budget = budget
        self.ist.slow = <PyObject *>handler
        addr = getattr(budget, "state_address", None)
        self.ist.budget = <budget_state *><size_t>addr if addr is not None else NULL
        self.ist.builtin_sbi = 1 if builtin_sbi else 0
        cdef uc_err err = uc_hook_add(self.eng, &self.intr_hh, UC_HOOK_INTR, <void *>_on_intr,
                                      <void *>&self.ist, 1, 0)
        if err != 0:
            raise RuntimeError(f"uc_hook_add(UC_HOOK_INTR) failed: {err}")

    def set_intr_fast(self, bint fast):
        """Let the C hook deliver ecalls and answer rdtime (no trap observer,
        no held trap, no trap log wants to see them)."""
        self.ist.fast = 1 if fast and self.ist.budget != NULL else 0

    def set_time(self, long long ns_per_insn, long long base_ns, unsigned long long delta):
        """What rdtime reads: (icount x ns_per_insn + base_ns) / 100 + delta."""
        self.ist.ns_per_insn = ns_per_insn
        self.ist.base_ns = base_ns
        self.ist.delta = delta

    def drain_intr(self):
        """({cause: n} delivered, user traps, rdtime reads) since the last
        drain, handled by the C hook; zeroes them."""
        out = {}
        for i in range(16):
            if self.ist.traps[i]:
                out[i] = self.ist.traps[i]
                self.ist.traps[i] = 0
        user, reads = self.ist.user_traps, self.ist.rdtime_reads
        self.ist.user_traps = 0
        self.ist.rdtime_reads = 0
        return out, user, reads

    cdef inline uint64_t _csr(self, int regid):
        cdef uint64_t p = 0, m = 3, v = 0
        uc_reg_read(self.eng, UC_RISCV_REG_PRIV, &p)
        uc_reg_write(self.eng, UC_RISCV_REG_PRIV, &m)
        uc_reg_read(self.eng, regid, &v)
        uc_reg_write(self.eng, UC_RISCV_REG_PRIV, &p)
        return v

    def csr(self, int regid):
        """Read CSR `regid` (a unicorn register id)."""
        return self._csr(regid)

    def set_csr(self, int regid, value):
        """Write CSR `regid`."""
        cdef uint64_t p = 0, m = 3
        cdef uint64_t v = value & 0xFFFF_FFFF_FFFF_FFFF
        uc_reg_read(self.eng, UC_RISCV_REG_PRIV, &p)
        uc_reg_write(self.eng, UC_RISCV_REG_PRIV, &m)
        uc_reg_write(self.eng, regid, &v)
        uc_reg_write(self.eng, UC_RISCV_REG_PRIV, &p)

    def enter_trap(self, mode, uint64_t cause, tval, epc, bint interrupt=False):
        """Take a trap into `mode` (a TrapMode) as the privileged spec
        describes; returns the new pc."""
        cdef trap_mode t = _mode(mode)
        return _enter(self.eng, &t, cause, tval & 0xFFFF_FFFF_FFFF_FFFF,
                      epc & 0xFFFF_FFFF_FFFF_FFFF, interrupt)

    def take_trap(self, uint64_t cause, tval, epc, bint interrupt=False):
        """Deliver a trap where the delegation registers send it: to S from
        U or S when medeleg/mideleg has the cause's bit, else to M. Returns
        the new pc."""
        cdef uint64_t priv = 0
        uc_reg_read(self.eng, UC_RISCV_REG_PRIV, &priv)
        cdef uint64_t deleg = self._csr(UC_RISCV_REG_MIDELEG if interrupt else
                                        UC_RISCV_REG_MEDELEG)
        mode = S_MODE if priv <= 1 and (deleg >> cause) & 1 else M_MODE
        return self.enter_trap(mode, cause, tval, epc, interrupt)

    def mip(self):
        """mip as unicorn holds it (the bits software wrote)."""
        return self._csr(UC_RISCV_REG_MIP)

    def enables(self):
        """(mie, mideleg)."""
        cdef uint64_t mie = 0, mideleg = 0
        cdef int regs[2]
        cdef void *vals[2]
        regs[0] = UC_RISCV_REG_MIE
        regs[1] = UC_RISCV_REG_MIDELEG
        vals[0] = &mie
        vals[1] = &mideleg
        _m_read(self.eng, regs, vals, 2)
        return mie, mideleg

    def deliverable_irq(self, uint64_t lines):
        """The interrupt the hart takes now, or NO_IRQ (privileged spec
        3.1.9; see the reference's docstring)."""
        cdef uint64_t p = 0, mip = 0, mie = 0, mideleg = 0, status = 0
        cdef uint64_t pending, to_m, to_s
        cdef int regs[4]
        cdef void *vals[4]
        cdef int i
        uc_reg_read(self.eng, UC_RISCV_REG_PRIV, &p)
        regs[0] = UC_RISCV_REG_MIP
        regs[1] = UC_RISCV_REG_MIE
        regs[2] = UC_RISCV_REG_MIDELEG
        regs[3] = UC_RISCV_REG_MSTATUS
        vals[0] = &mip
        vals[1] = &mie
        vals[2] = &mideleg
        vals[3] = &status
        _m_read(self.eng, regs, vals, 4)
        pending = (lines | mip) & mie
        if not pending:
            return NO_IRQ
        to_m = pending & ~mideleg
        if to_m and (p < 3 or (status & MSTATUS_MIE)):
            for i in range(6):
                if (to_m >> M_PRIORITY[i]) & 1:
                    return M_PRIORITY[i]
        to_s = pending & mideleg
        if to_s and (p == 0 or (p == 1 and (status & SSTATUS_SIE))):
            for i in range(3):
                if (to_s >> S_PRIORITY[i]) & 1:
                    return S_PRIORITY[i]
        return NO_IRQ

    def run(self, uint64_t pc):
        """emu_start at `pc` (the engine has no exit address: emu/machine/cpu.py), straight through the C API.
        Returns 0 or unicorn's error code; an exception a Python hook kept
        (the binding's _hook_exception) is raised, as the binding does."""
        uc = self.uc
        uc._hook_exception = None
        cdef uc_err err = uc_emu_start(self.eng, pc, 0, 0, 0)
        if err != 0:
            return err
        exc = uc._hook_exception
        if exc is not None:
            uc._hook_exception = None
            raise exc
        return 0

    def pc_priv(self):
        """(pc, privilege) now."""
        cdef uint64_t pc = 0, priv = 0
        cdef int regs[2]
        cdef void *vals[2]
        regs[0] = UC_RISCV_REG_PC
        regs[1] = UC_RISCV_REG_PRIV
        vals[0] = &pc
        vals[1] = &priv
        uc_reg_read_batch(self.eng, regs, vals, 2)
        return pc, priv

    def gpr(self, int n):
        """x[n] (0 <= n < 32)."""
        cdef uint64_t v = 0
        if not 0 <= n < 32:
            raise ValueError(f"no register x{n}")
        uc_reg_read(self.eng, UC_RISCV_REG_X0 + n, &v)
        return v

    def sbi_args(self):
        """a0..a7 of an SBI call."""
        cdef uint64_t v[8]
        cdef int regs[8]
        cdef void *vals[8]
        cdef int i
        for i in range(8):
            regs[i] = UC_RISCV_REG_A0 + i
            vals[i] = &v[i]
            v[i] = 0
        uc_reg_read_batch(self.eng, regs, vals, 8)
        return (v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])

    def sbi_return(self, a0, a1):
        """Set an SBI call's results (a1 untouched when None)."""
        cdef uint64_t v0 = a0 & 0xFFFF_FFFF_FFFF_FFFF, v1
        uc_reg_write(self.eng, UC_RISCV_REG_A0, &v0)
        if a1 is not None:
            v1 = a1 & 0xFFFF_FFFF_FFFF_FFFF
            uc_reg_write(self.eng, UC_RISCV_REG_A1, &v1)
