"""Sv39 page-table entry (PTE) and satp layout: constants, field extraction,
QEMU-style flag strings and a small decoder.

This module is the single place that knows bit positions; the walker
(emu/mmu/walk.py), the Cython twin (fast/sv39.pyx mirrors these numbers), the
debugger and the tests import from here.

Reference: RISC-V Privileged Architecture, version 20211203, section 4.4.1
("Addressing and Memory Protection", Sv39) for the PTE and virtual/physical
address formats, section 4.1.11 for satp, section 4.1.1 for sstatus.

Layer: mmu (imports only emu.core).
"""

from __future__ import annotations

from dataclasses import dataclass

# sstatus bits the walker consults (section 4.1.1.2), re-exported for it
from emu.core.isa import SSTATUS_MXR, SSTATUS_SUM  # noqa: F401

# --- Sv39 PTE (section 4.4.1, "Sv39 page table entry") ----------------------
#  63  62-61  60-54     53-28    27-19    18-10   9-8  7 6 5 4 3 2 1 0
#   N  PBMT   Reserved  PPN[2]   PPN[1]   PPN[0]  RSW  D A G U X W R V
# N and PBMT belong to the Svnapot/Svpbmt extensions, which this hart does
# not implement, so bits 63..54 are all reserved here (see RESERVED_MASK).
V = 1 << 0  # valid
R = 1 << 1  # readable
W = 1 << 2  # writable
X = 1 << 3  # executable
U = 1 << 4  # accessible to U-mode
G = 1 << 5  # global mapping
A = 1 << 6  # accessed
D = 1 << 7  # dirty

PTE_V, PTE_R, PTE_W, PTE_X, PTE_U, PTE_G, PTE_A, PTE_D = V, R, W, X, U, G, A, D
RWX = R | W | X

RSW_SHIFT = 8  # bits 9..8: reserved for supervisor software, ignored by hardware
RSW_MASK = 0x3
PPN_SHIFT = 10  # PPN occupies bits 53..10 (44 bits)
PPN_BITS = 44
PPN_MASK = (1 << PPN_BITS) - 1
RESERVED_SHIFT = 54
RESERVED_MASK = ((1 << 10) - 1) << RESERVED_SHIFT  # bits 63..54

# --- Sv39 virtual address (section 4.4.1): VPN[2] VPN[1] VPN[0] offset ------
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1
LEVELS = 3  # Sv39: three levels of 9-bit VPN
VPN_BITS = 9
VPN_MASK = (1 << VPN_BITS) - 1
PTESIZE = 8
VA_BITS = PAGE_SHIFT + LEVELS * VPN_BITS  # 39
MEGAPAGE_SIZE = 1 << (PAGE_SHIFT + VPN_BITS)  # 2 MiB leaf at level 1
GIGAPAGE_SIZE = 1 << (PAGE_SHIFT + 2 * VPN_BITS)  # 1 GiB leaf at level 2

# --- satp (RV64), section 4.1.11: MODE[63:60] ASID[59:44] PPN[43:0] ----------
SATP_MODE_SHIFT = 60
SATP_MODE_BARE = 0
SATP_MODE_SV39 = 8
SATP_ASID_SHIFT = 44
SATP_ASID_MASK = 0xFFFF
SATP_PPN_MASK = (1 << 44) - 1

_FLAG_LETTERS = (("r", R), ("w", W), ("x", X), ("u", U), ("g", G), ("a", A), ("d", D))


def ppn(pte: int) -> int:
    """Return the 44-bit PPN field (bits 53..10) of `pte`."""
    return (pte >> PPN_SHIFT) & PPN_MASK


def pte_paddr(pte: int) -> int:
    """Return the physical address the PTE points to (PPN x PAGESIZE)."""
    return ppn(pte) << PAGE_SHIFT


def make_pte(paddr: int, flags: int) -> int:
    """Build a PTE pointing at page-aligned physical `paddr` with `flags`.

    `flags` may carry any of V..D and RSW bits (bits 9..0); higher bits of
    `flags` are kept as given so tests can build reserved encodings.
    Raises ValueError if `paddr` is not page aligned or exceeds 56 bits.
    """
    if paddr & PAGE_MASK or paddr >> (PPN_BITS + PAGE_SHIFT):
        raise ValueError(f"bad PTE target 0x{paddr:x}")
    return ((paddr >> PAGE_SHIFT) << PPN_SHIFT) | flags


def make_satp(root_paddr: int, mode: int = SATP_MODE_SV39, asid: int = 0) -> int:
    """Build a satp value for a root page table at `root_paddr`.

    Raises ValueError if `root_paddr` is not page aligned.
    """
    if root_paddr & PAGE_MASK:
        raise ValueError(f"root table 0x{root_paddr:x} not page aligned")
    return ((mode << SATP_MODE_SHIFT) | ((asid & SATP_ASID_MASK) << SATP_ASID_SHIFT)
            | ((root_paddr >> PAGE_SHIFT) & SATP_PPN_MASK))


def satp_mode(satp: int) -> int:
    """Return satp.MODE (0 Bare, 8 Sv39, 9 Sv48...)."""
    return (satp >> SATP_MODE_SHIFT) & 0xF


def satp_asid(satp: int) -> int:
    """Return satp.ASID."""
    return (satp >> SATP_ASID_SHIFT) & SATP_ASID_MASK


def satp_root(satp: int) -> int:
    """Return the physical address of the root page table (satp.PPN x PAGESIZE)."""
    return (satp & SATP_PPN_MASK) << PAGE_SHIFT


def vpn(vaddr: int, level: int) -> int:
    """Return VPN[level] of a Sv39 virtual address (level 0..2)."""
    return (vaddr >> (PAGE_SHIFT + level * VPN_BITS)) & VPN_MASK


