"""The TLB fill hooks (pure PyFillHook and the C FillHook) driving a real
RV64 guest in unicorn's UC_TLB_VIRTUAL mode.

Small hand-encoded programs run in S- and U-mode with satp set: loads and
stores through a mapping, a page fault that stops emu_start with
UC_ERR_EXCEPTION and PC on the faulting instruction, A/D bits set in RAM,
SUM/MXR read from sstatus, fetch faults, M-mode identity, uninstall.
"""

from __future__ import annotations

import ctypes
import struct

import pytest
from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV64, UC_PROT_ALL, Uc, UcError
from unicorn import riscv_const as rc
from unicorn.unicorn_const import UC_ERR_EXCEPTION, UC_TLB_VIRTUAL

from emu import mmu
from emu.core import hartstate, twins
from emu.core.memory import PhysMem
from emu.mmu import pte as P
from emu.mmu.tlb import flush_tlb
from tests.conftest import need_fast

BASE = 0x8000_0000
SIZE = 1 << 20
CODE_VA, DATA_VA, RO_VA, HOLE_VA, UDATA_VA, XONLY_VA = (
    0x1000_0000, 0x2000_0000, 0x2000_1000, 0x2000_2000, 0x2000_3000, 0x2000_4000)
CODE_PA, DATA_PA, RO_PA, UDATA_PA = BASE + 0x2_0000, BASE + 0x3_0000, BASE + 0x3_1000, \
    BASE + 0x3_2000
T0, T1, A0, A1, A2 = 5, 6, 10, 11, 12
REG = {T0: rc.UC_RISCV_REG_T0, T1: rc.UC_RISCV_REG_T1, A0: rc.UC_RISCV_REG_A0,
       A1: rc.UC_RISCV_REG_A1, A2: rc.UC_RISCV_REG_A2}


def i_type(op: int, f3: int, rd: int, rs1: int, imm: int) -> int:
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op


def s_type(f3: int, rs1: int, rs2: int, imm: int) -> int:
    return (((imm >> 5) & 0x7F) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) \
        | ((imm & 0x1F) << 7) | 0x23


def ld(rd, rs1, imm=0):
    return i_type(0x03, 3, rd, rs1, imm)


def sd(rs2, rs1, imm=0):
    return s_type(3, rs1, rs2, imm)


def addi(rd, rs1, imm):
    return i_type(0x13, 0, rd, rs1, imm)


def jalr(rs1):
    return i_type(0x67, 0, 0, rs1, 0)


class Machine:
    """A Uc in UC_TLB_VIRTUAL mode with RAM, page tables and a fill hook."""

    def __init__(self, impl: str) -> None:
        self.ram = PhysMem(BASE, SIZE)
        self.uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
        self.uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        self.uc.mem_map_ptr(BASE, SIZE, UC_PROT_ALL, self.ram.address)
        self.pt = P.PageTableBuilder(self.ram.buf, BASE, alloc_base=BASE, alloc_size=0x1_0000)
        self.hook = mmu.fill_hook_class(impl)(self.uc, self.ram.buf, BASE, SIZE)
        self.hook.install()


@pytest.fixture(params=["python", "fast"])
def machine(request):
    if request.param == "fast":
        need_fast(twins.available("sv39"), "the Cython Sv39 twin")
    m = Machine(request.param)
    yield m
    m.hook.uninstall()


def load_code(m, words: list[int]) -> None:
    m.ram.write(CODE_PA, struct.pack(f"<{len(words)}I", *words))


def set_priv(m, priv: int, sstatus: int = 0) -> None:
    """Write satp/sstatus from M (CSR writes are privilege-checked), then drop."""
    m.uc.reg_write(rc.UC_RISCV_REG_PRIV, 3)
    m.uc.reg_write(rc.UC_RISCV_REG_SATP, m.pt.satp())
    m.uc.reg_write(rc.UC_RISCV_REG_SSTATUS, sstatus)
    m.uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)


def run(m, start: int, ninsns: int) -> UcError | None:
    try:
        m.uc.emu_start(start, start + 4 * ninsns)
    except UcError as e:
        return e
    return None


