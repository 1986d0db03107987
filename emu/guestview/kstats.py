"""The guest kernel's own counters, read from guest memory after a run.

The kernel (guest/kernel/kstats.h) keeps `struct kstats` at the global
symbol `kstats`: a flat array of little-endian u64s whose first two words are
a magic number and a layout version. `collect(machine)` finds it through the
image's ELF symbols, checks both, and returns the figures under stable keys
(docs/kernel.md). The tables below mirror kstats.h and syscall.h;
tests/test_kernel.py checks that they agree with the headers.

Gauges (free pages, pages by use) are the values at the moment the run
stopped; counters count from boot.

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

import struct
from typing import Any

MAGIC = 0x3130_5354_4154_534B  # "KSTATS01"
VERSION = 6
NSYSCALL = 16
NFAULTKIND = 8
NFRAMEUSE = 12
NRESERVE = 3

# Number -> name, as in guest/kernel/syscall.h (SYS_*).
SYSCALL_NAMES: dict[int, str] = {
    1: "write", 2: "exit", 3: "wait", 4: "getpid", 5: "sbrk", 6: "yield",
    7: "sleep", 8: "spawn", 9: "uptime", 10: "meminfo", 11: "swapoff", 12: "swapon",
}
# FAULT_* kinds of kstats.h: how a user page fault was resolved, or why not.
FAULT_KINDS: dict[int, str] = {
    0: "demand_zero", 1: "image", 2: "protection", 3: "bad", 4: "spurious",
    5: "swap_in", 6: "swap_cache",
}
# Fault kinds that read from swap (major faults); the other resolved kinds
# are minor (no I/O).
MAJOR_FAULTS = ("swap_in",)
MINOR_FAULTS = ("demand_zero", "image", "spurious", "swap_cache")
# FRAME_* uses of kstats.h: what each physical page is doing.
FRAME_USES: dict[int, str] = {
    0: "free", 1: "reserved", 2: "kernel", 3: "pagetable", 4: "kstack", 5: "kmalloc",
    6: "user", 7: "image", 8: "netbuf", 9: "kimage", 10: "frametable", 11: "swapmap",
}
# RESERVE_* of kstats.h: the named memory reserves (docs/reserves.md).
RESERVE_NAMES: dict[int, str] = {0: "swap_io", 1: "aoe_tx", 2: "aoe_rx"}

# struct kstats, field by field: (name, number of u64s).
LAYOUT: tuple[tuple[str, int], ...] = (
    ("magic", 1), ("version", 1), ("ctxsw", 1), ("preempt", 1), ("procs_created", 1),
    ("ticks", 1), ("syscalls", NSYSCALL), ("faults", NFAULTKIND), ("copyfills", 1),
    ("segfaults", 1),
    ("oom_kills", 1), ("alloc_fails", 1), ("pages_total", 1), ("pages", NFRAMEUSE),
    ("wmark_min", 1), ("wmark_low", 1), ("wmark_high", 1),
    # version 2: swap, reclaim, block layer, AoE, NIC driver
    ("swap_outs", 1), ("swap_ins", 1), ("swapcache_hits", 1), ("swapcache_waits", 1),
    ("swap_clean_drops", 1), ("swap_bytes_out", 1), ("swap_bytes_in", 1),
    ("swap_write_errors", 1), ("swap_read_errors", 1), ("swap_slots_total", 1),
    ("swap_slots_used", 1), ("swap_slot_quarantined", 1), ("swap_writeback", 1),
    ("lru_pages", 1), ("reclaim_scanned", 1), ("reclaim_rotated", 1), ("kswapd_wakeups", 1),
    ("direct_reclaims", 1), ("bio_reads", 1), ("bio_writes", 1),
    ("aoe_requests", 1), ("aoe_retransmits", 1), ("aoe_timeouts", 1), ("aoe_replies", 1),
    ("aoe_stale", 1), ("aoe_unknown", 1), ("aoe_errors", 1), ("aoe_dead", 1),
    ("aoe_srtt_ns", 1), ("aoe_rttvar_ns", 1), ("aoe_rto_ns", 1), ("aoe_cwnd", 1),
    ("aoe_ssthresh", 1), ("aoe_inflight_max", 1), ("aoe_maxwin", 1), ("aoe_bufcnt", 1),
    ("aoe_scnt", 1), ("aoe_capacity_sectors", 1),
    ("net_irqs", 1), ("net_rx_frames", 1), ("net_rx_bytes", 1), ("net_tx_frames", 1),
    ("net_tx_bytes", 1), ("net_drop_unknown_type", 1), ("net_drop_runt", 1),
    ("net_drop_toolong", 1), ("net_refill_fails", 1), ("net_rx_overruns", 1),
    ("net_tx_full", 1), ("net_nic_errors", 1), ("aoe_stale_age_max_ms", 1),
    ("swap_readahead", 1), ("swap_faultaround", 1), ("zero_faultaround", 1),
    # version 3: memory reserves, deadlock-detector gauges
    ("reserve_limit", NRESERVE), ("reserve_usage", NRESERVE), ("reserve_peak", NRESERVE),
    ("reserve_allocs", 1), ("pfmemalloc_drop", 1), ("tasks_blocked", 1),
    ("aoe_inflight", 1),
    # version 4: reserve limits enforced, throttling, the free-memory low point
    ("reserve_denied", 1), ("reclaim_throttled", 1), ("free_low", 1),
    # version 6: swapoff, summed over the calls
    ("swapoff_runs", 1), ("swapoff_fails", 1), ("swapoff_pages", 1), ("swapoff_freed", 1),
    ("swapoff_ptes", 1), ("swapoff_mms", 1), ("swapoff_hint_hits", 1),
    ("swapoff_hint_misses", 1), ("swapoff_reads", 1), ("swapoff_sectors", 1),
    ("swapoff_ns", 1), ("swapoff_frames", 1), ("swapoff_replies", 1),
    ("swapoff_retransmits", 1), ("swapoff_active", 1),
    # swap prefetch and read-ahead
    ("prefetch_runs", 1), ("prefetch_yields", 1), ("prefetch_pages", 1),
    ("prefetch_reads", 1), ("prefetch_hits", 1), ("prefetch_dropped", 1), ("ra_hits", 1),
    ("ra_dropped", 1),
)

# Groups of version-2 fields reported as {key: value} under one name: the
# report key, then (key in the group, kstats field) pairs.
GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("swap", (
        ("swap_outs", "swap_outs"), ("swap_ins", "swap_ins"),
        ("swap_cache_hits", "swapcache_hits"), ("swap_cache_waits", "swapcache_waits"),
        ("readahead", "swap_readahead"), ("faultaround", "swap_faultaround"),
        ("zero_faultaround", "zero_faultaround"),
        ("clean_drops", "swap_clean_drops"), ("bytes_out", "swap_bytes_out"),
        ("bytes_in", "swap_bytes_in"), ("write_errors", "swap_write_errors"),
        ("read_errors", "swap_read_errors"), ("slots_total", "swap_slots_total"),
        ("slots_used", "swap_slots_used"), ("slot_quarantine_skips", "swap_slot_quarantined"),
        ("writeback", "swap_writeback"), ("bio_reads", "bio_reads"),
        ("bio_writes", "bio_writes"))),
    ("reclaim", (
        ("lru_pages", "lru_pages"), ("scanned", "reclaim_scanned"),
        ("rotated", "reclaim_rotated"), ("kswapd_wakeups", "kswapd_wakeups"),
        ("direct_reclaims", "direct_reclaims"))),
    ("aoe", (
        ("requests", "aoe_requests"), ("retransmits", "aoe_retransmits"),
        ("timeouts", "aoe_timeouts"), ("replies", "aoe_replies"),
        ("stale_replies", "aoe_stale"), ("stale_age_max_ms", "aoe_stale_age_max_ms"),
        ("unknown_replies", "aoe_unknown"),
        ("errors", "aoe_errors"), ("dead", "aoe_dead"), ("srtt_ns", "aoe_srtt_ns"),
        ("rttvar_ns", "aoe_rttvar_ns"), ("rto_ns", "aoe_rto_ns"), ("window", "aoe_cwnd"),
        ("ssthresh", "aoe_ssthresh"), ("inflight_max", "aoe_inflight_max"),
        ("window_cap", "aoe_maxwin"), ("bufcnt", "aoe_bufcnt"),
        ("sectors_per_frame", "aoe_scnt"), ("capacity_sectors", "aoe_capacity_sectors"),
        ("inflight", "aoe_inflight"))),
    ("swapoff", (
        ("calls", "swapoff_runs"), ("failed", "swapoff_fails"), ("pages", "swapoff_pages"),
        ("freed", "swapoff_freed"), ("ptes_read", "swapoff_ptes"),
        ("mm_searches", "swapoff_mms"), ("hint_hits", "swapoff_hint_hits"),
        ("hint_misses", "swapoff_hint_misses"), ("reads", "swapoff_reads"),
        ("sectors", "swapoff_sectors"), ("virtual_ns", "swapoff_ns"),
        ("frames", "swapoff_frames"), ("round_trips", "swapoff_replies"),
        ("retransmits", "swapoff_retransmits"), ("active", "swapoff_active"))),
    ("prefetch", (
        ("runs", "prefetch_runs"), ("yields", "prefetch_yields"), ("pages", "prefetch_pages"),
        ("reads", "prefetch_reads"), ("hits", "prefetch_hits"),
        ("dropped", "prefetch_dropped"), ("readahead_hits", "ra_hits"),
        ("readahead_dropped", "ra_dropped"))),
    ("net", (
        ("irqs", "net_irqs"), ("rx_frames", "net_rx_frames"), ("rx_bytes", "net_rx_bytes"),
        ("tx_frames", "net_tx_frames"), ("tx_bytes", "net_tx_bytes"),
        ("tx_ring_full", "net_tx_full"), ("nic_errors", "net_nic_errors"))),
)
# NIC driver drops by reason: (report key, kstats field).
NET_DROPS: tuple[tuple[str, str], ...] = (
    ("unknown_ethertype", "net_drop_unknown_type"), ("runt", "net_drop_runt"),
    ("too_long", "net_drop_toolong"), ("no_buffer", "net_refill_fails"),
    ("rx_overrun", "net_rx_overruns"),
)
SIZE = 8 * sum(n for _, n in LAYOUT)


def field_address(machine: Any, name: str) -> int | None:
    """Guest physical address of the u64 kstats field `name` (the first of
    an array), or None if the image has no `kstats` in RAM. Reading it is
    cheap enough for a slice-end observer; it reads 0 until the kernel
    boots."""
    addr = machine.image.symbols.by_name.get("kstats")
    if addr is None or not machine.mem.contains(addr, SIZE):
        return None
    off = 0
    for field, n in LAYOUT:
        if field == name:
            return addr + 8 * off
        off += n
    raise KeyError(name)


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
    trap; counted in page_faults too), segfaults, oom_kills, alloc_failures, memory
    {pages_total, pages_free, pages_by_use {use: pages}, watermarks
    {min, low, high}}, major_faults, minor_faults, and the groups of GROUPS:
    swap {...}, reclaim {...}, aoe {...}, swapoff {...}, prefetch {...}, net {... drops {reason: n},
    drops_total}, reserve {name: {limit, usage, peak}} (pages),
    reserve_allocs, reserve_denied, pfmemalloc_drop, tasks_blocked,
    aoe_inflight; reclaim.throttled and memory.free_low (docs/swap.md and
    docs/reserves.md list every key).
    """
    raw = read_raw(machine)
    if raw is None:
        return {}
    return from_raw(raw)


