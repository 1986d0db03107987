"""The trap path's twins agree: emu.machine.traps.TrapCore (the reference)
and emu._fast.traps.TrapCore (Cython, libunicorn's C API) driven with the
same random sequences of trap entries (causes, interrupts, vectored and
direct stvec and mtvec, from U, S and M, any sstatus/mstatus, delegated or
not by medeleg/mideleg), interrupt checks over random device lines and
enables in every privilege, CSR accesses and SBI argument and result
transfers must leave every register and CSR identical and return the same
values: 0 mismatches.
"""

from __future__ import annotations

import random

import pytest
import unicorn as U
from unicorn import riscv_const as R

from emu.core import isa, twins
from emu.machine.cpu import MIDELEG_S
from emu.machine.traps import M_MODE, NO_IRQ, S_MODE, TrapCore
from tests.conftest import need_fast

CSRS = (R.UC_RISCV_REG_SSTATUS, R.UC_RISCV_REG_SIE, R.UC_RISCV_REG_STVEC,
        R.UC_RISCV_REG_SSCRATCH, R.UC_RISCV_REG_SEPC, R.UC_RISCV_REG_SCAUSE,
        R.UC_RISCV_REG_STVAL, R.UC_RISCV_REG_SATP, R.UC_RISCV_REG_MSTATUS,
        R.UC_RISCV_REG_MEDELEG, R.UC_RISCV_REG_MIDELEG, R.UC_RISCV_REG_MIE,
        R.UC_RISCV_REG_MTVEC, R.UC_RISCV_REG_MEPC, R.UC_RISCV_REG_MCAUSE,
        R.UC_RISCV_REG_MTVAL, R.UC_RISCV_REG_MIP)
GPRS = tuple(R.UC_RISCV_REG_X0 + i for i in range(32))
SSTATUS_BITS = isa.SSTATUS_SIE | isa.SSTATUS_SPIE | isa.SSTATUS_SPP | isa.SSTATUS_SUM | \
    isa.SSTATUS_MXR


def _uc() -> U.Uc:
    """A hart set up as the machine's Cpu sets it: interrupts delegated to S
    (else sie reads as 0)."""
    uc = U.Uc(U.UC_ARCH_RISCV, U.UC_MODE_RISCV64)
    uc.mem_map(0x8000_0000, 0x1_0000)
    TrapCore(uc).set_csr(R.UC_RISCV_REG_MIDELEG, MIDELEG_S)
    return uc


def _state(core, uc: U.Uc) -> dict:
    st = {f"x{i}": uc.reg_read(r) for i, r in enumerate(GPRS)}
    st["pc"], st["priv"] = core.pc_priv()
    st.update({f"csr{r}": core.csr(r) for r in CSRS})
    return st


def _step(rng: random.Random, core, uc: U.Uc, op: int, args: tuple):
    """Apply operation `op` with `args` to one twin; returns its result."""
    if op == 0:
        return core.enter_trap(S_MODE, *args)
    if op == 1:
        lines, mie, mideleg, mstatus = args
        core.set_csr(R.UC_RISCV_REG_MIE, mie)
        core.set_csr(R.UC_RISCV_REG_MIDELEG, mideleg)
        core.set_csr(R.UC_RISCV_REG_MSTATUS, mstatus)
        return core.deliverable_irq(lines), core.mip(), core.enables()
    if op == 2:
        core.set_csr(*args)
        return None
    if op == 3:
        return core.csr(args[0])
    if op == 4:
        medeleg, mideleg, *trap = args
        core.set_csr(R.UC_RISCV_REG_MEDELEG, medeleg)
        core.set_csr(R.UC_RISCV_REG_MIDELEG, mideleg)
        return core.take_trap(*trap)
    if op == 7:
        return core.enter_trap(M_MODE, *args)
    if op == 5:
        core.sbi_return(*args)
        return core.sbi_args()
    if op == 8:
        n, value = args
        uc.reg_write(R.UC_RISCV_REG_X0 + n, value)
        return core.gpr(n)
    uc.reg_write(R.UC_RISCV_REG_PRIV, args[0])        # op 6: change privilege
    return core.pc_priv()