def flags(m, vaddr: int) -> int:
    return m.pt.read_pte(m.pt.pte_addr(vaddr)) & (P.A | P.D)


def test_s_mode_loads_stores_fault_and_ad_bits(machine):
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X)  # A clear: the fetch sets it
    m.pt.map(DATA_VA, DATA_PA, P.R | P.W)  # clean and unaccessed
    m.pt.map(RO_VA, RO_PA, P.R | P.A)
    m.ram.write_u64(DATA_PA, 41)
    m.ram.write_u64(RO_PA, 0x5EED)
    load_code(m, [ld(T0, A0), addi(T0, T0, 1), sd(T0, A0, 8), ld(T1, A1), sd(T1, A2, 0x10)])
    set_priv(m, 1)
    for r, v in ((A0, DATA_VA), (A1, RO_VA), (A2, HOLE_VA)):
        m.uc.reg_write(REG[r], v)
    err = run(m, CODE_VA, 5)
    # the store to the hole stopped emulation precisely on that instruction
    assert err is not None and err.errno == UC_ERR_EXCEPTION
    assert m.uc.reg_read(rc.UC_RISCV_REG_PC) == CODE_VA + 16
    assert (m.hook.fault_cause, m.hook.fault_vaddr) == (15, HOLE_VA)
    assert m.hook.faults == 1 and m.hook.faults_by_cause == {15: 1}
    # earlier instructions completed through our translations
    assert m.ram.read_u64(DATA_PA + 8) == 42
    assert m.uc.reg_read(rc.UC_RISCV_REG_T1) == 0x5EED
    # code fetch + data read + data write (the read fill withheld W: D was
    # clear) + read-only read
    assert m.hook.fills == 4
    assert flags(m, CODE_VA) == P.A
    assert flags(m, DATA_VA) == P.A | P.D
    assert flags(m, RO_VA) == P.A
    m.hook.reset_counters()
    assert (m.hook.fills, m.hook.faults, m.hook.fault_cause, m.hook.faults_by_cause) == \
        (0, 0, 0, {})


def test_read_fill_leaves_pte_clean_until_the_store(machine):
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    m.pt.map(DATA_VA, DATA_PA, P.R | P.W | P.A)
    load_code(m, [ld(T0, A0), sd(T0, A0)])
    set_priv(m, 1)
    m.uc.reg_write(REG[A0], DATA_VA)
    assert run(m, CODE_VA, 1) is None
    assert flags(m, DATA_VA) == P.A  # the load did not dirty the page
    assert run(m, CODE_VA + 4, 1) is None
    assert flags(m, DATA_VA) == P.A | P.D
    assert m.hook.faults == 0


def test_u_mode_hook_reads_csrs_and_restores_priv(machine):
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.U | P.A)
    m.pt.map(UDATA_VA, UDATA_PA, P.R | P.W | P.U | P.A | P.D)
    m.pt.map(DATA_VA, DATA_PA, P.R | P.W | P.A | P.D)  # S-only
    m.ram.write_u64(UDATA_PA, 7)
    load_code(m, [ld(T0, A0), sd(T0, A0, 8), ld(T1, A1)])
    set_priv(m, 0)
    m.uc.reg_write(REG[A0], UDATA_VA)
    m.uc.reg_write(REG[A1], DATA_VA)
    err = run(m, CODE_VA, 3)
    assert err is not None and err.errno == UC_ERR_EXCEPTION
    assert m.uc.reg_read(rc.UC_RISCV_REG_PC) == CODE_VA + 8
    assert (m.hook.fault_cause, m.hook.fault_vaddr) == (13, DATA_VA)
    assert m.ram.read_u64(UDATA_PA + 8) == 7
    assert m.uc.reg_read(rc.UC_RISCV_REG_PRIV) == 0  # the hook put U back