def from_raw(raw: dict[str, Any]) -> dict[str, Any]:
    """collect() on an already read struct (read_raw), e.g. for periodic
    samples during a run."""
    calls = raw["syscalls"]
    faults = raw["faults"]
    pages = raw["pages"]
    syscalls = {name: calls[nr] for nr, name in sorted(SYSCALL_NAMES.items())}
    page_faults = {name: faults[k] for k, name in sorted(FAULT_KINDS.items())}
    out = {
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
    out["major_faults"] = sum(page_faults[k] for k in MAJOR_FAULTS)
    out["minor_faults"] = sum(page_faults[k] for k in MINOR_FAULTS)
    for group, fields in GROUPS:
        out[group] = {key: raw[field] for key, field in fields}
    out["net"]["drops"] = {key: raw[field] for key, field in NET_DROPS}
    out["net"]["drops_total"] = sum(out["net"]["drops"].values())
    out["reserve"] = {name: {"limit": raw["reserve_limit"][r], "usage": raw["reserve_usage"][r],
                             "peak": raw["reserve_peak"][r]}
                      for r, name in sorted(RESERVE_NAMES.items())}
    out["reserve_allocs"] = raw["reserve_allocs"]
    out["pfmemalloc_drop"] = raw["pfmemalloc_drop"]
    out["tasks_blocked"] = raw["tasks_blocked"]
    out["aoe_inflight"] = raw["aoe_inflight"]
    out["reserve_denied"] = raw["reserve_denied"]
    out["reclaim"]["throttled"] = raw["reclaim_throttled"]
    out["memory"]["free_low"] = raw["free_low"]
    return out
