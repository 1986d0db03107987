"""PMP and MPRV: the registers where unicorn keeps them, the reference
(emu/mmu/pmp.py) against a byte-by-byte reading of the spec, the walker
twins against each other with random PMP rules, our walker against
unicorn's built-in translation (QEMU 5.0's PMP and MPRV) with rules the
guest itself writes, and both fill hooks reading the live registers.

Seeded random.Random throughout: a failure names its seed and case.
"""

from __future__ import annotations

import ctypes
import random
import struct
from collections import Counter

import pytest
from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV64, UC_PROT_ALL, Uc
from unicorn import riscv_const as rc

from emu import mmu
from emu.core import hartstate, twins
from emu.core.twins import pure_forced
from emu.mmu import pmp, walk
from emu.mmu import pte as P
from emu.mmu.tlb import fill_page
from tests.conftest import IMPLS, need_fast, need_tool
from tests.test_mmu_diff import (
    ACCESSES,
    BASE,
    PROT,
    ROOT,
    SIZE,
    make_uc,
    outcome,
    random_ram,
    random_satp,
    random_vaddr,
    set_state,
    unicorn_translator,
)

STUB = 0x1000          # where the CSR-writing code runs (outside the test RAM)
MASK64 = (1 << 64) - 1


# --- the registers in unicorn ---------------------------------------------------

def _run_csr_writes(uc: Uc, writes: list[tuple[int, int]]) -> None:
    """Execute `csrw csr, value` for each pair, in M-mode, in `uc`."""
    if not uc.__dict__.get("_stub_mapped"):
        uc.mem_map(STUB, 0x1000, UC_PROT_ALL)
        uc.__dict__["_stub_mapped"] = True
    words = []
    for n, (csr, value) in enumerate(writes):
        uc.reg_write(rc.UC_RISCV_REG_X1 + n, value)
        words.append(hartstate._csrw(csr, 1 + n))
    uc.mem_write(STUB, struct.pack(f"<{len(words)}I", *words))
    uc.ctl_flush_tb()          # unicorn keeps the previous stub's translation otherwise
    uc.reg_write(rc.UC_RISCV_REG_PRIV, 3)
    uc.emu_start(STUB, STUB + 4 * len(words))


def test_the_pinned_unicorn_keeps_pmp_where_we_look():
    assert hartstate.pmp_offset() is not None, "unicorn 2.1.4's layout not found"
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    address = hartstate.pmp_address(uc)
    assert address is not None
    assert hartstate.read_pmp(address) == ([0] * 16, [0] * 16)
    _run_csr_writes(uc, [(0x3B3, 0x1234), (0x3A0, 0x0F << 24)])
    cfgs, addrs = hartstate.read_pmp(address)
    assert cfgs[3] == 0x0F and addrs[3] == 0x1234 and sum(cfgs) == 0x0F


def test_write_pmp_leaves_what_executed_csr_writes_leave():
    """The built-in firmware's direct write (hartstate.write_pmp) against the
    same writes executed by the CPU: byte-identical PMP state."""
    rng = random.Random(5150)
    for case in range(200):
        ours, theirs = (Uc(UC_ARCH_RISCV, UC_MODE_RISCV64) for _ in range(2))
        a_ours, a_theirs = hartstate.pmp_address(ours), hartstate.pmp_address(theirs)
        cfg0 = 0
        for _ in range(rng.randrange(1, 5)):
            i = rng.randrange(8)
            cfg = rng.getrandbits(7)                        # never L: stays writable
            addr = rng.getrandbits(rng.choice((20, 54, 64)))
            hartstate.write_pmp(a_ours, i, cfg, addr)
            cfg0 = cfg0 & ~(0xFF << 8 * i) | cfg << 8 * i
            _run_csr_writes(theirs, [(0x3B0 + i, addr), (0x3A0, cfg0)])
        assert ctypes.string_at(a_ours, hartstate.PMP_BYTES) == \
            ctypes.string_at(a_theirs, hartstate.PMP_BYTES), f"case {case}"


