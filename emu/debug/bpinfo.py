"""`info breakpoints` and `info watchpoints` in gdb's table:

    Num     Type           Disp Enb Address            What
    1       breakpoint     keep y   0x000000008020dce8 in vmfault at vm.c:312
            breakpoint already hit 1 time      (a tab, then this)
    2       hw watchpoint  keep y                      0x80210000 len 8

The Type column is as wide as its longest entry (at least 14, as in gdb);
watchpoints have no Address; fault breakpoints are listed as gdb lists
catchpoints, their filter in What.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from emu.debug.stops import WATCH_KINDS, Breakpoint

TYPE_NAMES = {"code": "breakpoint", "hw": "hw breakpoint", "watch": "hw watchpoint",
              "rwatch": "read watchpoint", "awatch": "acc watchpoint",
              "fault": "catchpoint"}


def bp_table(bps: Iterable[Breakpoint], what: Callable[[Breakpoint], str],
             watch_only: bool = False) -> str:
    """The table for `bps` (only watchpoints with `watch_only`); `what(bp)`
    gives the What column of a code breakpoint."""
    rows = [b for b in bps if not watch_only or b.kind in WATCH_KINDS]
    if not rows:
        return "No watchpoints." if watch_only else "No breakpoints or watchpoints."
    width = max(14, *(len(TYPE_NAMES[b.kind]) for b in rows))
    out = [f"{'Num':<7} {'Type':<{width}} Disp Enb {'Address':<18} What"]
    for b in rows:
        if b.kind in ("code", "hw"):
            addr, desc = f"0x{b.addr:016x}", what(b)
        elif b.kind in WATCH_KINDS:
            addr, desc = "", f"0x{b.addr:x} len {b.length}"
        else:
            addr, desc = "", "fault " + (b.filt.describe() if b.filt else "")
        disp = "del" if b.temporary else "keep"
        out.append(f"{b.id:<7} {TYPE_NAMES[b.kind]:<{width}} {disp:<4} "
                   f"{'y' if b.enabled else 'n':<3} {addr:<18} {desc}")
        if b.hits:
            noun = "catchpoint" if b.kind == "fault" else "breakpoint"
            out.append(f"\t{noun} already hit {b.hits} time{'s' if b.hits != 1 else ''}")
    return "\n".join(out)
