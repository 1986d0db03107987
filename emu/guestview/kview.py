"""The kernel's view of a page: what a fault on it means to the guest kernel
(demand-zero, protection fault, invalid, ...), next to the hardware walk.

The hardware walk says *where* translation stopped; this says what the
kernel will make of it. Kernels grow (processes, swap, reserves), so the
view is a list of probes: each gets the machine, the query and the walk and
returns a description or None; the first answer wins and the generic probe
(pure PTE reading) is the fallback. A swap-aware kernel registers a probe
that decodes its swap entries ("swapped out to slot N") with
register_probe().

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emu.mmu import WalkTrace, walk_trace
from emu.mmu.pte import SATP_MODE_BARE, flags_str, satp_mode

MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class PageQuery:
    """The access being explained: virtual address, "read"/"write"/"fetch",
    the privilege it was made at (0 U, 1 S) and the satp it used."""

    va: int
    access: str
    priv: int
    satp: int


Probe = Callable[[object, PageQuery, WalkTrace], "str | None"]
_PROBES: list[Probe] = []


def register_probe(probe: Probe) -> None:
    """Add a kernel-specific probe; probes run newest first, before the
    generic one."""
    _PROBES.insert(0, probe)


def trace(machine, q: PageQuery) -> WalkTrace:
    """Walk `q` on `machine` without side effects, with the SUM/MXR bits
    of the current sstatus. Raises ValueError/UnsupportedMode for bad input."""
    sum_, mxr = machine.cpu.sum_mxr()
    return walk_trace(machine.mem.buf, machine.mem.base, q.satp, q.va & MASK64, q.access,
                      q.priv, sum_, mxr)


def kernel_view(machine, q: PageQuery, tr: WalkTrace | None = None) -> str:
    """Return one line (maybe two) saying what the page at `q` is to the kernel."""
    if tr is None:
        tr = trace(machine, q)
    for probe in _PROBES:
        text = probe(machine, q, tr)
        if text:
            return text
    return generic(machine, q, tr)


def _user_half(va: int) -> bool:
    return not (va >> 38) & 1


def generic(machine, q: PageQuery, tr: WalkTrace) -> str:
    """The PTE-only reading, valid for any kernel."""
    if satp_mode(q.satp) == SATP_MODE_BARE:
        return "no paging (satp.MODE=Bare): every address is physical"
    if tr.ok:
        leaf = tr.steps[-1].raw if tr.steps else 0
        text = (f"present: mapped to physical 0x{tr.paddr:x} ({flags_str(leaf or 0)})")
        if tr.paddr is not None and machine.mem.contains(tr.paddr & ~0xFFF, 4096) and \
                not any(machine.mem.read(tr.paddr & ~0xFFF, 4096)):
            text += ", page all zero (freshly zero-filled?)"
        return text
    last = tr.steps[-1] if tr.steps else None
    if last is None or last.raw is None:
        return f"page table broken: {tr.stopped}"
    d = last.decoded
    if d is not None and d.kind == "leaf":
        return (f"protection fault: the page is present (physical 0x{d.paddr:x}, "
                f"{d.flags}) but {tr.stopped}")
    if last.raw == 0:
        if _user_half(q.va) and q.priv == 0:
            return (f"not mapped yet (PTE at level {last.level} is 0): a demand-paging "
                    "kernel fills the page on first touch (demand-zero or from the program "
                    "image) if one of the process's regions holds the address")
        where = "user" if _user_half(q.va) else "kernel"
        return (f"invalid: no mapping for this {where} address "
                f"(PTE at level {last.level} is 0)")
    if d is not None and not d.v:
        return (f"invalid PTE holding software state 0x{last.raw:x} (V=0): not a hardware "
                "translation - the kernel's own encoding (e.g. a swap entry)")
    return f"invalid: {tr.stopped}"