def test_unicorn_drops_pmpcfg2_a_known_deviation():
    """QEMU 5.0 indexes pmpcfg2's entries as 16-23 on RV64 and drops the
    write: entries 8-15 stay OFF (docs/mmu.md). If this starts failing, the
    pinned unicorn changed: enforce 16 entries and drop the note."""
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    _run_csr_writes(uc, [(0x3B8, 0x1234), (0x3A2, 0x1F1F1F1F1F1F1F1F)])
    cfgs, addrs = hartstate.read_pmp(hartstate.pmp_address(uc))
    assert addrs[8] == 0x1234 and cfgs[8:] == [0] * 8


# --- the reference against the spec, byte by byte -------------------------------------

def test_reference_rules_as_the_spec_reads():
    napot = lambda base, size: (base >> 2) | ((size >> 3) - 1)   # noqa: E731
    xv6 = pmp.rules([0x0F] + [0] * 15, [0x3F_FFFF_FFFF_FFFF] + [0] * 15)
    # xv6's start.c: TOR up to pmpaddr0 = 2^54 - 1, RWX
    assert (xv6[0].lo, xv6[0].hi, xv6[0].perms) == (0, (1 << 56) - 5, 7)
    fw = pmp.rules([0x18] + [0] * 15, [napot(0x8000_0000, 0x40000)] + [0] * 15)
    assert (fw[0].lo, fw[0].hi, fw[0].perms) == (0x8000_0000, 0x8003_FFFF, 0)
    tor = pmp.rules([0, 0x08 | 3] + [0] * 14, [0x8000_0000 >> 2, 0x8000_1000 >> 2] + [0] * 14)
    assert (tor[0].index, tor[0].lo, tor[0].hi) == (1, 0x8000_0000, 0x8000_0FFF)
    first_tor = pmp.rules([0x08 | 7] + [0] * 15, [0x1000 >> 2] + [0] * 15)
    assert (first_tor[0].lo, first_tor[0].hi) == (0, 0xFFF)
    na4 = pmp.rules([0x10 | 1] + [0] * 15, [0x100 >> 2] + [0] * 15)
    assert (na4[0].lo, na4[0].hi) == (0x100, 0x103)
    # no entry matches: M succeeds, S and U fail (also with no entry at all)
    for active in ([], fw):
        assert pmp.allows(active, 0x9000_0000, 8, 0, 3)
        assert not pmp.allows(active, 0x9000_0000, 8, 0, 1)
    # an unlocked entry does not bind M; a locked one does
    assert pmp.allows(fw, 0x8000_0000, 8, 1, 3)
    locked = pmp.rules([0x80 | 0x18 | 1] + [0] * 15, [napot(0x8000_0000, 0x1000)] + [0] * 15)
    assert pmp.allows(locked, 0x8000_0000, 8, 0, 3)
    assert not pmp.allows(locked, 0x8000_0000, 8, 1, 3)
    # the lowest-numbered match decides; a partial match fails
    two = pmp.rules([0x18, 0x1F] + [0] * 14,
                    [napot(0x8000_0000, 0x1000), napot(0x8000_0000, 0x10000)] + [0] * 14)
    assert not pmp.allows(two, 0x8000_0008, 8, 0, 1)
    assert pmp.allows(two, 0x8000_1008, 8, 0, 1)
    assert not pmp.allows(two, 0x8000_0FFC, 8, 0, 1)


