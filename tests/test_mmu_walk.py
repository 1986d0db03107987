"""Hand-written tests of the Sv39 walker: one or more per spec corner.

Each translate() check runs on both implementations (the reference walker in
emu/mmu/walk.py and the Cython twin, skipped when not built); walk_trace
reasons are checked on the reference. Spec references are to the RISC-V
Privileged Architecture 20211203, section 4.3.2 (translation steps) and
4.4.1 (Sv39).
"""

from __future__ import annotations

import pytest

from emu import mmu
from emu.core import twins
from emu.mmu import PageFault, UnsupportedMode, translate, walk_trace
from emu.mmu import pte as P
from emu.mmu.walk import PROT_EXEC, PROT_READ, PROT_WRITE
from tests.conftest import need_fast

BASE = 0x8000_0000
SIZE = 1 << 20
DATA = BASE + 0x80000  # data pages live in the upper half of RAM
LOAD, STORE, FETCH = 13, 15, 12
CAUSE = {"read": LOAD, "write": STORE, "fetch": FETCH}
ACCESS_CAUSE = {"read": 5, "write": 7, "fetch": 1}
S, U_MODE, M = 1, 0, 3


@pytest.fixture(params=["python", "fast"])
def impl(request) -> str:
    if request.param == "fast":
        need_fast(twins.available("sv39"), "the Cython Sv39 twin")
    return request.param


@pytest.fixture
def pt() -> P.PageTableBuilder:
    ram = bytearray(SIZE)
    return P.PageTableBuilder(ram, BASE, alloc_base=BASE, alloc_size=0x80000)


def ram_of(pt: P.PageTableBuilder):
    return pt.view.obj


def xlate(pt, vaddr, access="read", priv=S, impl="python", **kw) -> int:
    return translate(ram_of(pt), BASE, pt.satp(), vaddr, access, priv, impl=impl, **kw)


def fault(pt, vaddr, access="read", priv=S, impl="python", **kw) -> PageFault:
    with pytest.raises(PageFault) as ei:
        xlate(pt, vaddr, access, priv, impl, **kw)
    assert ei.value.vaddr == vaddr & ((1 << 64) - 1)
    return ei.value


def reason(pt, vaddr, access="read", priv=S, satp=None, **kw) -> str:
    tr = walk_trace(ram_of(pt), BASE, pt.satp() if satp is None else satp, vaddr, access,
                    priv, **kw)
    return tr.stopped


# --- pte.py -------------------------------------------------------------------

def test_pte_bit_positions_follow_the_spec():
    assert [P.V, P.R, P.W, P.X, P.U, P.G, P.A, P.D] == [1 << i for i in range(8)]
    assert P.PPN_SHIFT == 10 and P.RESERVED_MASK == 0x3FF << 54


def test_flags_str_is_qemu_rwxugad():
    assert P.flags_str(P.V | P.R | P.W | P.A) == "rw---a-"
    assert P.flags_str(0xFF) == "rwxugad"
    assert P.flags_str(P.V) == "-------"
    assert P.flags_str(P.X | P.U | P.D) == "--xu--d"


def test_ppn_ignores_flags_rsw_and_reserved_bits():
    raw = P.make_pte(0x8020_3000, P.V | P.R | (3 << 8)) | (0x3FF << 54)
    assert P.ppn(raw) == 0x80203
    assert P.pte_paddr(raw) == 0x8020_3000
    d = P.decode(raw)
    assert (d.v, d.r, d.w, d.rsw, d.reserved, d.kind) == (True, True, False, 3, 0x3FF, "leaf")
    assert P.decode(P.V).kind == "pointer"
    assert P.decode(P.V | P.W).kind == "reserved-encoding"
    assert P.decode(P.R).kind == "invalid"
    with pytest.raises(ValueError):
        P.make_pte(0x8000_0010, P.V)


