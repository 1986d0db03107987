"""Reference Sv39 page-table walker in plain Python.

Role: the readable, spec-shaped definition of address translation for the
machine. The debugger uses it (`walk_trace`, `translate` without A/D
updates), and the tests use it as the oracle that the Cython twin
(fast/sv39.pyx), the pure fill hook's tuned transcription (`fill_page` in
emu/mmu/tlb.py) and unicorn's built-in walker are compared against.

Everything follows the RISC-V Privileged Architecture, version 20211203:
section 4.3.2 "Virtual Address Translation Process" (written for Sv32; section
4.4.1 says Sv39 uses the same algorithm with LEVELS=3, PTESIZE=8) and section
4.4.1 "Addressing and Memory Protection" for the Sv39 formats. The step
numbers in the comments below are the steps of section 4.3.2.

Deliberate choices where the spec leaves room (see docs/mmu.md):
- Non-leaf PTEs: the D, A and U bits are reserved for software to clear; we
  ignore them, as unicorn's built-in (QEMU) walker does.
- Bits 63..54 (N, PBMT, reserved): this hart implements neither Svnapot nor
  Svpbmt, so a PTE with any of them set raises a page fault (step 3). QEMU
  in unicorn 2.1.4 instead folds them into the PPN - a documented deviation.
- A PTE address outside RAM fails the PMA check of step 2: access fault
  (1/5/7), not page fault. QEMU raises a page fault there.
- A/D (step 7): with update_ad=True we set them as hardware would (A on any
  access, D on a store); with update_ad=False nothing is written.
- PMP (section 3.7, emu/mmu/pmp.py), when the caller passes the active
  rules: the walk's own PTE reads are checked as S-mode 8-byte loads and the
  final physical page for the access at `priv`; a failure is an access
  fault (1/5/7), as in QEMU. M-mode with MPRV is the caller's business: it
  passes the effective privilege (mstatus.MPP).

Layer: mmu (imports only emu.core).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from emu.mmu import pmp as _pmp
from emu.mmu.pte import (
    PAGE_SHIFT,
    PPN_MASK,
    PPN_SHIFT,
    RESERVED_MASK,
    SATP_MODE_BARE,
    SATP_MODE_SHIFT,
    SATP_MODE_SV39,
    SATP_PPN_MASK,
    VPN_BITS,
    A,
    D,
    DecodedPte,
    R,
    U,
    V,
    W,
    X,
    decode,
)

__all__ = [
    "ACCESS_FAULT",
    "CAUSE_NAMES",
    "PAGE_FAULT",
    "PageFault",
    "TraceStep",
    "UnsupportedMode",
    "WalkTrace",
    "access_code",
    "fill",
    "translate",
    "u64_view",
    "walk_trace",
]

MASK64 = (1 << 64) - 1

# Access kinds, as strings (public API) and as small ints (hot paths, twins).
READ, WRITE, FETCH = 0, 1, 2
_ACCESS = {"read": READ, "write": WRITE, "fetch": FETCH}

# Exception codes (mcause/scause values), privileged spec table 4.2.
CAUSE_FETCH_ACCESS, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS = 1, 5, 7
CAUSE_FETCH_PAGE, CAUSE_LOAD_PAGE, CAUSE_STORE_PAGE = 12, 13, 15
PAGE_FAULT = (CAUSE_LOAD_PAGE, CAUSE_STORE_PAGE, CAUSE_FETCH_PAGE)  # by access code
ACCESS_FAULT = (CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS)
CAUSE_NAMES = {
    1: "instruction access fault", 5: "load access fault", 7: "store/AMO access fault",
    12: "instruction page fault", 13: "load page fault", 15: "store/AMO page fault",
}

# Privilege levels (the encoding of mstatus.MPP / unicorn's UC_RISCV_REG_PRIV).
PRIV_U, PRIV_S, PRIV_M = 0, 1, 3

# unicorn's UC_PROT_* bits: what a filled TLB entry permits.
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC

_TOP_ONES = (1 << (64 - 38)) - 1  # bits 63..38 all set


class PageFault(Exception):
    """A translation failed. `cause` is the exception code the hart raises
    (12/13/15 page fault, or 1/5/7 access fault when a PTE lies outside RAM),
    `vaddr` the virtual address, `reason` a short human explanation."""

    def __init__(self, cause: int, vaddr: int, reason: str = "") -> None:
        self.cause = cause
        self.vaddr = vaddr
        self.reason = reason
        name = CAUSE_NAMES.get(cause, f"cause {cause}")
        super().__init__(f"{name} (cause {cause}) at 0x{vaddr:x}"
                         + (f": {reason}" if reason else ""))

    @property
    def is_access_fault(self) -> bool:
        """True for the access-fault causes (1, 5, 7)."""
        return self.cause in ACCESS_FAULT


class UnsupportedMode(ValueError):
    """satp.MODE is neither Bare (0) nor Sv39 (8)."""


def access_code(access: str) -> int:
    """Map "read"/"write"/"fetch" to 0/1/2. Raises ValueError otherwise."""
    try:
        return _ACCESS[access]
    except KeyError:
        raise ValueError(f"access must be read, write or fetch, not {access!r}") from None


def u64_view(ram) -> memoryview:
    """Return a native u64 memoryview over `ram` (trailing bytes that cannot
    hold a whole PTE are dropped). Raises NotImplementedError on big-endian
    hosts, where native u64 is not the guest's little-endian PTE layout."""
    if sys.byteorder != "little":  # pragma: no cover - all supported hosts are LE
        raise NotImplementedError("the Sv39 walker reads PTEs as native little-endian u64")
    mv = memoryview(ram)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv[: len(mv) & ~7].cast("Q")