def random_rules(rng: random.Random, page_aligned: bool, n_max: int = 8) -> tuple[list, list]:
    """Random pmpcfg bytes and pmpaddr values for entries 0..7 around the
    test RAM: NAPOT/TOR/NA4, every R/W/X, sometimes L, sometimes all of
    memory; page-aligned boundaries when asked (unicorn's built-in checks
    each access, we each page: the two agree on page-aligned rules)."""
    cfgs, addrs = [0] * 16, [0] * 16
    gran = 4096 if page_aligned else rng.choice((4, 8, 64, 4096))
    for i in range(rng.randrange(1, n_max + 1)):
        a = rng.choice((1, 3, 3, 3) if page_aligned else (1, 2, 3, 3))
        perms = rng.getrandbits(3)
        lock = 0x80 if rng.random() < 0.15 else 0
        if a == 3:
            if rng.random() < 0.1:
                addrs[i] = rng.choice((MASK64, 0x3F_FFFF_FFFF_FFFF))
            else:
                size = gran << rng.randrange(0, 6)
                base = BASE + rng.randrange(0, 2 * SIZE, size) - SIZE // 2
                base -= base % size
                addrs[i] = (base >> 2) | ((size >> 3) - 1)
        else:
            addrs[i] = (BASE + rng.randrange(-SIZE // 4, SIZE + SIZE // 4, gran)) >> 2
        cfgs[i] = lock | a << 3 | perms
    return cfgs, addrs


def test_page_perms_is_what_every_byte_of_the_page_has():
    rng = random.Random(77)
    seen: Counter = Counter()
    for case in range(300):
        active = pmp.rules(*random_rules(rng, page_aligned=False))
        page = BASE + rng.randrange(-4, NPAGES_TESTED) * 4096
        for priv in (0, 1, 3):
            want = 7
            for off in range(0, 4096, 4):
                for acc in range(3):
                    if not pmp.allows(active, page + off, 4, acc, priv):
                        want &= ~(1 << acc)
            got = pmp.page_perms(active, page, priv)
            assert got == want, f"case {case} page 0x{page:x} priv {priv}: {active}"
            seen[got] += 1
    assert len(seen) >= 6, seen


NPAGES_TESTED = SIZE // 4096 + 4


# --- the twins, with PMP ------------------------------------------------------------

def test_walker_twins_agree_under_random_pmp():
    """Reference vs Cython vs the pure hook's tuned walk, with random rules
    (sub-page ones too) on random page tables, for U/S/M."""
    if not twins.available("sv39") and not pure_forced():
        need_fast(False, "the Cython Sv39 twin")
    fast = twins.compiled("sv39") if twins.available("sv39") else walk
    rng = random.Random(8088)
    causes: Counter = Counter()
    for table in range(12):
        ram_py = random_ram(rng, reserved=True)
        ram_c, ram_t = bytearray(ram_py), bytearray(ram_py)
        q_t = walk.u64_view(ram_t)
        for case in range(2000):
            if case % 200 == 0:
                active = pmp.rules(*random_rules(rng, page_aligned=rng.random() < 0.5))
            satp = random_satp(rng, other_modes=False)
            va = random_vaddr(rng) if rng.random() < 0.8 else BASE + rng.randrange(SIZE)
            access = rng.choice(ACCESSES)
            priv = rng.choice((0, 1, 1, 3))
            sum_, mxr = rng.random() < 0.5, rng.random() < 0.5
            where = f"table {table} case {case}: satp=0x{satp:x} va=0x{va:x} {access} " \
                    f"priv={priv} rules={active}"
            py = outcome(walk.translate, ram_py, BASE, satp, va, access, priv, sum_, mxr,
                         False, active)
            c = outcome(fast.translate, ram_c, BASE, satp, va, access, priv, sum_, mxr,
                        False, active)
            assert py == c, f"translate {py} != {c}, {where}"
            fpy = outcome(walk.fill, ram_py, BASE, satp, va, access, priv, sum_, mxr, active)
            fc = outcome(fast.fill, ram_c, BASE, satp, va, access, priv, sum_, mxr, active)
            sstatus = (P.SSTATUS_SUM if sum_ else 0) | (P.SSTATUS_MXR if mxr else 0)
            r = fill_page(q_t, BASE, satp, sstatus, va & ~0xFFF, ACCESSES.index(access),
                          priv, active)
            ft = ("ok", (r & ~0xFFF, r & 7)) if r >= 0 else ("fault", -r)
            assert fpy == fc == ft, f"fill {fpy} {fc} {ft}, {where}"
            causes[fpy[1] if fpy[0] == "fault" else "ok"] += 1
        assert ram_py == ram_c == ram_t, f"RAM differs after A/D, table {table}"
    # PMP denials (access faults) and grants both happen, for every access kind
    assert causes["ok"] > 1000 and causes[1] and causes[5] and causes[7], causes


# --- against unicorn's built-in translation (QEMU 5.0 PMP and MPRV) -------------------

def _mstatus(uc: Uc, mprv: bool, mpp: int) -> None:
    uc.reg_write(rc.UC_RISCV_REG_PRIV, 3)
    st = uc.reg_read(rc.UC_RISCV_REG_MSTATUS)
    st = st & ~((1 << 17) | (3 << 11)) | (int(mprv) << 17) | (mpp << 11)
    uc.reg_write(rc.UC_RISCV_REG_MSTATUS, st)


def test_our_walker_matches_unicorn_builtin_with_pmp_and_mprv():
    """Rules the guest writes with csrw (entries 0-7, at least one active,
    page-aligned), then uc_vmem_translate in unicorn's CPU TLB mode against
    walk.translate with the rules read back from unicorn: U and S through
    Sv39/Bare, and M with MPRV=1 (loads/stores at MPP, fetches at M)."""
    rng = random.Random(2718)
    stats: Counter = Counter()
    for table in range(40):
        ours = random_ram(rng, reserved=False)
        uc, theirs = make_uc(ours)
        cfgs, addrs = random_rules(rng, page_aligned=True)
        _run_csr_writes(uc, [(0x3B0 + i, addrs[i]) for i in range(8)]
                        + [(0x3A0, int.from_bytes(bytes(cfgs[:8]), "little"))])
        active = pmp.rules(*hartstate.read_pmp(hartstate.pmp_address(uc)))
        assert [r.index for r in active] == [i for i in range(8) if cfgs[i] & 0x18]
        translate_uc = unicorn_translator(uc)
        for _ in range(6):
            satp = random_satp(rng, other_modes=False)
            sum_, mxr = rng.random() < 0.5, rng.random() < 0.5
            priv = rng.choice((0, 1, 3))
            mpp = rng.choice((0, 1, 3))
            held = set_state(uc, satp, 3, sum_, mxr)
            _mstatus(uc, priv == 3, mpp)
            uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)
            for _ in range(300):
                va = random_vaddr(rng) if rng.random() < 0.7 else BASE + rng.randrange(SIZE)
                access = rng.choice(ACCESSES)
                eff = mpp if priv == 3 and access != "fetch" else priv
                got = translate_uc(va, PROT[access])
                try:
                    want = walk.translate(ours, BASE, held, va, access, eff, sum_, mxr, True,
                                          active)
                except walk.PageFault as pf:
                    want, cause = None, pf.cause
                    stats[f"fault {cause}"] += 1
                else:
                    stats["ok"] += 1
                assert got == want, (
                    f"unicorn {got if got is None else hex(got)} != ours "
                    f"{want if want is None else hex(want)}: table {table} satp=0x{held:x} "
                    f"va=0x{va:x} {access} priv={priv} mpp={mpp} rules={active}")
            assert theirs[:] == bytes(ours), f"A/D differ: table {table}"
    assert stats["ok"] > 1000 and stats["fault 5"] and stats["fault 7"] and stats["fault 1"], \
        stats


# --- the fill hooks read the live registers -------------------------------------------

@pytest.mark.parametrize("impl", ["fast", "python"])
def test_fill_hooks_enforce_the_live_pmp_and_mprv(impl):
    """Each FillHook in UC_TLB_VIRTUAL mode, watching the PMP registers the
    guest writes (csrw), against the reference fill with those rules; M-mode
    loads/stores with MPRV translate at MPP and never grant execute."""
    if impl == "fast":
        need_fast(twins.available("sv39"), "the Cython Sv39 twin")
    rng = random.Random({"fast": 11, "python": 12}[impl])
    stats: Counter = Counter()
    for table in range(10):
        ours = random_ram(rng, reserved=False)
        uc, theirs = make_uc(ours, virtual=True)
        hook = mmu.fill_hook_class(impl)(uc, theirs, BASE, SIZE)
        hook.install()
        hook.watch_pmp(hartstate.pmp_address(uc))
        vmem = unicorn_translator(uc)
        for round_ in range(4):
            cfgs, addrs = random_rules(rng, page_aligned=rng.random() < 0.5, n_max=4)
            cfgs = [c & 0x7F for c in cfgs]          # no L: later rounds may rewrite
            _run_csr_writes(uc, [(0x3B0 + i, addrs[i]) for i in range(8)]
                            + [(0x3A0, int.from_bytes(bytes(cfgs[:8]), "little"))])
            active = pmp.rules(cfgs, addrs)
            satp = P.make_satp(ROOT)
            sum_, mxr = rng.random() < 0.5, rng.random() < 0.5
            priv, mpp = rng.choice((0, 1, 3)), rng.choice((0, 1))
            set_state(uc, satp, 3, sum_, mxr)
            _mstatus(uc, priv == 3 and rng.random() < 0.7, mpp)
            mprv = priv == 3 and bool(uc.reg_read(rc.UC_RISCV_REG_MSTATUS) >> 17 & 1)
            uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)
            for case in range(300):
                va = random_vaddr(rng) if rng.random() < 0.5 else BASE + rng.randrange(SIZE)
                access = rng.choice(ACCESSES)
                eff = mpp if mprv and access != "fetch" else priv
                try:
                    page, perms = walk.fill(ours, BASE, satp, va, access, eff, sum_, mxr,
                                            active)
                    want = ("ok", page, perms & ~4 if eff != priv else perms)
                except walk.PageFault as pf:
                    want = ("fault", pf.cause)
                calls = hook.fills + hook.faults
                got = vmem(va, PROT[access])
                where = f"{impl} table {table} round {round_} case {case} va=0x{va:x} " \
                        f"{access} priv={priv} mprv={mprv} mpp={mpp} rules={active}"
                assert hook.fills + hook.faults == calls + 1, where
                if want[0] == "fault":
                    assert got is None and hook.fault_cause == want[1], (got, where)
                else:
                    assert got == want[1] | (va & 0xFFF), where
                    if BASE <= want[1] < BASE + SIZE:
                        for other in ACCESSES:       # the entry holds exactly want's perms
                            calls = hook.fills + hook.faults
                            vmem(va, PROT[other], flush=False)
                            hit = hook.fills + hook.faults == calls
                            assert hit == bool(want[2] & PROT[other]), (other, where)
                            if not hit:      # the hook walked again: mirror its A/D
                                e2 = mpp if mprv and other != "fetch" else priv
                                outcome(walk.fill, ours, BASE, satp, va, other, e2, sum_, mxr,
                                        active)
                                break
                stats[want[0] if want[0] == "ok" else want[1]] += 1
            assert theirs[:] == bytes(ours), f"A/D differ: {where}"
        hook.uninstall()
    assert stats["ok"] > 500 and stats[5] and stats[7] and stats[1], stats


