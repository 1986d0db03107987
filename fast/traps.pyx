# cython: language_level=3
"""Compiled twin of emu/machine/traps.py's TrapCore: the register work of the
trap path - trap entry, the interrupt check, CSR access with PRIV swapped,
the slice's start and its pc/privilege, SBI arguments and results, counter
emulation - through libunicorn's C API, registers in batches. Same names and
contract as the reference; tests/test_traps_diff.py holds the two together."""

from libc.stdint cimport uint64_t, int64_t

cdef extern from "unicorn/unicorn.h":
    ctypedef struct uc_engine:
        pass
    ctypedef int uc_err
    uc_err uc_reg_read(uc_engine *uc, int regid, void *value)
    uc_err uc_reg_write(uc_engine *uc, int regid, const void *value)
    uc_err uc_reg_read_batch(uc_engine *uc, int *regs, void **vals, int count)
    uc_err uc_reg_write_batch(uc_engine *uc, int *regs, void **vals, int count)
    uc_err uc_emu_start(uc_engine *uc, uint64_t begin, uint64_t until, uint64_t timeout,
                        size_t count)

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


cdef class TrapCore:
    """Same contract as emu.machine.traps.TrapCore."""

    cdef object uc
    cdef uc_engine *eng

    def __init__(self, uc):
        self.uc = uc
        self.eng = <uc_engine *><size_t>uc._uch.value

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
        cdef int mpriv, r_status, r_cause, r_tval, r_epc, r_tvec, pp_shift, pp_bits
        cdef uint64_t ie, pie
        mpriv, r_status, r_cause, r_tval, r_epc, r_tvec, ie, pie, pp_shift, pp_bits = mode
        cdef uint64_t prev = 0, m = 3, st = 0, tvec = 0, pc, base
        cdef uint64_t pp_max = ((<uint64_t>1) << pp_bits) - 1
        cdef uint64_t vcause = (INTERRUPT_BIT if interrupt else 0) | cause
        cdef uint64_t vtval = tval & 0xFFFF_FFFF_FFFF_FFFF
        cdef uint64_t vepc = epc & 0xFFFF_FFFF_FFFF_FFFF
        cdef uint64_t npriv = mpriv
        cdef int rregs[2]
        cdef void *rvals[2]
        cdef int wregs[6]
        cdef void *wvals[6]
        uc_reg_read(self.eng, UC_RISCV_REG_PRIV, &prev)
        uc_reg_write(self.eng, UC_RISCV_REG_PRIV, &m)
        rregs[0] = r_status
        rregs[1] = r_tvec
        rvals[0] = &st
        rvals[1] = &tvec
        uc_reg_read_batch(self.eng, rregs, rvals, 2)
        st = (st & ~(pp_max << pp_shift)) | ((prev if prev < pp_max else pp_max) << pp_shift)
        st = (st & ~pie) | (pie if st & ie else 0)
        st &= ~ie
        base = tvec & ~(<uint64_t>3)
        pc = base + 4 * cause if (interrupt and (tvec & 3) == 1) else base
        wregs[0] = r_status
        wregs[1] = r_cause
        wregs[2] = r_tval
        wregs[3] = r_epc
        wregs[4] = UC_RISCV_REG_PRIV
        wregs[5] = UC_RISCV_REG_PC
        wvals[0] = &st
        wvals[1] = &vcause
        wvals[2] = &vtval
        wvals[3] = &vepc
        wvals[4] = &npriv
        wvals[5] = &pc
        uc_reg_write_batch(self.eng, wregs, wvals, 6)
        return pc

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
        cdef uint64_t p = 0, m = 3, mie = 0, mideleg = 0
        cdef int regs[2]
        cdef void *vals[2]
        uc_reg_read(self.eng, UC_RISCV_REG_PRIV, &p)
        uc_reg_write(self.eng, UC_RISCV_REG_PRIV, &m)
        regs[0] = UC_RISCV_REG_MIE
        regs[1] = UC_RISCV_REG_MIDELEG
        vals[0] = &mie
        vals[1] = &mideleg
        uc_reg_read_batch(self.eng, regs, vals, 2)
        uc_reg_write(self.eng, UC_RISCV_REG_PRIV, &p)
        return mie, mideleg

    def deliverable_irq(self, uint64_t lines):
        """The interrupt the hart takes now, or NO_IRQ (privileged spec
        3.1.9; see the reference's docstring)."""
        cdef uint64_t p = 0, m = 3, mip = 0, mie = 0, mideleg = 0, status = 0
        cdef uint64_t pending, to_m, to_s
        cdef int regs[4]
        cdef void *vals[4]
        cdef int i
        uc_reg_read(self.eng, UC_RISCV_REG_PRIV, &p)
        uc_reg_write(self.eng, UC_RISCV_REG_PRIV, &m)
        regs[0] = UC_RISCV_REG_MIP
        regs[1] = UC_RISCV_REG_MIE
        regs[2] = UC_RISCV_REG_MIDELEG
        regs[3] = UC_RISCV_REG_MSTATUS
        vals[0] = &mip
        vals[1] = &mie
        vals[2] = &mideleg
        vals[3] = &status
        uc_reg_read_batch(self.eng, regs, vals, 4)
        uc_reg_write(self.eng, UC_RISCV_REG_PRIV, &p)
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
        """emu_start at `pc` with no end address, straight through the C API.
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