def test_sum_and_mxr_come_from_sstatus(machine):
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    m.pt.map(UDATA_VA, UDATA_PA, P.R | P.W | P.U | P.A | P.D)
    m.pt.map(XONLY_VA, UDATA_PA, P.X | P.A)
    m.ram.write_u64(UDATA_PA, 0xABCD)
    load_code(m, [ld(T0, A0)])
    for va, bit in ((UDATA_VA, P.SSTATUS_SUM), (XONLY_VA, P.SSTATUS_MXR)):
        m.hook.reset_counters()
        set_priv(m, 1)
        m.uc.reg_write(REG[A0], va)
        err = run(m, CODE_VA, 1)
        assert err is not None and m.hook.fault_cause == 13 and m.hook.fault_vaddr == va
        set_priv(m, 1, bit)  # QEMU flushes its TLB when SUM/MXR change
        m.uc.reg_write(REG[T0], 0)
        assert run(m, CODE_VA, 1) is None
        assert m.uc.reg_read(rc.UC_RISCV_REG_T0) == 0xABCD


def test_fetch_fault_from_non_executable_page(machine):
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    m.pt.map(DATA_VA, DATA_PA, P.R | P.W | P.A | P.D)
    load_code(m, [jalr(A0)])
    set_priv(m, 1)
    m.uc.reg_write(REG[A0], DATA_VA + 0x40)
    err = run(m, CODE_VA, 8)
    assert err is not None and err.errno == UC_ERR_EXCEPTION
    assert m.uc.reg_read(rc.UC_RISCV_REG_PC) == DATA_VA + 0x40
    assert (m.hook.fault_cause, m.hook.fault_vaddr, m.hook.faults_by_cause) == \
        (12, DATA_VA, {12: 1})


def test_pte_outside_ram_is_an_access_fault(machine):
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    far = 0x4000_0000  # root slot 1 (the code lives under slot 0)
    m.pt.write_pte(m.pt.root + 8 * (far >> 30), P.make_pte(BASE + SIZE, P.V))
    load_code(m, [ld(T0, A0)])
    set_priv(m, 1)
    m.uc.reg_write(REG[A0], far + 0x18)
    err = run(m, CODE_VA, 1)
    assert err is not None and err.errno == UC_ERR_EXCEPTION
    assert (m.hook.fault_cause, m.hook.fault_vaddr, m.hook.faults_by_cause) == (5, far, {5: 1})


def test_m_mode_is_identity_and_uninstall(machine):
    m = machine
    load_code(m, [ld(T0, A0)])
    m.ram.write_u64(DATA_PA, 99)
    set_priv(m, 3)  # satp set, but M-mode does not translate
    m.uc.reg_write(REG[A0], DATA_PA)
    assert run(m, CODE_PA, 1) is None
    assert m.uc.reg_read(rc.UC_RISCV_REG_T0) == 99 and m.hook.fills >= 1
    fills = m.hook.fills
    m.hook.uninstall()
    assert not m.hook.installed
    m.hook.uninstall()  # idempotent
    flush_tlb(m.uc)
    assert run(m, CODE_PA, 1) is None  # unicorn's own identity fill now
    assert m.hook.fills == fills
    m.hook.install()
    with pytest.raises(RuntimeError):
        m.hook.install()


def test_fill_hook_rejects_a_short_buffer():
    for impl in ("python", "fast"):
        if impl == "fast" and not twins.available("sv39"):
            need_fast(False, "the Cython Sv39 twin")
        uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
        with pytest.raises(ValueError):
            mmu.fill_hook_class(impl)(uc, bytearray(4096), BASE, 8192)


def test_pure_hook_keeps_an_internal_error(monkeypatch):
    m = Machine("python")
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    load_code(m, [addi(T0, T0, 1)])
    set_priv(m, 1)

    def broken(*_args):
        raise RuntimeError("walker bug")
    monkeypatch.setattr("emu.mmu.tlb.fill_page", broken)
    err = run(m, CODE_VA, 1)
    assert err is not None
    assert isinstance(m.hook.error, RuntimeError) and m.hook.fills == 0


def sfence_vma(rs1: int = 0, rs2: int = 0) -> int:
    return (0x09 << 25) | (rs2 << 20) | (rs1 << 15) | 0x73


