"""`info mem` in QEMU's RISC-V monitor format (target/riscv/monitor.c).

    vaddr            paddr            size             attr
    ---------------- ---------------- ---------------- -------
    0000000002000000 0000000002000000 0000000000010000 r----ad

One line per range of leaves with equal attributes that is contiguous both
virtually and physically; attr letters are r w x u g a d ('-' when clear).
With satp.MODE = Bare: "No translation or protection". Virtual addresses are
printed sign-extended from bit 38 (canonical Sv39), as QEMU does.

One deliberate difference: QEMU merges a leaf into the previous range when
only the *physical* address continues it (its walk_pte does not compare
virtual addresses), which can print one range across a virtual hole; here a
range also has to continue virtually.

The page table is read straight from RAM: no A/D updates, no device reads.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from emu.core.memory import PhysMem
from emu.mmu.pte import (
    PAGE_SHIFT,
    PTE_R,
    PTE_V,
    PTE_W,
    PTE_X,
    SATP_MODE_BARE,
    SATP_MODE_SV39,
    flags_str,
    pte_paddr,
    satp_mode,
    satp_root,
)

HEADER = ("vaddr            paddr            size             attr\n"
          "---------------- ---------------- ---------------- -------")


def canonical(va: int) -> int:
    """Sign-extend a 39-bit Sv39 address to 64 bits."""
    return va | ~((1 << 39) - 1) & ((1 << 64) - 1) if va >> 38 & 1 else va


def leaves(mem: PhysMem, satp: int) -> list[tuple[int, int, int, int]]:
    """Return every valid leaf of the Sv39 table of `satp` as (vaddr, paddr,
    size, attr byte), in virtual address order. Tables outside RAM are skipped."""
    out: list[tuple[int, int, int, int]] = []

    def walk(table: int, level: int, va_base: int) -> None:
        if not mem.contains(table, 4096):
            return
        raw = mem.read(table, 4096)
        size = 1 << (PAGE_SHIFT + 9 * level)
        for idx in range(512):
            pte = int.from_bytes(raw[idx * 8:idx * 8 + 8], "little")
            if not pte & PTE_V:
                continue
            va = va_base + idx * size
            if pte & (PTE_R | PTE_W | PTE_X):
                out.append((va, pte_paddr(pte), size, pte & 0xFF))
            elif level > 0:
                walk(pte_paddr(pte), level - 1, va)

    walk(satp_root(satp), 2, 0)
    return out


def ranges(mem: PhysMem, satp: int) -> list[tuple[int, int, int, int]]:
    """Merge leaves() into maximal ranges: (vaddr, paddr, size, attr)."""
    merged: list[list[int]] = []
    for va, pa, size, attr in leaves(mem, satp):
        if merged:
            last = merged[-1]
            if last[3] == attr and last[0] + last[2] == va and last[1] + last[2] == pa:
                last[2] += size
                continue
        merged.append([va, pa, size, attr])
    return [tuple(r) for r in merged]  # type: ignore[misc]


def info_mem(mem: PhysMem, satp: int) -> str:
    """Return the `info mem` text for `satp` (no trailing newline)."""
    mode = satp_mode(satp)
    if mode == SATP_MODE_BARE:
        return "No translation or protection"
    if mode != SATP_MODE_SV39:
        return f"Unsupported MMU mode {mode} (satp 0x{satp:x})"
    lines = [HEADER]
    for va, pa, size, attr in ranges(mem, satp):
        lines.append(f"{canonical(va):016x} {pa:016x} {size:016x} {flags_str(attr)}")
    return "\n".join(lines)