def test_satp_fields_and_canonical_addresses():
    s = P.make_satp(0x8000_1000, asid=0x1234)
    assert (P.satp_mode(s), P.satp_asid(s), P.satp_root(s)) == (8, 0x1234, 0x8000_1000)
    assert P.is_canonical(0x3F_FFFF_FFFF) and P.is_canonical(0xFFFF_FFC0_0000_0000)
    assert not P.is_canonical(0x40_0000_0000) and not P.is_canonical(1 << 63)


# --- bare mode, M-mode, arguments ----------------------------------------------

def test_bare_mode_and_m_mode_are_identity(pt, impl):
    for vaddr in (0, 0x1234, 0xFFFF_FFFF_FFFF_FFF0, 0x40_0000_0000):
        for access in ("read", "write", "fetch"):
            for priv in (U_MODE, S):
                assert translate(ram_of(pt), BASE, 0, vaddr, access, priv, impl=impl) == vaddr
            # M-mode ignores satp (no MPRV in this machine)
            assert translate(ram_of(pt), BASE, pt.satp(), vaddr, access, M, impl=impl) == vaddr
    assert reason(pt, 0x1000, satp=0) == "bare mode (satp.MODE=0): identity"
    assert reason(pt, 0x1000, priv=M) == "M-mode: no translation"


def test_bad_arguments(pt, impl):
    with pytest.raises(ValueError):
        xlate(pt, 0, access="exec", impl=impl)
    with pytest.raises(ValueError):
        xlate(pt, 0, priv=2, impl=impl)
    for mode in (1, 9, 10, 15):
        with pytest.raises(UnsupportedMode):
            translate(ram_of(pt), BASE, (mode << 60) | (BASE >> 12), 0, "read", S, impl=impl)
    with pytest.raises(ValueError):
        xlate(pt, 0, impl="rust")


def test_fast_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("EMU_PURE", "1")
    with pytest.raises(twins.TwinUnavailable, match="EMU_PURE"):
        translate(bytearray(4096), BASE, 0, 0, "read", S, impl="fast")
    assert not twins.available("sv39")
    assert mmu.fill_hook_class("python") is mmu.PyFillHook


# --- a plain 4 KiB mapping --------------------------------------------------------

def test_4k_page_translates_with_offset(pt, impl):
    pt.map(0x4000_5000, DATA + 0x3000, P.R | P.W | P.X | P.A | P.D)
    for access in ("read", "write", "fetch"):
        assert xlate(pt, 0x4000_5ABC, access, impl=impl) == DATA + 0x3ABC
    tr = walk_trace(ram_of(pt), BASE, pt.satp(), 0x4000_5ABC, "read", S)
    assert tr.ok and tr.paddr == DATA + 0x3ABC
    assert tr.stopped == "leaf at level 0 (4 KiB page)"
    assert [s.level for s in tr.steps] == [2, 1, 0]
    assert tr.steps[0].pte_addr == pt.root + 1 * 8  # VPN[2] of 0x4000_5ABC is 1
    assert tr.steps[-1].flags == "rwx--ad"
    assert tr.steps[-1].decoded.paddr == DATA + 0x3000
    assert "leaf at level 0" in str(tr)


# --- step 3: invalid and reserved encodings ----------------------------------------

@pytest.mark.parametrize("level", [2, 1, 0])
def test_invalid_pte_at_each_level(pt, impl, level):
    va = 0x4000_5000
    slot = pt.map(va, DATA, P.R | P.A, level=0)
    # clear V at the chosen level (level 0 is the leaf)
    addrs = [s.pte_addr for s in walk_trace(ram_of(pt), BASE, pt.satp(), va, "read", S).steps]
    target = addrs[2 - level]
    assert level != 0 or target == slot
    pt.write_pte(target, pt.read_pte(target) & ~P.V)
    for access in ("read", "write", "fetch"):
        assert fault(pt, va, access, impl=impl).cause == CAUSE[access]
    assert reason(pt, va) == f"invalid PTE (V=0) at level {level}"


