"""`info reserve`: the guest kernel's memory reserves (docs/reserves.md) as a
tree, after Linux's /proc/reserve_info from Peter Zijlstra's reserve tree.

The figures come from the kernel's own counters (`kstats.collect`): free
pages against the watermarks and the lowest free count seen, then the pages
below min split into the named reserves (swap_io, aoe_tx, aoe_rx) with
their usage now, peak and limit, a reserve whose usage has reached its
limit marked AT LIMIT (the kernel refuses it further pages), and the
counters that say whether the reserves were needed: pages handed out only
thanks to a reserve, pages refused at a limit, non-swap frames dropped from
reserve-backed RX buffers, throttled reclaimers, RX buffer pages and frames
lost for want of a buffer.

The kernel keeps no peak for the tree as a whole; the total row's peak is
the sum of the reserves' peaks, an upper bound (they need not have peaked
at the same moment). Kernels without readable counters get one line saying
so.

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

from typing import Any

from emu.guestview import kstats

AT_LIMIT = "AT LIMIT"
NAME_WIDTH = 31     # "  total" / "    swap_io", padded so the figures line up
NUM_WIDTH = 7


def _row(label: str, usage: int, peak: int, limit: int) -> str:
    """One line of the tree: label, usage, peak, limit, and the AT LIMIT
    mark when the usage has reached a non-zero limit."""
    line = f"{label:<{NAME_WIDTH}}{usage:>{NUM_WIDTH}}{peak:>{NUM_WIDTH}}{limit:>{NUM_WIDTH}}"
    if limit and usage >= limit:
        line += f"  {AT_LIMIT}"
    return line


def reserve_off(machine: Any) -> bool:
    """Whether the guest was booted with `reserve=off` (nobody is entitled)."""
    append = getattr(getattr(machine, "config", None), "append", "") or ""
    return "reserve=off" in append.split()


def info_reserve(machine: Any) -> str:
    """Return the `info reserve` text for `machine`: memory and watermarks,
    the reserve tree (usage, peak, limit per reserve and in total) and the
    reserve counters; one line when the kernel keeps no reserve tree."""
    k = kstats.collect(machine)
    if not k:
        return ("no reserve tree: the kernel's counters (kstats) are not readable "
                "(another guest, or it has not booted far enough)")
    reserve = k.get("reserve")
    if not reserve:
        return "no reserve tree: this kernel keeps no reserve counters"
    mem = k.get("memory") or {}
    wm = mem.get("watermarks") or {}
    low = mem.get("free_low")
    head = (f"memory: {mem.get('pages_free', '?')} free of {mem.get('pages_total', '?')} pages"
            + (f" (low point {low})" if low is not None else "")
            + f"; watermarks min {wm.get('min', '?')} low {wm.get('low', '?')} "
              f"high {wm.get('high', '?')}")
    lines = [head]
    if reserve_off(machine):
        lines.append("reserves are off (reserve=off): nobody may allocate below min")
    lines.append(f"{'reserve (pages below min)':<{NAME_WIDTH}}{'usage':>{NUM_WIDTH}}"
                 f"{'peak':>{NUM_WIDTH}}{'limit':>{NUM_WIDTH}}")
    total = {f: sum(r.get(f, 0) for r in reserve.values()) for f in ("usage", "peak", "limit")}
    row = _row("  total", total["usage"], total["peak"], total["limit"])
    wmin = wm.get("min")
    if isinstance(wmin, int) and total["limit"] != wmin:
        row += f"  (limits do not add up to min {wmin})"
    lines.append(row)
    for name, r in reserve.items():
        lines.append(_row(f"    {name}", r.get("usage", 0), r.get("peak", 0), r.get("limit", 0)))

    def count(v: Any) -> str:
        return f"{v:,}" if isinstance(v, int) else "?"

    throttled = (k.get("reclaim") or {}).get("throttled")
    lines.append(f"reserve pages handed out {count(k.get('reserve_allocs'))}; "
                 f"refused at a limit {count(k.get('reserve_denied'))}; "
                 f"pfmemalloc drops {count(k.get('pfmemalloc_drop'))}; "
                 f"reclaimers throttled {count(throttled)}")
    netbuf = (mem.get("pages_by_use") or {}).get("netbuf")
    no_buffer = ((k.get("net") or {}).get("drops") or {}).get("no_buffer")
    lines.append(f"RX buffers: {count(netbuf)} pages (netbuf); "
                 f"frames dropped for want of a buffer {count(no_buffer)}")
    return "\n".join(lines)