def is_canonical(vaddr: int) -> bool:
    """Return True if bits 63..39 of the 64-bit `vaddr` all equal bit 38.

    Section 4.4.1: fetch, load and store addresses that are not canonical
    raise a page fault.
    """
    top = (vaddr & 0xFFFF_FFFF_FFFF_FFFF) >> (VA_BITS - 1)
    return top == 0 or top == (1 << (64 - VA_BITS + 1)) - 1


def flags_str(pte: int) -> str:
    """Return the permission/status letters of `pte` in QEMU's `info mem`
    order "rwxugad", with '-' for each clear bit (V is not shown)."""
    return "".join(ch if pte & bit else "-" for ch, bit in _FLAG_LETTERS)


@dataclass(frozen=True)
class DecodedPte:
    """A PTE split into its fields (as the walker interprets it)."""

    raw: int
    v: bool
    r: bool
    w: bool
    x: bool
    u: bool
    g: bool
    a: bool
    d: bool
    rsw: int
    ppn: int
    reserved: int  # value of bits 63..54 (non-zero faults)

    @property
    def kind(self) -> str:
        """One of "invalid", "reserved-encoding" (W without R), "pointer"
        (next-level table) or "leaf"."""
        if not self.v:
            return "invalid"
        if self.w and not self.r:
            return "reserved-encoding"
        if not (self.r or self.x):
            return "pointer"
        return "leaf"

    @property
    def paddr(self) -> int:
        """Physical address the PTE points to (PPN x PAGESIZE)."""
        return self.ppn << PAGE_SHIFT

    @property
    def flags(self) -> str:
        """QEMU-style "rwxugad" string."""
        return flags_str(self.raw)

    def __str__(self) -> str:
        extra = f" rsv=0x{self.reserved:x}" if self.reserved else ""
        return (f"{'V' if self.v else '-'}{self.flags} ppn=0x{self.ppn:x} "
                f"rsw={self.rsw} {self.kind}{extra}")


def decode(pte: int) -> DecodedPte:
    """Split a raw 64-bit PTE into its fields."""
    return DecodedPte(
        raw=pte,
        v=bool(pte & V), r=bool(pte & R), w=bool(pte & W), x=bool(pte & X),
        u=bool(pte & U), g=bool(pte & G), a=bool(pte & A), d=bool(pte & D),
        rsw=(pte >> RSW_SHIFT) & RSW_MASK,
        ppn=ppn(pte),
        reserved=(pte & RESERVED_MASK) >> RESERVED_SHIFT,
    )


class PageTableBuilder:
    """Build Sv39 page tables inside a RAM buffer (for tests, benchmarks and
    tools that need a mapping without a guest kernel).

    `ram` is a writable buffer holding RAM from physical `ram_base`; tables
    are carved from [alloc_base, alloc_base + alloc_size) (default: the whole
    buffer), a zeroed page each. The root table is allocated at once.
    """

    def __init__(self, ram, ram_base: int, alloc_base: int | None = None,
                 alloc_size: int | None = None) -> None:
        self.view = memoryview(ram).cast("B")
        self.ram_base = ram_base
        self._next = ram_base if alloc_base is None else alloc_base
        self._end = (self._next + (alloc_size if alloc_size is not None
                                   else len(self.view) - (self._next - ram_base)))
        if self._next & PAGE_MASK:
            raise ValueError("alloc_base must be page aligned")
        self.root = self.alloc_table()

    def alloc_table(self) -> int:
        """Return the physical address of a fresh zeroed table page.
        Raises MemoryError when the allocation window is exhausted."""
        pa = self._next
        if pa + PAGE_SIZE > self._end:
            raise MemoryError("page-table allocation window exhausted")
        self._next += PAGE_SIZE
        off = pa - self.ram_base
        self.view[off:off + PAGE_SIZE] = bytes(PAGE_SIZE)
        return pa

    def read_pte(self, pte_addr: int) -> int:
        """Return the raw u64 at physical `pte_addr`."""
        off = pte_addr - self.ram_base
        return int.from_bytes(self.view[off:off + 8], "little")

    def write_pte(self, pte_addr: int, value: int) -> None:
        """Store a raw u64 at physical `pte_addr`."""
        off = pte_addr - self.ram_base
        self.view[off:off + 8] = (value & ((1 << 64) - 1)).to_bytes(8, "little")

    def pte_addr(self, vaddr: int, level: int = 0) -> int:
        """Return the physical address of the PTE that maps `vaddr` at
        `level`, creating pointer tables above it as needed."""
        table = self.root
        for lv in range(LEVELS - 1, level, -1):
            slot = table + vpn(vaddr, lv) * PTESIZE
            entry = self.read_pte(slot)
            if not entry & V:
                nxt = self.alloc_table()
                self.write_pte(slot, make_pte(nxt, V))
                table = nxt
            elif entry & RWX:
                raise ValueError(f"0x{vaddr:x} already mapped by a leaf at level {lv}")
            else:
                table = pte_paddr(entry)
        return table + vpn(vaddr, level) * PTESIZE

    def map(self, vaddr: int, paddr: int, flags: int, level: int = 0) -> int:
        """Map the page (level 0), megapage (1) or gigapage (2) holding
        `vaddr` to `paddr` with `flags` (V is added). Returns the PTE's
        physical address."""
        slot = self.pte_addr(vaddr, level)
        self.write_pte(slot, make_pte(paddr, flags | V))
        return slot

    def satp(self, asid: int = 0) -> int:
        """satp selecting Sv39 with this builder's root table."""
        return make_satp(self.root, SATP_MODE_SV39, asid)