@pytest.mark.parametrize("bits", [P.W, P.W | P.X])
@pytest.mark.parametrize("level", [2, 1, 0])
def test_w_without_r_is_reserved_at_any_level(pt, impl, bits, level):
    va = 0x4000_5000
    slot = pt.pte_addr(va, level)
    pt.write_pte(slot, P.make_pte(DATA if level == 0 else BASE, P.V | bits | P.A | P.D | P.U))
    for access in ("read", "write", "fetch"):
        for priv in (U_MODE, S):
            assert fault(pt, va, access, priv, impl=impl).cause == CAUSE[access]
    assert reason(pt, va) == f"W without R (reserved encoding) at level {level}"


@pytest.mark.parametrize("bit", range(54, 64))
def test_reserved_high_bits_fault(pt, impl, bit):
    # Bits 63..54 (N, PBMT, reserved): no Svnapot/Svpbmt here, so step 3 faults.
    va = 0x4000_5000
    slot = pt.map(va, DATA, P.R | P.W | P.A | P.D)
    assert xlate(pt, va, impl=impl) == DATA
    pt.write_pte(slot, pt.read_pte(slot) | (1 << bit))
    assert fault(pt, va, impl=impl).cause == LOAD
    assert reason(pt, va) == "reserved bits 63..54 set at level 0"


def test_reserved_high_bits_in_a_pointer_fault(pt, impl):
    va = 0x4000_5000
    pt.map(va, DATA, P.R | P.A)
    slot = pt.root + 8
    pt.write_pte(slot, pt.read_pte(slot) | (1 << 61))
    assert fault(pt, va, "write", impl=impl).cause == STORE
    assert reason(pt, va) == "reserved bits 63..54 set at level 2"


def test_pointer_at_level_0_faults(pt, impl):
    va = 0x4000_5000
    slot = pt.pte_addr(va, 0)
    pt.write_pte(slot, P.make_pte(BASE, P.V))
    assert fault(pt, va, "fetch", impl=impl).cause == FETCH
    assert reason(pt, va) == "pointer PTE at level 0 (no leaf)"


def test_non_leaf_a_d_u_g_and_rsw_bits_are_ignored(pt, impl):
    va = 0x4000_5000
    pt.map(va, DATA, P.R | P.W | P.A | P.D)
    for slot in (pt.root + 8, P.pte_paddr(pt.read_pte(pt.root + 8))):
        pt.write_pte(slot, pt.read_pte(slot) | P.A | P.D | P.U | P.G | (3 << 8))
    # S-mode reaches the S leaf although the pointers carry U=1 ...
    assert xlate(pt, va, "write", impl=impl) == DATA
    # ... and U-mode is still refused by the leaf's U=0.
    assert fault(pt, va, priv=U_MODE, impl=impl).cause == LOAD


# --- superpages (step 6 and step 8) ----------------------------------------------

def test_megapage_and_gigapage_translate(pt, impl):
    pt.map(0x4020_0000, BASE + 0x20_0000, P.R | P.W | P.A | P.D, level=1)
    pt.map(0xC000_0000, BASE, P.R | P.X | P.A, level=2)
    assert xlate(pt, 0x4023_4567, impl=impl) == BASE + 0x23_4567
    assert xlate(pt, 0xC123_4567, "fetch", impl=impl) == BASE + 0x123_4567
    assert reason(pt, 0x4023_4567) == "leaf at level 1 (2 MiB superpage)"
    assert reason(pt, 0xC123_4567, "fetch") == "leaf at level 2 (1 GiB superpage)"


@pytest.mark.parametrize("level,misalign", [(1, 1), (1, 0x100), (2, 1), (2, 0x200),
                                            (2, 0x20000)])