def _random_op(rng: random.Random) -> tuple[int, tuple]:
    op = rng.choice((0, 0, 0, 1, 1, 2, 2, 3, 4, 4, 5, 6, 7, 8))
    if op in (0, 7):
        interrupt = rng.random() < 0.4
        cause = rng.choice((1, 5, 9)) if interrupt else rng.choice(
            (0, 1, 2, 3, 5, 7, 8, 9, 12, 13, 15))
        return op, (cause, rng.getrandbits(64), rng.getrandbits(64) & ~1, interrupt)
    if op == 1:
        irqs = 0xAAA                     # SSIP MSIP STIP MTIP SEIP MEIP
        return op, (rng.getrandbits(12) & irqs, rng.getrandbits(12) & irqs,
                    rng.choice((MIDELEG_S, 0, rng.getrandbits(12) & 0x222)),
                    rng.getrandbits(64) & (SSTATUS_BITS | isa.MSTATUS_MIE | isa.MSTATUS_MPIE
                                           | 3 << isa.MSTATUS_MPP_SHIFT))
    if op == 2:
        reg = rng.choice(CSRS[:5] + (R.UC_RISCV_REG_MEDELEG, R.UC_RISCV_REG_MTVEC,
                                     R.UC_RISCV_REG_MIP))
        value = rng.getrandbits(64)
        if reg == R.UC_RISCV_REG_SSTATUS:
            value &= SSTATUS_BITS
        elif reg in (R.UC_RISCV_REG_STVEC, R.UC_RISCV_REG_MTVEC):
            value = 0x8000_0000 + (rng.getrandbits(12) << 2) + rng.choice((0, 1))
        elif reg in (R.UC_RISCV_REG_SIE, R.UC_RISCV_REG_MIP):
            value &= 0x222
        return op, (reg, value)
    if op == 3:
        return op, (rng.choice(CSRS),)
    if op == 4:
        interrupt = rng.random() < 0.4
        cause = rng.choice((1, 3, 5, 7, 9, 11)) if interrupt else rng.choice(
            (0, 1, 2, 3, 5, 7, 8, 9, 11, 12, 13, 15))
        return op, (rng.getrandbits(16), rng.choice((MIDELEG_S, 0, rng.getrandbits(12))),
                    cause, rng.getrandbits(64), rng.getrandbits(64) & ~1, interrupt)
    if op == 5:
        return op, (rng.getrandbits(64), rng.choice((None, rng.getrandbits(64))))
    if op == 8:
        return op, (rng.randrange(32), rng.getrandbits(64))
    return op, (rng.choice((0, 1, 3)),)


@pytest.mark.parametrize("seed", range(6))
def test_twins_agree_on_random_trap_sequences(seed):
    need_fast(twins.available("traps"), "the Cython trap-path twin")
    fast_cls = twins.compiled("traps").TrapCore
    rng = random.Random(seed)
    ucs = (_uc(), _uc())
    cores = (TrapCore(ucs[0]), fast_cls(ucs[1]))
    for uc, core in zip(ucs, cores, strict=True):
        core.set_csr(R.UC_RISCV_REG_STVEC, 0x8000_0100)
        core.set_csr(R.UC_RISCV_REG_MTVEC, 0x8000_0400)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 1)
    for r in GPRS[1:]:
        v = rng.getrandbits(64)
        for uc in ucs:
            uc.reg_write(r, v)
    mismatches = []
    for step in range(400):
        op, args = _random_op(rng)
        got = [_step(rng, core, uc, op, args) for core, uc in zip(cores, ucs, strict=True)]
        states = [_state(core, uc) for core, uc in zip(cores, ucs, strict=True)]
        if got[0] != got[1] or states[0] != states[1]:
            diff = {k: (states[0][k], states[1][k]) for k in states[0]
                    if states[0][k] != states[1][k]}
            mismatches.append((step, op, args, got, diff))
    assert not mismatches, mismatches[:3]


def test_reference_enter_trap_follows_the_spec():
    """The reference, checked by hand against the privileged spec: from U
    with SIE set, a vectored interrupt."""
    uc = _uc()
    core = TrapCore(uc)
    core.set_csr(R.UC_RISCV_REG_STVEC, 0x8000_0201)          # vectored
    core.set_csr(R.UC_RISCV_REG_SSTATUS, isa.SSTATUS_SIE | isa.SSTATUS_SPP)
    uc.reg_write(R.UC_RISCV_REG_PRIV, 0)
    pc = core.enter_trap(S_MODE, isa.IRQ_S_TIMER, 0, 0x1234, True)
    assert pc == 0x8000_0200 + 4 * isa.IRQ_S_TIMER
    st = core.csr(R.UC_RISCV_REG_SSTATUS)
    assert st & isa.SSTATUS_SPIE and not st & isa.SSTATUS_SIE and not st & isa.SSTATUS_SPP
    assert core.csr(R.UC_RISCV_REG_SCAUSE) == isa.INTERRUPT_BIT | isa.IRQ_S_TIMER
    assert core.csr(R.UC_RISCV_REG_SEPC) == 0x1234 and core.pc_priv() == (pc, 1)
    assert core.deliverable_irq(0) == NO_IRQ
    core.set_csr(R.UC_RISCV_REG_SIE, 0x222)
    uc.reg_write(R.UC_RISCV_REG_PRIV, 0)
    assert core.deliverable_irq(0x222) == isa.IRQ_S_EXT          # SEI > SSI > STI
    assert core.deliverable_irq(0x22) == isa.IRQ_S_SOFT
    uc.reg_write(R.UC_RISCV_REG_PRIV, 1)                          # S with SIE clear
    assert core.deliverable_irq(0x222) == NO_IRQ


@pytest.mark.parametrize("impl", ["python", "fast"])
def test_gpr_reads_each_register_and_refuses_a_bad_index(impl):
    """TrapCore.gpr (the fault-address decoder's register read) on each twin."""
    if impl == "fast":
        need_fast(twins.available("traps"), "the Cython trap-path twin")
    cls = TrapCore if impl == "python" else twins.compiled("traps").TrapCore
    uc = _uc()
    core = cls(uc)
    for n in range(1, 32):
        uc.reg_write(R.UC_RISCV_REG_X0 + n, (n << 56) | n)
    assert [core.gpr(n) for n in range(32)] == [0] + [(n << 56) | n for n in range(1, 32)]
    for bad in (-1, 32):
        with pytest.raises(ValueError, match="no register"):
            core.gpr(bad)
