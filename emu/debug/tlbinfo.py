"""`info tlb`: what QEMU's soft TLB holds now, for each privilege, checked
against the page table of the current address space.

unicorn 2.1.4 cannot list its TLB, but it can be asked about one page at a
time without changing it (emu/mmu/tlbprobe.py). The pages asked about are
those the fill hook filled last (its ring of 4,096, kept by both twins) and
every 4 KiB page the current page table maps (up to MAX_MAPPED); together
they cover every entry except one for a page that is no longer mapped and
was filled more than 4,096 fills ago. Each cached entry is compared with a
walk of the table now (no A/D writes): `ok` when the table still gives that
physical page and allows every cached permission, otherwise `STALE` and
what the table says now - a PTE changed without `sfence.vma`.

QEMU keeps one table per privilege (mmu_idx), so S and U entries are listed
apart, the current privilege first. Entries are not tagged with an address
space: after a satp write that keeps the ASID the old space's entries stay
until `sfence.vma`, and they show up here as STALE.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from emu.debug.infomem import canonical, leaves
from emu.mmu import UnsupportedMode, walk_trace
from emu.mmu.pte import PAGE_SIZE, PTE_D, SATP_MODE_BARE, satp_asid, satp_mode, satp_root
from emu.mmu.tlb import RING
from emu.mmu.tlbprobe import Cached, probe

MAX_MAPPED = 65536
_ACCESS = {"r": "read", "w": "write", "x": "fetch"}
_PRIV = {0: "U", 1: "S"}


def candidate_pages(machine, satp: int) -> tuple[set[int], set[int], bool]:
    """(recently filled pages, mapped pages, capped): the pages to probe."""
    mem = machine.mem
    recent = set(machine.cpu.mmu.recent_fills())
    mapped: set[int] = set()
    capped = False
    if satp_mode(satp) == SATP_MODE_BARE:
        spans = [(mem.base, mem.base, mem.size)]
    else:
        spans = [(va, pa, size) for va, pa, size, _ in leaves(mem, satp)]
    for va, _, size in spans:
        for off in range(0, size, PAGE_SIZE):
            if len(mapped) >= MAX_MAPPED:
                capped = True
                break
            mapped.add(canonical(va + off))
    return recent, mapped, capped


def verdict(machine, e: Cached, satp: int, sstatus: int) -> str:
    """`ok`, or `STALE: ...` when the page table now disagrees with the entry."""
    mem = machine.mem
    for letter in e.perms.replace("-", ""):
        try:
            tr = walk_trace(mem.buf, mem.base, satp, e.va, _ACCESS[letter], e.priv,
                            sum=bool(sstatus >> 18 & 1), mxr=bool(sstatus >> 19 & 1))
        except UnsupportedMode as exc:
            return f"STALE: {exc}"
        if not tr.ok:
            return f"STALE: {_ACCESS[letter]} now faults ({tr.stopped})"
        if tr.paddr is not None and tr.paddr & ~(PAGE_SIZE - 1) != e.pa:
            return f"STALE: now maps 0x{tr.paddr & ~(PAGE_SIZE - 1):x}"
        leaf = tr.steps[-1].raw if tr.steps else None
        if letter == "w" and leaf is not None and not leaf & PTE_D:
            return "STALE: W cached but D now clear (stores will not set it)"
    return "ok"


def info_tlb(machine) -> str:
    """The `info tlb` text for `machine` (stopped)."""
    cpu = machine.cpu
    satp, sstatus, priv = cpu.csr("satp"), cpu.csr("sstatus"), cpu.priv
    recent, mapped, capped = candidate_pages(machine, satp)
    privs = [1, 0] if priv != 0 else [0, 1]
    entries = probe(cpu.uc, recent | mapped, privs)
    if satp_mode(satp) == SATP_MODE_BARE:
        space = "bare (no translation)"
    else:
        space = f"Sv39, ASID {satp_asid(satp)}, root 0x{satp_root(satp):x}"
    out = [f"soft TLB (QEMU's, probed page by page): satp 0x{satp:x} ({space}), "
           f"SUM {sstatus >> 18 & 1} MXR {sstatus >> 19 & 1}"]
    for p in privs:
        mine = sorted((e for e in entries if e.priv == p), key=lambda e: e.va)
        now = " (current)" if p == priv else ""
        if not mine:
            out.append(f"{_PRIV[p]}-mode{now}: nothing cached")
            continue
        out.append(f"{_PRIV[p]}-mode{now}: {len(mine)} page{'s' if len(mine) != 1 else ''}")
        out.append(f"  {'virtual':<18}  {'physical':<10}  cached  page table now")
        for e in mine:
            out.append(f"  0x{e.va:016x}  0x{e.pa:<8x}  {e.perms:<6}  "
                       f"{verdict(machine, e, satp, sstatus)}")
    fills = min(cpu.mmu.fills, RING)
    where = "RAM pages (no page table)" if satp_mode(satp) == SATP_MODE_BARE else \
        "mapped by the page table"
    out.append(f"probed {len(recent | mapped):,} pages for each privilege: {len(mapped):,} "
               f"{where}" + (f" (the first {MAX_MAPPED:,})" if capped else "")
               + f", {len(recent):,} from the fill hook's last {fills:,} fills")
    return "\n".join(out)