def test_misaligned_superpage_faults(pt, impl, level, misalign):
    va = 0xC000_0000 if level == 2 else 0x4020_0000
    target = BASE + 0x20_0000 + (misalign << 12)
    slot = pt.pte_addr(va, level)
    pt.write_pte(slot, P.make_pte(target, P.V | P.R | P.W | P.X | P.A | P.D))
    for access in ("read", "write", "fetch"):
        assert fault(pt, va + 0x1234, access, impl=impl).cause == CAUSE[access]
    assert reason(pt, va) == f"misaligned superpage at level {level}"


# --- canonical addresses (section 4.4.1) -------------------------------------------

def test_non_canonical_addresses_fault(pt, impl):
    pt.map(0x5000, DATA, P.R | P.W | P.X | P.A | P.D)
    assert xlate(pt, 0x5000, impl=impl) == DATA
    for bad in (0x5000 | 1 << 39, 0x5000 | 1 << 63, 0x5000 | 1 << 38, 0xFFFF_FF80_0000_5000):
        for access in ("read", "write", "fetch"):
            assert fault(pt, bad, access, impl=impl).cause == CAUSE[access]
    assert reason(pt, 0x5000 | 1 << 39).startswith("non-canonical")
    assert walk_trace(ram_of(pt), BASE, pt.satp(), 1 << 39, "read", S).steps == []


def test_high_half_canonical_address_uses_root_slot_256(pt, impl):
    va = 0xFFFF_FFC0_0000_3000  # bit 38 set, bits 63..39 set: VPN[2] = 256
    pt.map(va, DATA, P.R | P.A)
    assert xlate(pt, va, impl=impl) == DATA
    assert walk_trace(ram_of(pt), BASE, pt.satp(), va, "read", S).steps[0].pte_addr == \
        pt.root + 256 * 8


# --- step 5: privilege, SUM, MXR, R/W/X ------------------------------------------

def test_u_mode_needs_u_pages(pt, impl):
    pt.map(0x1000, DATA, P.R | P.W | P.X | P.A | P.D)  # S page
    pt.map(0x2000, DATA + 0x1000, P.R | P.W | P.X | P.U | P.A | P.D)  # U page
    for access in ("read", "write", "fetch"):
        assert fault(pt, 0x1000, access, U_MODE, impl=impl).cause == CAUSE[access]
        # SUM does not open S pages to U-mode
        assert fault(pt, 0x1000, access, U_MODE, impl=impl, sum=True).cause == CAUSE[access]
        assert xlate(pt, 0x2010, access, U_MODE, impl=impl) == DATA + 0x1010
    assert reason(pt, 0x1000, priv=U_MODE) == "S page (U=0) accessed from U mode"


def test_s_mode_and_u_pages_sum(pt, impl):
    pt.map(0x2000, DATA, P.R | P.W | P.X | P.U | P.A | P.D)
    for access in ("read", "write", "fetch"):
        assert fault(pt, 0x2000, access, impl=impl).cause == CAUSE[access]
    assert reason(pt, 0x2000) == "U page from S without SUM"
    assert xlate(pt, 0x2000, "read", impl=impl, sum=True) == DATA
    assert xlate(pt, 0x2000, "write", impl=impl, sum=True) == DATA
    # S never executes from a U page, SUM or not
    assert fault(pt, 0x2000, "fetch", impl=impl, sum=True).cause == FETCH
    assert reason(pt, 0x2000, "fetch", sum=True) == "fetch from U page in S mode (never allowed)"


@pytest.mark.parametrize("priv,flags", [(S, 0), (U_MODE, P.U)])
def test_mxr_makes_x_only_pages_readable(pt, impl, priv, flags):
    pt.map(0x3000, DATA, P.X | P.A | P.D | flags)
    assert fault(pt, 0x3000, "read", priv, impl=impl).cause == LOAD
    assert reason(pt, 0x3000, priv=priv) == "load from non-readable page (X-only, MXR clear)"
    assert xlate(pt, 0x3008, "read", priv, impl=impl, mxr=True) == DATA + 8
    assert fault(pt, 0x3000, "write", priv, impl=impl, mxr=True).cause == STORE
    assert xlate(pt, 0x3000, "fetch", priv, impl=impl) == DATA