def _check_priv(priv: int) -> None:
    if priv not in (PRIV_U, PRIV_S, PRIV_M):
        raise ValueError(f"priv must be 0 (U), 1 (S) or 3 (M), not {priv!r}")


def _walk(q: memoryview, ram_base: int, satp: int, vaddr: int, acc: int, priv: int,
          sum_: bool, mxr: bool, update_ad: bool,
          steps: list | None, pmp: Sequence[_pmp.Rule] | None = None) -> tuple[int, int, int]:
    """Translate `vaddr`; the core shared by translate, fill and walk_trace.

    `q` is a u64 view of RAM starting at physical `ram_base`. Returns
    (paddr, perms, level): the physical address, the UC_PROT_* bits a TLB
    entry may grant under the current priv/SUM/MXR, and the level of the leaf
    (-1 for no translation). If `steps` is a list, appends (level, pte_addr,
    pte or None) for every PTE read. `pmp`: the active PMP rules to check
    against (None: no PMP). Raises PageFault or UnsupportedMode.
    """
    # M-mode ignores satp (MPRV is resolved by the caller); Bare mode is the
    # identity map (section 4.1.11: "When MODE=Bare, supervisor virtual
    # addresses are equal to supervisor physical addresses").
    mode = satp >> SATP_MODE_SHIFT
    if priv == PRIV_M or mode == SATP_MODE_BARE:
        return vaddr, _pmp_perms(pmp, vaddr, acc, priv, _entry_perms(PROT_ALL, acc)), -1
    if mode != SATP_MODE_SV39:
        raise UnsupportedMode(f"satp.MODE={mode} is not Bare (0) or Sv39 (8)")

    # Section 4.4.1: bits 63..39 of a Sv39 address must equal bit 38.
    top = vaddr >> 38
    if top != 0 and top != _TOP_ONES:
        raise PageFault(PAGE_FAULT[acc], vaddr, "non-canonical address (bits 63..39 != bit 38)")

    # Step 1: a = satp.ppn x PAGESIZE, i = LEVELS - 1.
    a = (satp & SATP_PPN_MASK) << PAGE_SHIFT
    i = 2
    nwords = len(q)
    while True:
        # Step 2: pte = the PTE at a + va.vpn[i] x PTESIZE. A PTE outside
        # RAM fails the PMA check: access fault for the original access.
        pte_addr = a + ((vaddr >> (PAGE_SHIFT + VPN_BITS * i)) & 0x1FF) * 8
        idx = (pte_addr - ram_base) >> 3
        if pte_addr < ram_base or idx >= nwords:
            if steps is not None:
                steps.append((i, pte_addr, None))
            raise PageFault(ACCESS_FAULT[acc], vaddr,
                            f"PTE address 0x{pte_addr:x} outside RAM at level {i}")
        if pmp is not None and not _pmp.allows(pmp, pte_addr, 8, READ, PRIV_S):
            if steps is not None:
                steps.append((i, pte_addr, None))
            raise PageFault(ACCESS_FAULT[acc], vaddr,
                            f"PMP denies the PTE read at 0x{pte_addr:x} at level {i}")
        pte = q[idx]
        if steps is not None:
            steps.append((i, pte_addr, pte))

        # Step 3: V=0, the reserved encodings W-without-R (-W- and -WX),
        # and reserved bits 63..54 (no Svnapot/Svpbmt) all page-fault.
        if not pte & V:
            raise PageFault(PAGE_FAULT[acc], vaddr, f"invalid PTE (V=0) at level {i}")
        if pte & (R | W) == W:
            raise PageFault(PAGE_FAULT[acc], vaddr,
                            f"W without R (reserved encoding) at level {i}")
        if pte & RESERVED_MASK:
            raise PageFault(PAGE_FAULT[acc], vaddr, f"reserved bits 63..54 set at level {i}")

        # Step 4: R=X=0 means a pointer to the next level. Its D, A and U
        # bits are reserved for software and ignored here (as QEMU does).
        if pte & (R | X):
            break
        i -= 1
        if i < 0:
            raise PageFault(PAGE_FAULT[acc], vaddr, "pointer PTE at level 0 (no leaf)")
        a = ((pte >> PPN_SHIFT) & PPN_MASK) << PAGE_SHIFT

    # Step 5: a leaf. Check U against the privilege (section 4.1.1.2: with
    # SUM=1, S may load/store U pages; S never executes from U pages) and
    # R/W/X against the access (MXR: loads from X-only pages succeed).
    if priv == PRIV_U:
        if not pte & U:
            raise PageFault(PAGE_FAULT[acc], vaddr, "S page (U=0) accessed from U mode")
    elif pte & U:
        if acc == FETCH:
            raise PageFault(PAGE_FAULT[acc], vaddr, "fetch from U page in S mode (never allowed)")
        if not sum_:
            raise PageFault(PAGE_FAULT[acc], vaddr, "U page from S without SUM")
    if acc == READ:
        if not (pte & R or (mxr and pte & X)):
            raise PageFault(PAGE_FAULT[acc], vaddr, "load from non-readable page"
                            + (" (X-only, MXR clear)" if pte & X else ""))
    elif acc == WRITE:
        if not pte & W:
            raise PageFault(PAGE_FAULT[acc], vaddr, "store to non-writable page (W=0)")
    elif not pte & X:
        raise PageFault(PAGE_FAULT[acc], vaddr, "fetch from non-executable page (X=0)")

    # Step 6: a superpage's low PPN fields must be zero.
    ppn = (pte >> PPN_SHIFT) & PPN_MASK
    if i and ppn & ((1 << (VPN_BITS * i)) - 1):
        raise PageFault(PAGE_FAULT[acc], vaddr, f"misaligned superpage at level {i}")

    # Step 7: hardware A/D update (A on any access, D on a store). The PTE
    # is known to be in RAM (step 2), so the write cannot fail.
    if update_ad:
        new = pte | A | (D if acc == WRITE else 0)
        if new != pte:
            q[idx] = new
            pte = new

    # Step 8: pa.pgoff = va.pgoff; for a superpage pa.ppn[i-1:0] =
    # va.vpn[i-1:0] (step 6 made those PTE bits zero, so OR them in).
    paddr = (ppn << PAGE_SHIFT) | (vaddr & ((1 << (PAGE_SHIFT + VPN_BITS * i)) - 1))

    # TLB entry permissions: never more than this priv/SUM/MXR allows, and
    # no W while D is clear, so the first store misses, refills and sets D.
    perms = 0
    if pte & R or (mxr and pte & X):
        perms = PROT_READ
    if pte & W and pte & D:
        perms |= PROT_WRITE
    if pte & X and not (priv == PRIV_S and pte & U):
        perms |= PROT_EXEC
    return paddr, _pmp_perms(pmp, paddr, acc, priv, _entry_perms(perms, acc)), i


