"""The guest kernel's own counters, read from guest memory after a run.

The kernel (guest/kernel/kstats.h) keeps `struct kstats` at the global
symbol `kstats`: a flat array of little-endian u64s whose first two words are
a magic number and a layout version. `collect(machine)` finds it through the
image's ELF symbols, checks both, and returns the figures under stable keys
(docs/kernel.md). The tables below mirror kstats.h and syscall.h;
tests/test_kernel.py checks that they agree with the headers.

Gauges (free pages, pages by use) are the values at the moment the run
stopped; counters count from boot.
"""

from __future__ import annotations

import struct
from typing import Any

MAGIC = 0x3130_5354_4154_534B  # "KSTATS01"
VERSION = 1
NSYSCALL = 16
NFAULTKIND = 8
NFRAMEUSE = 8

# Number -> name, as in guest/kernel/syscall.h (SYS_*).
SYSCALL_NAMES: dict[int, str] = {
    1: "write", 2: "exit", 3: "wait", 4: "getpid", 5: "sbrk", 6: "yield",
    7: "sleep", 8: "spawn", 9: "uptime", 10: "meminfo",
}
# FAULT_* kinds of kstats.h: how a user page fault was resolved, or why not.
FAULT_KINDS: dict[int, str] = {
    0: "demand_zero", 1: "image", 2: "protection", 3: "bad", 4: "spurious",
}
# FRAME_* uses of kstats.h: what each physical page is doing.
FRAME_USES: dict[int, str] = {
    0: "free", 1: "reserved", 2: "kernel", 3: "pagetable", 4: "kstack", 5: "kmalloc",
    6: "user", 7: "image",
}

# struct kstats, field by field: (name, number of u64s).
LAYOUT: tuple[tuple[str, int], ...] = (
    ("magic", 1), ("version", 1), ("ctxsw", 1), ("preempt", 1), ("procs_created", 1),
    ("ticks", 1), ("syscalls", NSYSCALL), ("faults", NFAULTKIND), ("copyfills", 1),
    ("segfaults", 1),
    ("oom_kills", 1), ("alloc_fails", 1), ("pages_total", 1), ("pages", NFRAMEUSE),
    ("wmark_min", 1), ("wmark_low", 1), ("wmark_high", 1),
)
SIZE = 8 * sum(n for _, n in LAYOUT)


def read_raw(machine: Any) -> dict[str, Any] | None:
    """Return struct kstats as {field: int or list of ints}, or None if the
    image has no `kstats` symbol, the symbol does not lie in RAM, or the
    magic/version show the kernel did not boot far enough or has another
    layout."""
    addr = machine.image.symbols.by_name.get("kstats")
    if addr is None or not machine.mem.contains(addr, SIZE):
        return None
    words = struct.unpack(f"<{SIZE // 8}Q", machine.mem.read(addr, SIZE))
    raw: dict[str, Any] = {}
    i = 0
    for name, n in LAYOUT:
        raw[name] = words[i] if n == 1 else list(words[i:i + n])
        i += n
    if raw["magic"] != MAGIC or raw["version"] != VERSION:
        return None
    return raw


def collect(machine: Any) -> dict[str, Any]:
    """Return the guest kernel's figures with stable keys, or {} when the
    kernel keeps no readable `kstats` (another guest, or one that stopped
    before setting its magic).

    Keys: context_switches, preemptions, processes_created, timer_ticks,
    syscalls {name: count} (every known call, zeros included),
    syscalls_unknown, syscalls_total, page_faults {kind: count},
    page_faults_total, copy_fills (pages copyin/copyout brought in without a
    trap; counted in page_faults too), segfaults, oom_kills, alloc_failures, and memory
    {pages_total, pages_free, pages_by_use {use: pages}, watermarks
    {min, low, high}}.
    """
    raw = read_raw(machine)
    if raw is None:
        return {}
    calls = raw["syscalls"]
    faults = raw["faults"]
    pages = raw["pages"]
    syscalls = {name: calls[nr] for nr, name in sorted(SYSCALL_NAMES.items())}
    page_faults = {name: faults[k] for k, name in sorted(FAULT_KINDS.items())}
    return {
        "context_switches": raw["ctxsw"],
        "preemptions": raw["preempt"],
        "processes_created": raw["procs_created"],
        "timer_ticks": raw["ticks"],
        "syscalls": syscalls,
        "syscalls_unknown": calls[0],
        "syscalls_total": sum(calls),
        "page_faults": page_faults,
        "page_faults_total": sum(faults),
        "copy_fills": raw["copyfills"],
        "segfaults": raw["segfaults"],
        "oom_kills": raw["oom_kills"],
        "alloc_failures": raw["alloc_fails"],
        "memory": {
            "pages_total": raw["pages_total"],
            "pages_free": pages[0],
            "pages_by_use": {name: pages[u] for u, name in sorted(FRAME_USES.items())},
            "watermarks": {"min": raw["wmark_min"], "low": raw["wmark_low"],
                           "high": raw["wmark_high"]},
        },
    }


def rows(kernel: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return report rows (label, value, detail) for a collect() result;
    [] for an empty one. Details list only non-zero entries."""
    if not kernel:
        return []

    def nonzero(d: dict[str, int]) -> str:
        return " ".join(f"{k}={v}" for k, v in d.items() if v) or "-"

    mem = kernel["memory"]
    wm = mem["watermarks"]
    return [
        ("processes", f"{kernel['processes_created']:,}",
         f"context switches {kernel['context_switches']:,}, "
         f"preempted {kernel['preemptions']:,}"),
        ("system calls", f"{kernel['syscalls_total']:,}", nonzero(kernel["syscalls"])),
        ("kernel faults", f"{kernel['page_faults_total']:,}", nonzero(kernel["page_faults"])),
        ("free pages", f"{mem['pages_free']:,}",
         f"of {mem['pages_total']:,}; min {wm['min']} low {wm['low']} high {wm['high']}"),
    ]