def test_flush_story(machine):
    """Pin down when unicorn (QEMU) drops its soft-TLB entries, observed
    through the hook's fill counter: sfence.vma (always the whole TLB, even
    with an address), satp writes that change the ASID, sstatus writes that
    change SUM or MXR. Not on privilege switches (entries are per privilege),
    and not on a satp write that keeps the ASID (the guest must sfence.vma)."""
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    m.pt.map(DATA_VA, DATA_PA, P.R | P.W | P.A | P.D)
    m.pt.map(RO_VA, RO_PA, P.R | P.A)
    load_code(m, [ld(T0, A0), ld(T1, A1), sfence_vma(), sfence_vma(A1)])

    def fills_for(start=CODE_VA, n=2) -> int:
        before = m.hook.fills
        m.uc.reg_write(REG[A0], DATA_VA)
        m.uc.reg_write(REG[A1], RO_VA)
        assert run(m, start, n) is None
        return m.hook.fills - before

    def write_csr(reg: int, value: int) -> None:
        m.uc.reg_write(rc.UC_RISCV_REG_PRIV, 3)
        m.uc.reg_write(reg, value)
        m.uc.reg_write(rc.UC_RISCV_REG_PRIV, 1)

    set_priv(m, 1)
    assert fills_for() == 3  # code + two data pages
    assert fills_for() == 0  # all hits
    write_csr(rc.UC_RISCV_REG_SSTATUS, P.SSTATUS_SUM)
    assert fills_for() == 3  # SUM changed: flushed
    write_csr(rc.UC_RISCV_REG_SSTATUS, P.SSTATUS_SUM)
    assert fills_for() == 0  # unchanged value: kept
    write_csr(rc.UC_RISCV_REG_SSTATUS, P.SSTATUS_SUM | P.SSTATUS_MXR)
    assert fills_for() == 3  # MXR changed: flushed
    write_csr(rc.UC_RISCV_REG_SATP, m.pt.satp(asid=5))
    assert fills_for() == 3  # ASID changed: flushed
    other = P.PageTableBuilder(m.ram.buf, BASE, alloc_base=BASE + 0x1_0000, alloc_size=0x1_0000)
    write_csr(rc.UC_RISCV_REG_SATP, other.satp(asid=5))  # new (empty) root, same ASID
    assert fills_for() == 0  # not flushed: stale entries until sfence.vma
    write_csr(rc.UC_RISCV_REG_SATP, m.pt.satp(asid=5))
    # privilege switches keep entries: the S entries survive a trip to U
    m.uc.reg_write(rc.UC_RISCV_REG_PRIV, 0)
    m.uc.reg_write(rc.UC_RISCV_REG_PRIV, 1)
    assert fills_for() == 0
    # sfence.vma zero, zero and sfence.vma a1, zero both flush everything
    # (stopping after the sfence already refetches the code page)
    for start in (CODE_VA + 8, CODE_VA + 12):
        before = m.hook.fills
        assert run(m, start, 1) is None
        assert fills_for() == 2 and m.hook.fills - before == 3


def lr_d(rd: int, rs1: int) -> int:
    return (0b00010 << 27) | (rs1 << 15) | (3 << 12) | (rd << 7) | 0x2F


def sc_d(rd: int, rs2: int, rs1: int) -> int:
    return (0b00011 << 27) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | (rd << 7) | 0x2F


def bnez(rs1: int, off: int) -> int:
    o = off & 0x1FFF
    return ((o >> 12 & 1) << 31) | ((o >> 5 & 0x3F) << 25) | (rs1 << 15) | (1 << 12) \
        | ((o >> 1 & 0xF) << 8) | ((o >> 11 & 1) << 7) | 0x63