# --- end to end: a guest that uses PMP and MPRV, on emu and on QEMU -------------------

MLINK = """
OUTPUT_ARCH("riscv")
ENTRY(_start)
SECTIONS { . = 0x80000000; .text : { *(.text*) } . = ALIGN(4096); .data : { *(.data*) } }
"""

# The end of a step-by-step guest: PASS through the finisher (status 0), or
# at `fail` FAIL with the step in s2 (the exit status).
PASS_FAIL = r"""
    li t0, 0x100000
    li t1, 0x5555                   # PASS
    sw t1, 0(t0)
1:  j 1b
fail:
    slli t1, s2, 16
    li t0, 0x3333
    or t1, t1, t0
    li t0, 0x100000
    sw t1, 0(t0)
2:  j 2b
"""

# Each step sets s2 first; a wrong outcome ends the run with the finisher's
# FAIL code = the step (exit status), success with PASS (status 0).
PMP_GUEST = r"""
.section .text
.globl _start
_start:
    la t0, mtrap1
    csrw mtvec, t0
    la s1, secret
    srli t0, s1, 2
    ori t0, t0, 0x1ff               # NAPOT, 4 KiB: (4096 >> 3) - 1 ones
    csrw pmpaddr0, t0
    li t0, -1
    csrw pmpaddr1, t0               # NAPOT over everything
    li t0, 0x1f18                   # entry 1: NAPOT RWX; entry 0: NAPOT, no R/W/X
    csrw pmpcfg0, t0
    li s2, 1                        # 1: S reads the secret page: load access fault
    li t1, 0x1800
    csrc mstatus, t1
    li t1, 0x0800                   # MPP = S
    csrs mstatus, t1
    la t1, smode
    csrw mepc, t1
    mret
smode:
    ld t0, 0(s1)
    j fail
.align 4
mtrap1:
    csrr t0, mcause
    li t1, 5
    bne t0, t1, fail
    csrr t0, mtval
    bne t0, s1, fail
    li s2, 2                        # 2: an unlocked entry does not bind M
    ld t0, 0(s1)
    ld t1, 8(s1)
    bne t0, t1, fail
    li s2, 3                        # 3: locked read-only, M's store faults
    la t0, mtrap3
    csrw mtvec, t0
    li t0, 0x1f99                   # entry 0: L, NAPOT, R
    csrw pmpcfg0, t0
    sd zero, 0(s1)
    j fail
.align 4
mtrap3:
    csrr t0, mcause
    li t1, 7
    bne t0, t1, fail
    li s2, 4                        # 4: a locked entry ignores writes; M still reads
    li t0, 0x1f18
    csrw pmpcfg0, t0
    csrr t0, pmpcfg0
    andi t0, t0, 0xff
    li t1, 0x99
    bne t0, t1, fail
    ld t0, 0(s1)
    ld t1, 8(s1)
    bne t0, t1, fail
    li s2, 5                        # 5: MPRV: M's loads/stores go through S's page table
    la t0, pt
    li t1, ((0x80000000 >> 12) << 10) | 0xC7    # gigapage VA 1 GiB -> 0x80000000, V R W A D
    sd t1, 8(t0)
    srli t0, t0, 12
    li t1, 8 << 60
    or t0, t0, t1
    csrw satp, t0
    sfence.vma
    la s3, data2
    li t0, 0x40000000 - 0x80000000
    add s4, s3, t0                  # data2 through the gigapage
    li t1, 0x1800
    csrc mstatus, t1
    li t1, (1 << 17) | 0x0800       # MPRV, MPP = S
    csrs mstatus, t1
    ld t2, 0(s4)
    li t3, 0x600DF00D
    sd t3, 8(s4)
    li t1, 1 << 17
    csrc mstatus, t1                # MPRV off: physical again
    ld t4, 0(s3)
    bne t2, t4, fail
    ld t4, 8(s3)
    bne t3, t4, fail
    li s2, 6                        # 6: MPRV with MPP = U: an S page faults (13)
    la t0, mtrap6
    csrw mtvec, t0
    li t1, 0x1800
    csrc mstatus, t1
    li t1, 1 << 17                  # MPRV, MPP = U
    csrs mstatus, t1
    ld t2, 0(s4)
    j fail
.align 4
mtrap6:
    li t1, 1 << 17
    csrc mstatus, t1
    csrr t0, mcause
    li t1, 13
    bne t0, t1, fail
    csrr t0, mtval
    bne t0, s4, fail
""" + PASS_FAIL + r"""

.section .data
.align 12
pt:     .space 4096
secret: .dword 0x5EC2E7, 0x5EC2E7
.align 12
data2:  .dword 0xDA7A2, 0
"""