def _entry_perms(perms: int, acc: int) -> int:
    """Execute only in an entry filled for a fetch. unicorn keeps every
    store through an executable entry on its slow path (the check for code
    being overwritten), so a data page cached with X would make every store
    slow; a data entry goes fast after its first store, and a fetch from the
    page refills with X (emu/mmu/tlb.py: code pages are checked then)."""
    return perms if acc == FETCH else perms & ~PROT_EXEC


def _pmp_perms(pmp: Sequence[_pmp.Rule] | None, paddr: int, acc: int, priv: int,
               perms: int) -> int:
    """`perms` cut down to what PMP grants on paddr's page; an access fault
    if that excludes the access itself."""
    if pmp is None:
        return perms
    allowed = _pmp.page_perms(pmp, paddr & ~0xFFF, priv)
    if not allowed & _pmp.ACCESS_BIT[acc]:
        raise PageFault(ACCESS_FAULT[acc], paddr, f"PMP denies {('read', 'write', 'fetch')[acc]}"
                        f" of physical page 0x{paddr & ~0xFFF:x} at priv {priv}")
    return perms & allowed


def translate(ram, ram_base: int, satp: int, vaddr: int, access: str, priv: int,
              sum: bool = False, mxr: bool = False, update_ad: bool = False,
              pmp: Sequence[_pmp.Rule] | None = None) -> int:
    """Translate `vaddr` as the hart would for `access` at privilege `priv`.

    `ram` is a buffer (bytes-like; writable if update_ad) holding RAM from
    physical `ram_base`; `satp` the satp CSR; `access` "read", "write" or
    "fetch"; `priv` 0 (U), 1 (S) or 3 (M: no translation); `sum`/`mxr` the
    sstatus bits. Returns the physical address. With update_ad=True, sets
    the leaf's A (and D for a write) in `ram` like hardware; with False,
    `ram` is never written. `pmp`: the active PMP rules (emu.mmu.pmp.rules),
    checked on every PTE read and on the result; None = no PMP.

    Raises PageFault (cause 12/13/15, or 1/5/7 for a PTE outside RAM or PMP),
    UnsupportedMode for a satp.MODE other than Bare/Sv39, ValueError for a
    bad `access` or `priv`.
    """
    acc = access_code(access)
    _check_priv(priv)
    paddr, _, _ = _walk(u64_view(ram), ram_base, satp & MASK64, vaddr & MASK64, acc, priv,
                        bool(sum), bool(mxr), update_ad, None, pmp)
    return paddr