def test_u_mode_lr_sc_retry_loop_completes(machine):
    """In U-mode the hook switches PRIV to read CSRs, which clears QEMU's LR
    reservation: an SC after a fill between LR and SC fails once, and the
    retry (TLB now warm) succeeds. A plain LR/SC pair, whose SC itself needs
    the fill (clean page: the LR's fill withheld W), succeeds at once."""
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.U | P.A)
    m.pt.map(UDATA_VA, UDATA_PA, P.R | P.W | P.U | P.A)  # clean
    m.pt.map(RO_VA, RO_PA, P.R | P.U | P.A)
    m.ram.write_u64(UDATA_PA, 10)
    # retry: lr.d t0,(a0); ld t2,(a1); addi t0,t0,1; sc.d t1,t0,(a0); bnez t1,retry
    load_code(m, [lr_d(T0, A0), ld(7, A1), addi(T0, T0, 1), sc_d(T1, T0, A0), bnez(T1, -16),
                  lr_d(T0, A0), addi(T0, T0, 1), sc_d(T1, T0, A0)])
    set_priv(m, 0)
    m.uc.reg_write(REG[A0], UDATA_VA)
    m.uc.reg_write(REG[A1], RO_VA)
    assert run(m, CODE_VA, 5) is None
    assert m.ram.read_u64(UDATA_PA) == 11
    assert flags(m, UDATA_VA) == P.A | P.D
    m.pt.write_pte(m.pt.pte_addr(UDATA_VA), P.make_pte(UDATA_PA, P.V | P.R | P.W | P.U | P.A))
    flush_tlb(m.uc)
    assert run(m, CODE_VA + 20, 3) is None
    assert m.uc.reg_read(rc.UC_RISCV_REG_T1) == 0 and m.ram.read_u64(UDATA_PA) == 12


