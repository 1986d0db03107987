"""The soft-TLB probe (emu/mmu/tlbprobe.py) on both fill hooks: it reports
what QEMU cached - physical page and permissions per privilege - sees stale
entries until a flush, and changes nothing: no fill, no A/D bit, the hook
and PRIV as they were."""

from __future__ import annotations

from unicorn import riscv_const as rc

from emu.mmu import pte as P
from emu.mmu.tlb import flush_tlb
from emu.mmu.tlbprobe import Cached, probe
from tests.test_mmu_fill import (
    A0,
    A1,
    CODE_PA,
    CODE_VA,
    DATA_PA,
    DATA_VA,
    HOLE_VA,
    REG,
    RO_PA,
    RO_VA,
    T0,
    UDATA_PA,
    flags,
    ld,
    load_code,
    machine,  # noqa: F401 - the fixture
    run,
    sd,
    set_priv,
)

PAGES = (CODE_VA, DATA_VA, RO_VA, HOLE_VA)


def test_probe_reports_cached_pages_and_changes_nothing(machine):  # noqa: F811
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.A)
    m.pt.map(DATA_VA, DATA_PA, P.R | P.W | P.A)          # D clear: a read fill withholds W
    m.pt.map(RO_VA, RO_PA, P.R | P.A)
    load_code(m, [ld(T0, A0), ld(T0, A1), sd(T0, A0)])
    set_priv(m, 1)
    m.uc.reg_write(REG[A0], DATA_VA)
    m.uc.reg_write(REG[A1], RO_VA)
    assert probe(m.uc, PAGES, [1, 0]) == []               # nothing cached yet
    assert run(m, CODE_VA, 2) is None
    fills, ram = m.hook.fills, bytes(m.ram.buf)
    got = probe(m.uc, PAGES, [1, 0])
    assert got == [Cached(1, CODE_VA, CODE_PA, "r-x"), Cached(1, DATA_VA, DATA_PA, "r--"),
                   Cached(1, RO_VA, RO_PA, "r--")]
    # the probe filled nothing, wrote nothing, and left the hook and PRIV in place
    assert m.hook.fills == fills and bytes(m.ram.buf) == ram and m.hook.installed
    assert m.uc.reg_read(rc.UC_RISCV_REG_PRIV) == 1
    assert flags(m, DATA_VA) == P.A
    # the store refills with W (and sets D); the hook still works after a probe
    assert run(m, CODE_VA + 8, 1) is None
    assert m.hook.fills == fills + 1 and flags(m, DATA_VA) == P.A | P.D
    assert Cached(1, DATA_VA, DATA_PA, "rw-") in probe(m.uc, PAGES, [1])
    # a PTE changed without sfence.vma: the TLB still holds the old page
    m.pt.map(DATA_VA, UDATA_PA, P.R | P.W | P.A | P.D)
    assert Cached(1, DATA_VA, DATA_PA, "rw-") in probe(m.uc, PAGES, [1])
    flush_tlb(m.uc)
    assert probe(m.uc, PAGES, [1, 0]) == []


def test_probe_sees_each_privilege_apart(machine):  # noqa: F811
    m = machine
    m.pt.map(CODE_VA, CODE_PA, P.R | P.X | P.U | P.A)
    m.pt.map(DATA_VA, DATA_PA, P.R | P.W | P.U | P.A | P.D)
    load_code(m, [ld(T0, A0)])
    set_priv(m, 0)
    m.uc.reg_write(REG[A0], DATA_VA)
    assert run(m, CODE_VA, 1) is None
    want = [Cached(0, CODE_VA, CODE_PA, "r-x"), Cached(0, DATA_VA, DATA_PA, "rw-")]
    assert probe(m.uc, PAGES, [1, 0]) == want              # U entries only
    assert m.uc.reg_read(rc.UC_RISCV_REG_PRIV) == 0
    m.uc.reg_write(rc.UC_RISCV_REG_PRIV, 1)                 # S sees none of them
    assert probe(m.uc, PAGES, [1]) == [] and probe(m.uc, PAGES, [0]) == want
    assert m.uc.reg_read(rc.UC_RISCV_REG_PRIV) == 1