def test_rwx_permissions(pt, impl):
    pt.map(0x1000, DATA, P.R | P.A | P.D)
    pt.map(0x2000, DATA, P.R | P.W | P.A | P.D)
    pt.map(0x3000, DATA, P.R | P.X | P.A | P.D)
    assert fault(pt, 0x1000, "write", impl=impl).cause == STORE
    assert fault(pt, 0x1000, "fetch", impl=impl).cause == FETCH
    assert fault(pt, 0x2000, "fetch", impl=impl).cause == FETCH
    assert fault(pt, 0x3000, "write", impl=impl).cause == STORE
    assert xlate(pt, 0x3000, "read", impl=impl) == DATA
    assert reason(pt, 0x1000, "write") == "store to non-writable page (W=0)"
    assert reason(pt, 0x2000, "fetch") == "fetch from non-executable page (X=0)"
    assert reason(pt, 0x1000 | 0, "read") == "leaf at level 0 (4 KiB page)"


# --- step 2: PTEs outside RAM are access faults -------------------------------------

def test_pte_outside_ram_is_an_access_fault(pt, impl):
    ram = ram_of(pt)
    # satp pointing below RAM
    for access in ("read", "write", "fetch"):
        with pytest.raises(PageFault) as ei:
            translate(ram, BASE, P.make_satp(0x1000), 0x5000, access, S, impl=impl)
        assert ei.value.cause == ACCESS_CAUSE[access] and ei.value.is_access_fault
    # a pointer past the end of RAM
    pt.write_pte(pt.root, P.make_pte(BASE + SIZE, P.V))
    assert fault(pt, 0x5000, "write", impl=impl).cause == 7
    assert reason(pt, 0x5000) == f"PTE address 0x{BASE + SIZE:x} outside RAM at level 1"
    tr = walk_trace(ram, BASE, pt.satp(), 0x5000, "read", S)
    assert tr.steps[-1].raw is None and tr.steps[-1].flags == "" and "outside RAM" in str(tr)
    # a leaf pointing outside RAM still translates: the access itself faults later
    pt.write_pte(pt.root + 8, P.make_pte(0x1_0000_0000_0000, P.V | P.R | P.A | P.D))
    assert xlate(pt, 0x4000_1234, impl=impl) == 0x1_0000_0000_1234


def test_last_pte_in_ram_is_readable(impl):
    ram = bytearray(3 * 4096)
    b = P.PageTableBuilder(ram, BASE)
    b.map(0x7FC0_0000 | 0x1FF << 12, BASE, P.R | P.A)  # VPN[0] = 511: last u64 of a table
    assert translate(ram, BASE, b.satp(), 0x7FDF_F000, "read", S, impl=impl) == BASE


# --- step 7: A/D ---------------------------------------------------------------

def test_ad_bits_set_like_hardware(pt, impl):
    slot = pt.map(0x5000, DATA, P.R | P.W | P.X)
    xlate(pt, 0x5000, "read", impl=impl, update_ad=True)
    assert pt.read_pte(slot) & (P.A | P.D) == P.A
    xlate(pt, 0x5000, "fetch", impl=impl, update_ad=True)
    assert pt.read_pte(slot) & (P.A | P.D) == P.A
    xlate(pt, 0x5000, "write", impl=impl, update_ad=True)
    assert pt.read_pte(slot) & (P.A | P.D) == P.A | P.D
    slot2 = pt.map(0x6000, DATA, P.R | P.W)
    xlate(pt, 0x6000, "write", impl=impl, update_ad=True)
    assert pt.read_pte(slot2) & (P.A | P.D) == P.A | P.D