def c_nops(n: int) -> list[int]:
    """n compressed nops (c.addi x0, 0 = 0x0001), packed two to a word."""
    assert n % 2 == 0
    return [0x0001_0001] * (n // 2)


def code_epoch(m) -> int:
    return ctypes.c_uint64.from_address(m.hook.code_epoch_address).value


def test_code_epoch_moves_only_when_code_may_differ(machine):
    """The block budget keeps instruction counts until the code epoch moves:
    a fetch fill that maps a virtual page to another physical page, or finds
    the bytes changed, moves it; the first fill of a page, and refills of an
    unchanged mapping (after every sfence.vma), do not (emu/mmu/tlb.py)."""
    m = machine
    other_pa = CODE_PA + 0x1000
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    load_code(m, [addi(T0, T0, 1)] * 4)
    m.ram.write(other_pa, struct.pack("<4I", *[addi(T1, T1, 1)] * 4))
    set_priv(m, 1)
    assert run(m, CODE_VA, 4) is None
    assert code_epoch(m) == 0 and m.hook.fills == 1       # a first fill: nothing counted yet
    for _ in range(3):
        flush_tlb(m.uc)
        assert run(m, CODE_VA, 4) is None
    assert code_epoch(m) == 0 and m.hook.fills == 4       # the same mapping, refilled
    m.pt.map(CODE_VA, other_pa, P.R | P.X | P.A)          # the page maps elsewhere
    flush_tlb(m.uc)
    assert run(m, CODE_VA, 4) is None
    assert code_epoch(m) == 1 and m.uc.reg_read(rc.UC_RISCV_REG_T1) == 4
    m.ram.write(other_pa, struct.pack("<4I", *[addi(T1, T1, 2)] * 4))  # changed in place
    flush_tlb(m.uc)
    m.hook.take_stale()
    run(m, CODE_VA, 4)
    assert code_epoch(m) == 2 and m.hook.code_changes == 1


@pytest.mark.parametrize("mmu_impl", ["python", "fast"])
@pytest.mark.parametrize("budget_impl", ["python", "fast"])
def test_a_block_remapped_to_other_code_of_the_same_size_is_counted_again(mmu_impl,
                                                                        budget_impl):
    """Same virtual address, same block size (16 bytes), another physical
    page: four 4-byte instructions, then eight compressed ones. The budget's
    cached count must not survive the remap."""
    from emu.machine.budget import BlockBudget as PyBudget
    for impl in (mmu_impl, budget_impl):
        if impl == "fast":
            need_fast(twins.available("sv39") and twins.available("budget"), "the Cython twins")
    m = Machine(mmu_impl)
    budget_cls = PyBudget if budget_impl == "python" else twins.pick("budget", "fast").BlockBudget
    budget = budget_cls(m.uc)
    budget.watch_code(m.hook)
    budget.install()
    budget.set_stop(1 << 40)
    other_pa = CODE_PA + 0x1000
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    load_code(m, [addi(T0, T0, 1)] * 4)
    m.ram.write(other_pa, struct.pack("<4I", *c_nops(8)))
    set_priv(m, 1)
    for _ in range(2):
        assert run(m, CODE_VA, 4) is None
    assert budget.icount == 8
    m.pt.map(CODE_VA, other_pa, P.R | P.X | P.A)
    flush_tlb(m.uc)
    for _ in range(2):
        assert run(m, CODE_VA, 4) is None
    assert budget.icount == 8 + 16
    budget.uninstall()
    m.hook.uninstall()


# -- which code pages need comparing (watch_writes) ---------------------------

SELF_VA = 0x2000_5000    # maps the leaf table page that maps DATA_VA, as code


@pytest.fixture(params=["python", "fast"])
def watched(request):
    """A Machine whose hook compares a code page only when it can have
    changed (PhysMem.written and unicorn's flush counts), as emu's does."""
    if request.param == "fast":
        need_fast(twins.available("sv39"), "the Cython Sv39 twin")
    m = Machine(request.param)
    flushes = hartstate.flush_count_address(m.uc)
    assert flushes is not None, "unicorn 2.1.4's flush counters not found"
    m.hook.watch_writes(m.ram.written, flushes)
    yield m
    m.hook.uninstall()


def compares(m) -> int:
    checks, skipped = m.hook.code_checks
    return checks - skipped


def rerun(m, start: int, n: int) -> None:
    """Flush (as sfence.vma does) and run `n` instructions from `start`: one
    fetch fill, one code-page check."""
    flush_tlb(m.uc)
    assert run(m, start, n) is None


def test_flush_counters_move_with_every_flush_that_empties_the_tlb():
    """hartstate finds unicorn's CPUTLBCommon: the counters' sum moves on at
    a flush after code ran (entries to drop), and not at a flush of an
    already empty TLB."""
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    uc.mem_map(BASE, 0x1000)
    uc.mem_write(BASE, struct.pack("<I", addi(0, 0, 0)))
    counts = (ctypes.c_uint64 * 2).from_address(hartstate.flush_count_address(uc))
    seen = []
    for ran in (True, True, False):
        if ran:
            uc.emu_start(BASE, BASE + 4)
        flush_tlb(uc)
        seen.append(counts[0] + counts[1])
    assert seen[1] == seen[0] + 1 and seen[2] == seen[1]


def test_an_unwritten_code_page_is_not_compared_again(watched):
    m = watched
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    load_code(m, [addi(T0, T0, 1)] * 2)
    set_priv(m, 1)
    assert run(m, CODE_VA, 2) is None       # the first check takes the copy
    rerun(m, CODE_VA, 2)                    # compared: W entries unknown before
    before = compares(m)
    for _ in range(3):
        rerun(m, CODE_VA, 2)
    assert compares(m) == before and m.hook.code_checks[1] >= 3
    assert m.uc.reg_read(rc.UC_RISCV_REG_T0) == 10


def test_a_host_write_makes_the_page_compared(watched):
    """PhysMem.write (DMA, the loader, a debugger) marks the page: the next
    check compares and finds the change."""
    m = watched
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    load_code(m, [addi(T0, T0, 1)] * 2)
    set_priv(m, 1)
    assert run(m, CODE_VA, 2) is None
    rerun(m, CODE_VA, 2)
    rerun(m, CODE_VA, 2)
    skipped = m.hook.code_checks[1]
    m.ram.write(CODE_PA + 4, struct.pack("<I", addi(T0, T0, 7)))
    flush_tlb(m.uc)
    run(m, CODE_VA, 2)
    assert m.hook.code_changes == 1 and m.hook.code_checks[1] == skipped


def test_a_write_entry_that_outlives_a_check_keeps_the_page_compared(watched):
    """A store through a data alias whose entry was granted W before the
    page's check, and still cached after it, changes the page: the next
    check must compare (no flush came between the grant and the check)."""
    m = watched
    alias_va, writer_va, writer_pa = DATA_VA, CODE_VA + 0x1000, CODE_PA + 0x1000
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    m.pt.map(alias_va, CODE_PA, P.R | P.W | P.A | P.D)
    m.pt.map(writer_va, writer_pa, P.R | P.X | P.A)
    load_code(m, [addi(T0, T0, 1)] * 2)
    m.ram.write(writer_pa, struct.pack("<I", sd(T1, A0, 4)))
    set_priv(m, 1)
    m.uc.reg_write(REG[A0], alias_va)
    m.uc.reg_write(REG[T1], addi(T0, T0, 1))     # the same bytes: nothing changes yet
    assert run(m, writer_va, 1) is None          # W granted to CODE_PA through the alias
    assert run(m, CODE_VA, 2) is None            # first check (the copy)
    rerun(m, writer_va, 1)                       # flushed: W granted again
    assert run(m, CODE_VA, 2) is None            # checked, compared; the W entry lives on
    m.uc.reg_write(REG[T1], addi(T0, T0, 7))
    assert run(m, writer_va, 1) is None          # stores through the cached W entry
    assert m.hook.code_changes == 0
    flush_tlb(m.uc)
    run(m, CODE_VA, 2)
    assert m.hook.code_changes == 1


def test_an_a_bit_the_walker_sets_in_a_code_page_makes_it_compared(watched):
    """The walker's A/D updates are writes too: a page that holds both a
    page table and code (hostile, but legal) is compared after the walker
    set a bit in it."""
    m = watched
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    m.pt.map(DATA_VA, DATA_PA, P.R | P.W)        # A clear: a load sets it
    table = m.pt.pte_addr(DATA_VA) & ~0xFFF
    m.pt.map(SELF_VA, table, P.R | P.X | P.A)
    m.ram.write(table + 0x800, struct.pack("<2I", addi(T1, T1, 1), addi(T1, T1, 1)))
    load_code(m, [ld(T0, A0)])
    set_priv(m, 1)
    m.uc.reg_write(REG[A0], DATA_VA)
    assert run(m, SELF_VA + 0x800, 2) is None
    rerun(m, SELF_VA + 0x800, 2)
    rerun(m, SELF_VA + 0x800, 2)
    skipped = m.hook.code_checks[1]
    assert skipped >= 1
    assert run(m, CODE_VA, 1) is None            # the walk sets A in `table`
    assert flags(m, DATA_VA) == P.A
    flush_tlb(m.uc)
    run(m, SELF_VA + 0x800, 2)
    assert m.hook.code_changes == 1 and m.hook.code_checks[1] == skipped



def test_the_pure_budget_keeps_an_error_raised_in_its_hook(monkeypatch):
    """The reference block hook is a raw ctypes callback: an exception in it
    (a bug) must not vanish into ctypes' "exception ignored" - it stops the
    engine and is kept in `error`, which the run loop raises."""
    from emu.machine import budget as B
    m = Machine("python")
    budget = B.BlockBudget(m.uc)
    budget.watch_code(m.hook)
    budget.install()
    budget.set_stop(1 << 40)
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    load_code(m, [addi(T0, T0, 1)] * 4)
    set_priv(m, 1)

    def broken(*_args):
        raise ZeroDivisionError("a bug in the hook")

    monkeypatch.setattr(B, "count_insns", broken)
    assert run(m, CODE_VA, 4) is None
    assert isinstance(budget.error, ZeroDivisionError) and budget.icount == 0
    budget.uninstall()
    assert budget.error is not None and budget._handle is None


def test_the_run_loop_raises_what_the_pure_budget_kept(kernel, monkeypatch):
    """A bug inside the reference block hook ends the run with a one-line
    MachineError naming it, not with a run that silently goes on."""
    from emu.machine import budget as B
    from emu.machine.config import MachineConfig
    from emu.machine.exits import MachineError
    from emu.machine.machine import Machine as EmuMachine
    m = EmuMachine(MachineConfig(kernel=kernel, budget="python", max_insns=1_000_000))

    def broken(*_args):
        raise ZeroDivisionError("a bug in the hook")

    monkeypatch.setattr(B, "count_insns", broken)
    with pytest.raises(MachineError, match="block hook failed: ZeroDivisionError"):
        m.run()