def fill(ram, ram_base: int, satp: int, vaddr: int, access: str, priv: int,
         sum: bool = False, mxr: bool = False,
         pmp: Sequence[_pmp.Rule] | None = None) -> tuple[int, int]:
    """Walk for a TLB fill: like translate(..., update_ad=True) but returns
    (physical page address, perms as UC_PROT_* bits).

    The perms never exceed what `priv`/`sum`/`mxr` allow: R if readable (or
    X with MXR), X only for a fetch and unless an S-mode U page, W only if W
    and D are both set after the update (a read fill on a clean page leaves
    W out; the later store misses, refills and sets D), and within what
    `pmp` grants on the page. Raises like translate().
    """
    acc = access_code(access)
    _check_priv(priv)
    paddr, perms, _ = _walk(u64_view(ram), ram_base, satp & MASK64, vaddr & MASK64, acc,
                            priv, bool(sum), bool(mxr), True, None, pmp)
    return paddr & ~0xFFF, perms


@dataclass(frozen=True)
class TraceStep:
    """One PTE read by the walk: its level, physical address, raw value
    (None if the address was outside RAM) and decoded fields."""

    level: int
    pte_addr: int
    raw: int | None
    decoded: DecodedPte | None

    @property
    def flags(self) -> str:
        """QEMU-style "rwxugad" letters, or "" when the PTE was unreadable."""
        return self.decoded.flags if self.decoded else ""