@pytest.mark.parametrize("mmu_impl", IMPLS)
def test_a_guest_sees_pmp_and_mprv_as_on_qemu(asm, mmu_impl):
    """Every step of PMP_GUEST passes on emu (both MMU twins); the same ELF
    passes on QEMU (below)."""
    from tests.conftest import boot as boot_machine
    elf = asm(PMP_GUEST, ld=MLINK)
    m = boot_machine(elf, bios="none", mmu=mmu_impl, max_insns=200_000)
    assert m.exit_status == 0, f"step {m.exit_status} failed: {m.stop_reason}"
    # one flush per CSR write that changed the registers (pmpaddr0, pmpaddr1,
    # pmpcfg0, the lock), none for the write the locked entry ignored
    assert m.cpu.budget.pmp_flushes == 4


def test_the_pmp_guest_passes_on_qemu(asm):
    import subprocess
    qemu = need_tool("qemu-system-riscv64")
    elf = asm(PMP_GUEST, ld=MLINK)
    r = subprocess.run([qemu, "-machine", "virt", "-bios", "none", "-kernel", elf, "-m", "128M",
                        "-nographic", "-monitor", "none", "-serial", "null"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, f"step {r.returncode} failed on QEMU: {r.stderr[-300:]!r}"


# --- code rewritten in place (unicorn's missing store check, emu/mmu/tlb.py) ----------

# xv6's pattern: the S-mode kernel writes a user program through its own
# data mapping of the page (no X, as xv6 maps RAM), returns to U, which runs
# it; then writes another program into the same page - first elsewhere in
# the page, after which unicorn 2.1.4 marks the (non-executable) TLB entry
# dirty and stops checking its stores, then over the code - FENCEs, and
# returns to U at the same address: U must run the new code (a0 = 2). Three
# gigapages map the same RAM: VA 0x80000000 for S's code (RWX), VA
# 0xC0000000 for S's data (RW) and VA 0 for U (RX). Without the MMU's
# code-page check unicorn runs its old translation (a0 = 1); QEMU does not.
REWRITE_GUEST = r"""
.section .text
.globl _start
_start:
    li t1, -1
    csrw pmpaddr0, t1
    li t1, 0x1f
    csrw pmpcfg0, t1                # all memory to S and U
    li t1, 1 << 8
    csrw medeleg, t1                # ecall from U -> S; from S -> M: the end
    la t1, mfinish
    csrw mtvec, t1
    la t1, kernel
    csrw mepc, t1
    li t1, 0x1800
    csrc mstatus, t1
    li t1, 0x0800
    csrs mstatus, t1                # MPP = S
    mret
kernel:
    la t0, pt
    li t1, ((0x80000000 >> 12) << 10) | 0xCF    # VA 2 GiB: V R W X A D (S)
    sd t1, 16(t0)
    li t1, ((0x80000000 >> 12) << 10) | 0x5B    # VA 0: V R X U A (U)
    sd t1, 0(t0)
    li t1, ((0x80000000 >> 12) << 10) | 0xC7    # VA 3 GiB: V R W A D (S data)
    sd t1, 24(t0)
    srli t0, t0, 12
    li t1, 8 << 60
    or t0, t0, t1
    csrw satp, t0
    sfence.vma
    la t1, strap
    csrw stvec, t1
    la s3, code
    li s2, 0x40000000
    add s1, s3, s2                  # the code page through S's data mapping
    li s2, 0x80000000
    sub s3, s3, s2
    addi s3, s3, 0x100              # the program as U sees it
    li t0, 0x00100513               # li a0, 1
    sw t0, 0x100(s1)
    li t0, 0x00000073               # ecall
    sw t0, 0x104(s1)
    li s4, 1                        # the value U must return
    FENCE
to_user:
    csrw sepc, s3
    li t1, 0x100
    csrc sstatus, t1                # SPP = U
    sret
.align 4
strap:
    bne a0, s4, fail
    li t1, 2
    beq s4, t1, pass
    sw zero, 0x7f8(s1)              # a store elsewhere in the page first
    li t0, 0x00200513               # li a0, 2: the new program, same place
    sw t0, 0x100(s1)
    li s4, 2
    FENCE
    j to_user
pass:
    li t1, 0x5555
    ecall
fail:
    slli t1, s4, 16
    li t0, 0x3333
    or t1, t1, t0
    ecall
.align 4
mfinish:                            # M: the finisher takes t1
    li t0, 0x100000
    sw t1, 0(t0)
1:  j 1b
.section .data
.align 12
pt:   .space 4096
code: .space 4096
"""


@pytest.mark.parametrize("fence", ["sfence.vma", "fence.i"])
@pytest.mark.parametrize("mmu_impl", IMPLS)
def test_rewritten_user_code_runs_new_after_a_fence(asm, mmu_impl, fence):
    from tests.conftest import boot as boot_machine
    elf = asm(REWRITE_GUEST.replace("FENCE", fence), ld=MLINK)
    m = boot_machine(elf, bios="none", mmu=mmu_impl, max_insns=100_000)
    assert m.exit_status == 0, f"U ran old code (status {m.exit_status}): {m.stop_reason}"
    assert m.stats.code_changes >= 1
    assert m.cpu.budget.fence_i == (2 if fence == "fence.i" else 0)


def test_the_rewrite_guest_passes_on_qemu(asm):
    import subprocess
    qemu = need_tool("qemu-system-riscv64")
    for fence in ("sfence.vma", "fence.i"):
        elf = asm(REWRITE_GUEST.replace("FENCE", fence), ld=MLINK)
        r = subprocess.run([qemu, "-machine", "virt", "-bios", "none", "-kernel", elf, "-m",
                            "128M", "-nographic", "-monitor", "none", "-serial", "null"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, (fence, r.returncode)


@pytest.mark.parametrize("impl", ["fast", "python"])
@pytest.mark.parametrize("ones", [60, 61, 62, 63])
def test_a_napot_entry_of_2_64_bytes_or_more_covers_everything(impl, ones):
    """pmpaddr with 61 or more trailing ones encodes 2^64 bytes or more: all
    of memory (a shift past 64 bits in C would be undefined)."""
    if impl == "fast":
        need_fast(twins.available("sv39"), "the Cython Sv39 twin")
    ours = random_ram(random.Random(ones), reserved=False)
    uc, theirs = make_uc(ours, virtual=True)
    hook = mmu.fill_hook_class(impl)(uc, theirs, BASE, SIZE)
    hook.install()
    address = hartstate.pmp_address(uc)
    hook.watch_pmp(address)
    pmpaddr = (1 << ones) - 1
    hartstate.write_pmp(address, 0, 0x18 | 1, pmpaddr)          # NAPOT, R only
    active = pmp.rules(*hartstate.read_pmp(address))
    want = (0, MASK64) if ones >= 61 else (0, (1 << (ones + 3)) - 1)
    assert (active[0].lo, active[0].hi) == want
    set_state(uc, 0, 1, False, False)                            # S, Bare
    vmem = unicorn_translator(uc)
    assert vmem(BASE + 0x123, PROT["read"]) == BASE + 0x123
    assert vmem(BASE + 0x123, PROT["write"]) is None and hook.fault_cause == 7
    hook.uninstall()


# --- satp: the paging modes the hart has ----------------------------------------

# Linux (setup_vm -> set_satp_mode) probes for Sv57, then Sv48, by writing
# satp and reading it back. unicorn 2.1.4 takes both writes, but our walker
# is Sv39 only, so the write must have no effect (priv. spec 4.1.11, WARL),
# as on a Sv39 hart - else Linux builds 5-level tables nothing can walk.
SATP_GUEST = r"""
.section .text
.globl _start
_start:
    li t0, -1                       # S may touch everything (PMP entry 0)
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    li t0, 1 << 11                  # MPP = S
    csrs mstatus, t0
    la t0, smode
    csrw mepc, t0
    mret
smode:
    la t1, pt
    srli t1, t1, 12
    li s2, 1                        # Sv57: ignored
    li t0, 10
    slli t0, t0, 60
    or t0, t0, t1
    csrw satp, t0
    csrr t2, satp
    bnez t2, fail
    li s2, 2                        # Sv48: ignored
    li t0, 9
    slli t0, t0, 60
    or t0, t0, t1
    csrw satp, t0
    csrr t2, satp
    bnez t2, fail
""" + PASS_FAIL + r"""

.section .data
.align 12
pt:     .space 4096
"""


@pytest.mark.parametrize("mmu_impl", IMPLS)
def test_satp_writes_of_modes_the_walker_lacks_have_no_effect(asm, mmu_impl):
    from tests.conftest import boot as boot_machine
    m = boot_machine(asm(SATP_GUEST, ld=MLINK), bios="none", mmu=mmu_impl, max_insns=200_000)
    assert m.exit_status == 0, f"step {m.exit_status} failed: {m.stop_reason}"
    assert m.cpu.budget.satp_ignored == 2