def test_no_write_without_update_ad_or_on_fault(pt, impl):
    pt.map(0x5000, DATA, P.R)
    before = bytes(ram_of(pt))
    xlate(pt, 0x5000, "read", impl=impl)  # update_ad=False: debugger read
    fault(pt, 0x5000, "write", impl=impl, update_ad=True)  # faults before step 7
    assert bytes(ram_of(pt)) == before
    # and a read-only buffer is fine when nothing is written
    assert translate(before, BASE, pt.satp(), 0x5000, "read", S, impl=impl) == DATA


def test_walk_trace_has_no_side_effects_and_flags_ad(pt):
    slot = pt.map(0x5000, DATA, P.R | P.W)
    frozen = bytes(ram_of(pt))
    tr = walk_trace(frozen, BASE, pt.satp(), 0x5000, "write", S)
    assert tr.ok and tr.needs_ad_update and bytes(ram_of(pt)) == frozen
    pt.write_pte(slot, pt.read_pte(slot) | P.A | P.D)
    assert not walk_trace(ram_of(pt), BASE, pt.satp(), 0x5000, "write", S).needs_ad_update
    tr = walk_trace(ram_of(pt), BASE, pt.satp(), 0x5000, "fetch", S)
    assert not tr.ok and tr.cause == FETCH and tr.fault.vaddr == 0x5000 and tr.paddr is None


# --- fill perms ------------------------------------------------------------------

def fill(pt, vaddr, access, priv=S, impl="python", **kw):
    mod = twins.compiled("sv39") if impl == "fast" else mmu.walk
    return mod.fill(ram_of(pt), BASE, pt.satp(), vaddr, access, priv, **kw)


def test_fill_grants_w_only_once_dirty(pt, impl):
    slot = pt.map(0x5000, DATA, P.R | P.W | P.X)
    assert fill(pt, 0x5123, "read", impl=impl) == (DATA, PROT_READ)
    assert pt.read_pte(slot) & (P.A | P.D) == P.A
    assert fill(pt, 0x5123, "write", impl=impl) == (DATA, PROT_READ | PROT_WRITE)
    assert pt.read_pte(slot) & P.D
    # once D is set, a read fill may grant W as well; X only ever for a fetch
    assert fill(pt, 0x5000, "read", impl=impl) == (DATA, PROT_READ | PROT_WRITE)
    assert fill(pt, 0x5000, "fetch", impl=impl) == (DATA, PROT_READ | PROT_WRITE | PROT_EXEC)


def test_fill_perms_never_exceed_priv_sum_mxr(pt, impl):
    pt.map(0x2000, DATA, P.R | P.W | P.X | P.U | P.A | P.D)
    # S with SUM on a U page: loads/stores, never execute
    assert fill(pt, 0x2000, "read", impl=impl, sum=True) == (DATA, PROT_READ | PROT_WRITE)
    assert fill(pt, 0x2000, "fetch", U_MODE, impl=impl) == (DATA, 7)
    pt.map(0x3000, DATA, P.X | P.A)
    assert fill(pt, 0x3000, "fetch", impl=impl) == (DATA, PROT_EXEC)
    assert fill(pt, 0x3000, "read", impl=impl, mxr=True) == (DATA, PROT_READ)
    pt.map(0x4000, DATA, P.R | P.A | P.D)
    assert fill(pt, 0x4000, "read", impl=impl) == (DATA, PROT_READ)
    pt.map(0xC000_0000, BASE, P.R | P.W | P.A | P.D, level=2)
    assert fill(pt, 0xC123_4567, "read", impl=impl) == (BASE + 0x123_4000,
                                                        PROT_READ | PROT_WRITE)
    assert fill(pt, 0x1234, "write", M, impl=impl) == (0x1000, PROT_READ | PROT_WRITE)
    assert fill(pt, 0x1234, "fetch", M, impl=impl) == (0x1000, 7)