@dataclass
class WalkTrace:
    """What a walk did: the PTEs it read and why it stopped.

    `paddr` is set on success, `cause` (and `fault`) on failure; `perms` is
    what a TLB fill would grant; `needs_ad_update` says whether a hardware
    walk would have written A/D into the leaf.
    """

    vaddr: int
    access: str
    priv: int
    satp: int
    sum: bool
    mxr: bool
    steps: list[TraceStep] = field(default_factory=list)
    stopped: str = ""
    paddr: int | None = None
    perms: int = 0
    cause: int | None = None
    fault: PageFault | None = None
    needs_ad_update: bool = False

    @property
    def ok(self) -> bool:
        """True if the translation succeeded."""
        return self.cause is None

    def __str__(self) -> str:
        lines = [f"walk {self.access} 0x{self.vaddr:x} priv={self.priv} satp=0x{self.satp:x}"
                 f" sum={int(self.sum)} mxr={int(self.mxr)}"]
        for s in self.steps:
            val = "outside RAM" if s.raw is None else f"0x{s.raw:016x} {s.decoded}"
            lines.append(f"  L{s.level} pte@0x{s.pte_addr:x} = {val}")
        if self.ok:
            lines.append(f"  {self.stopped} -> paddr 0x{self.paddr:x}")
        else:
            lines.append(f"  {self.stopped} -> {CAUSE_NAMES.get(self.cause, self.cause)}"
                         f" (cause {self.cause})")
        return "\n".join(lines)


_LEVEL_SIZE = {0: "4 KiB page", 1: "2 MiB superpage", 2: "1 GiB superpage"}


def walk_trace(ram, ram_base: int, satp: int, vaddr: int, access: str, priv: int,
               sum: bool = False, mxr: bool = False) -> WalkTrace:
    """Walk like translate() but record every step; never writes `ram`.

    Returns a WalkTrace whose `stopped` says why the walk ended, e.g.
    "leaf at level 0 (4 KiB page)", "invalid PTE (V=0) at level 1",
    "W without R (reserved encoding) at level 0", "misaligned superpage at
    level 1", "U page from S without SUM", "PTE address ... outside RAM".
    Raises ValueError/UnsupportedMode for bad arguments (never PageFault).
    """
    acc = access_code(access)
    _check_priv(priv)
    satp &= MASK64
    vaddr &= MASK64
    tr = WalkTrace(vaddr=vaddr, access=access, priv=priv, satp=satp, sum=bool(sum),
                   mxr=bool(mxr))
    raw_steps: list = []
    try:
        paddr, perms, level = _walk(u64_view(ram), ram_base, satp, vaddr, acc, priv,
                                    bool(sum), bool(mxr), False, raw_steps)
    except PageFault as pf:
        tr.cause, tr.fault, tr.stopped = pf.cause, pf, pf.reason
    else:
        tr.paddr, tr.perms = paddr, perms
        if level < 0:
            tr.stopped = ("M-mode: no translation" if priv == PRIV_M
                          else "bare mode (satp.MODE=0): identity")
        else:
            tr.stopped = f"leaf at level {level} ({_LEVEL_SIZE[level]})"
            leaf = raw_steps[-1][2]
            tr.needs_ad_update = not leaf & A or (acc == WRITE and not leaf & D)
    tr.steps = [TraceStep(lv, addr, raw, None if raw is None else decode(raw))
                for lv, addr, raw in raw_steps]
    return tr
