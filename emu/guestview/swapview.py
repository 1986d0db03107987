"""The swap side of the debugger: `info swap` (the swap map in summary) and
the kernel-view probe that reads swap PTEs ("swapped out to slot N").

It reads the guest kernel's own structures (guest/kernel/swap.c, mm.h):
a swap PTE has V = 0 and PTE_SWAP (RSW bit 8) with the slot in bits 63:10;
the swap map is one byte per slot - the count of PTEs holding it, plus
SWP_CACHE (0x80) while a swap-cache page is bound to it - kept in pages
pointed to by the static array `mapp`; a slot covers sectors [8s, 8s+8) of
the AoE device. Kernels without these symbols get no swap view.

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

import struct
from typing import Any

from emu.guestview import kstats
from emu.guestview.kview import PageQuery, register_probe
from emu.mmu import WalkTrace

PTE_V = 1
PTE_SWAP = 1 << 8
SWP_CACHE = 0x80
SWP_COUNT = 0x7F
PAGE = 4096


def _map_byte(machine: Any, slot: int) -> int | None:
    """Return the swap-map byte of `slot`, or None if the kernel keeps no map
    there (kernel pointers are physical: the kernel direct-maps RAM)."""
    mapp = machine.image.symbols.by_name.get("mapp")
    if mapp is None:
        return None
    ptr_addr = mapp + 8 * (slot // PAGE)
    if not machine.mem.contains(ptr_addr, 8):
        return None
    page = struct.unpack("<Q", machine.mem.read(ptr_addr, 8))[0]
    if not page or not machine.mem.contains(page + slot % PAGE, 1):
        return None
    return machine.mem.read(page + slot % PAGE, 1)[0]


def swap_probe(machine: Any, q: PageQuery, tr: WalkTrace) -> str | None:
    """Kernel-view probe: explain a swap PTE; None for anything else."""
    last = tr.steps[-1] if tr.steps else None
    if last is None or last.raw is None or last.raw & PTE_V or not last.raw & PTE_SWAP:
        return None
    slot = last.raw >> 10
    text = (f"swapped out to slot {slot} (sectors {8 * slot}..{8 * slot + 7} of the AoE "
            "device): a fault reads it back (major fault) unless the swap cache still "
            "holds the page (minor)")
    b = _map_byte(machine, slot)
    if b is not None:
        text += f"; swap map: {b & SWP_COUNT} PTE(s) hold the slot"
        if b & SWP_CACHE:
            text += ", a swap-cache page is bound to it (no I/O needed)"
    return text


register_probe(swap_probe)


def info_swap(machine: Any) -> str:
    """Return the `info swap` text: the kernel's swap figures and the swap
    map summarised by reference count."""
    k = kstats.collect(machine)
    sw = k.get("swap") if k else None
    if not sw:
        return "no swap: this kernel keeps no swap counters"
    total, used = sw["slots_total"], sw["slots_used"]
    lines = [f"swap area: {total:,} slots of 4 KiB ({total * PAGE >> 20} MiB), "
             f"{used:,} in use",
             f"  out {sw['swap_outs']:,} pages, in {sw['swap_ins']:,} "
             f"(read-ahead {sw['readahead']:,}), cache hits {sw['swap_cache_hits']:,}, "
             f"waits {sw['swap_cache_waits']:,}, clean drops {sw['clean_drops']:,}",
             f"  writes in flight {sw['writeback']:,}, slots held back for late "
             f"duplicates {sw['slot_quarantine_skips']:,}, errors "
             f"w{sw['write_errors']}/r{sw['read_errors']}"]
    hist: dict[str, int] = {}
    readable = total and _map_byte(machine, 0) is not None
    if readable:
        for s in range(total):
            b = _map_byte(machine, s) or 0
            if not b:
                continue
            key = f"{b & SWP_COUNT} PTE" + (" + cache" if b & SWP_CACHE else "")
            hist[key] = hist.get(key, 0) + 1
        lines.append("  swap map: " + (", ".join(f"{v:,} slots {k}" for k, v in
                                                 sorted(hist.items())) or "all free"))
    aoe = k.get("aoe") or {}
    if aoe:
        lines.append(f"AoE: {aoe['requests']:,} requests, {aoe['retransmits']:,} retransmits, "
                     f"srtt {aoe['srtt_ns'] / 1e3:,.0f} us, rto {aoe['rto_ns'] / 1e3:,.0f} us, "
                     f"window {aoe['window']}/{aoe['window_cap']}")
    return "\n".join(lines)
