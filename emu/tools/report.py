"""Figures of a run: the stats dictionary (stable keys, see docs/stats.md),
the short human report printed at exit, and the --stats-json file.

The report is a rich table on stderr: one number format (thousands
separators on every count, a unit on every quantity), as wide as the
terminal, or REPORT_WIDTH columns (COLUMNS if set) when it is not one, and
no trailing spaces.

Layer: tools.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.segment import Segment, Segments
from rich.table import Table

from emu import __version__
from emu.core import isa
from emu.guestview import kstats

PAGE_FAULT_KEYS = {isa.CAUSE_FETCH_PAGE_FAULT: "fetch",
                   isa.CAUSE_LOAD_PAGE_FAULT: "load",
                   isa.CAUSE_STORE_PAGE_FAULT: "store",
                   isa.CAUSE_FETCH_ACCESS: "fetch_access",
                   isa.CAUSE_LOAD_ACCESS: "load_access",
                   isa.CAUSE_STORE_ACCESS: "store_access"}
TRAP_KEYS = {isa.CAUSE_MISALIGNED_FETCH: "misaligned_fetch",
             isa.CAUSE_FETCH_ACCESS: "fetch_access_fault",
             isa.CAUSE_ILLEGAL_INSN: "illegal_instruction",
             isa.CAUSE_BREAKPOINT: "breakpoint",
             isa.CAUSE_LOAD_ACCESS: "load_access_fault",
             isa.CAUSE_STORE_ACCESS: "store_access_fault",
             isa.CAUSE_ECALL_U: "ecall_u",
             isa.CAUSE_ECALL_S: "ecall_s",
             isa.CAUSE_ECALL_M: "ecall_m",
             isa.CAUSE_FETCH_PAGE_FAULT: "fetch_page_fault",
             isa.CAUSE_LOAD_PAGE_FAULT: "load_page_fault",
             isa.CAUSE_STORE_PAGE_FAULT: "store_page_fault"}
IRQ_KEYS = {isa.IRQ_S_SOFT: "software", isa.IRQ_S_TIMER: "timer",
            isa.IRQ_S_EXT: "external", isa.IRQ_M_SOFT: "m_software",
            isa.IRQ_M_TIMER: "m_timer", isa.IRQ_M_EXT: "m_external"}


def _named(counts: dict[int, int], names: dict[int, str], all_keys: bool) -> dict[str, int]:
    out = {name: 0 for name in names.values()} if all_keys else {}
    for k, v in counts.items():
        out[names.get(k, f"cause_{k}")] = out.get(names.get(k, f"cause_{k}"), 0) + v
    return out


# collect()'s figures that differ between two runs with the same image, flags
# and seed: wall-clock ones, and those of QEMU's soft TLB, which it resizes on
# wall-clock windows (docs/stats.md).
HOST_DEPENDENT = ("wall_s", "mips", "tlb_fills", "code_pages")


def collect(machine: Any) -> dict[str, Any]:
    """Return the run's figures as a dict with stable keys (docs/stats.md)."""
    st = machine.stats
    mmu = machine.cpu.mmu
    wall = st.wall_s
    insns = machine.icount
    faults = dict(getattr(mmu, "faults_by_cause", {}) or st.page_faults)
    out: dict[str, Any] = {
        "emu_version": __version__,
        "exit_status": machine.exit_status,
        "stop_reason": machine.stop_reason,
        "kernel_image": machine.image.path,
        "ram_bytes": machine.mem.size,
        "seed": machine.config.seed,
        "mmu": machine.cpu.mmu_impl,
        "instructions": insns,
        "virtual_ns": machine.now(),
        "idle_ns": st.idle_ns,
        "wall_s": round(wall, 6),
        "mips": round(insns / wall / 1e6, 3) if wall > 0 else 0.0,
        "slices": st.slices,
        "tlb_fills": mmu.fills,
        "code_pages": code_page_figures(machine),
        "page_faults": _named(faults, PAGE_FAULT_KEYS, True),
        "page_faults_total": sum(faults.values()),
        "traps": _named(st.traps, TRAP_KEYS, False),
        "interrupts": _named(st.interrupts, IRQ_KEYS, True),
        "sbi_calls": st.sbi_calls,
        "emulated_csr_reads": st.emulated_csr_reads,
        "wfi": st.wfi,
        "timer_fired": machine.clint.fired,
        "plic_claims": machine.plic.claims,
        "uart_tx_bytes": machine.uart.tx_bytes,
        "nic": machine.nic.stats(),
        "virtio": virtio_figures(machine),
        "deterministic": not machine.peers.ever,
        "clock": {"mode": "wall" if machine.peers.coupled else "virtual",
                  "peers": list(machine.peers.ever), "host_waits": machine.peers.waits,
                  "host_wait_ns": machine.peers.waited_ns},
        "network": machine.network.stats(),
        "kernel": kstats.collect(machine),
    }
    out["swap"] = swap_figures(out)
    out["link"] = link_figures(out)
    for obs in getattr(machine, "after_slice", ()):   # observers that measure (SwapoffClock)
        add = getattr(obs, "add_figures", None)
        if add is not None:
            add(out)
    return out


def code_page_figures(machine: Any) -> dict[str, int]:
    """The MMU's checks of code pages at fetch fills (emu/mmu/tlb.py): how
    many, how many had to compare the page's bytes (the others could not
    have changed), and how many found it rewritten."""
    checks, skipped = machine.cpu.mmu.code_checks
    return {"checks": checks, "compared": checks - skipped,
            "changed": machine.stats.code_changes}


def virtio_figures(machine: Any) -> dict[str, Any]:
    """{slot: {"device", "transport": counters, "counters": the device's}}
    for every virtio-mmio slot with a device behind it."""
    out: dict[str, Any] = {}
    for t in machine.virtio:
        if t.device is not None:
            out[t.name] = {"device": t.device.name, "transport": t.stats(),
                           "counters": t.device.stats()}
    return out


def swap_figures(stats: dict[str, Any]) -> dict[str, Any] | None:
    """Return the swap summary (throughput per virtual and per wall second,
    faults, AoE transport state) from collect()'s figures, or None when the
    kernel does not swap."""
    k = stats.get("kernel") or {}
    swap, aoe = k.get("swap"), k.get("aoe")
    if not swap:
        return None
    mb = (swap.get("bytes_out", 0) + swap.get("bytes_in", 0)) / 1e6
    vs = stats["virtual_ns"] / 1e9
    return {
        "swap_outs": swap.get("swap_outs", 0), "swap_ins": swap.get("swap_ins", 0),
        "swap_cache_hits": swap.get("swap_cache_hits", 0),
        "major_faults": k.get("major_faults", 0), "minor_faults": k.get("minor_faults", 0),
        "mb_swapped": round(mb, 3),
        "mb_per_virtual_s": round(mb / vs, 3) if vs > 0 else 0.0,
        "mb_per_wall_s": round(mb / stats["wall_s"], 3) if stats["wall_s"] > 0 else 0.0,
        "aoe_requests": (aoe or {}).get("requests", 0),
        "retransmits": (aoe or {}).get("retransmits", 0),
        "stale_replies": (aoe or {}).get("stale_replies", 0),
        "unknown_replies": (aoe or {}).get("unknown_replies", 0),
        "srtt_ns": (aoe or {}).get("srtt_ns", 0), "rto_ns": (aoe or {}).get("rto_ns", 0),
        "window": (aoe or {}).get("window", 0),
    }


def link_figures(stats: dict[str, Any]) -> dict[str, int]:
    """Sum the guest port's two links: drops by reason, duplicates, reorders,
    corruptions ({} when the network saw no traffic)."""
    port = stats["network"]["segment"]["ports"].get("guest")
    if not port:
        return {}
    out: dict[str, int] = {}
    for direction in ("up", "down"):
        for key, v in port[direction].items():
            if key.startswith("dropped_") or key in ("duplicated", "reordered", "corrupted"):
                out[key] = out.get(key, 0) + v
    return out


def write_json(stats: dict[str, Any], path: str) -> None:
    """Write `stats` to `path` as one JSON object (sorted keys)."""
    with open(path, "w") as f:
        json.dump(stats, f, indent=2, sort_keys=True)
        f.write("\n")


REPORT_WIDTH = 100     # columns of the report when it does not go to a terminal
# Display names where a stat key does not read as words.
NAMES = {"ecall_u": "ecall from U", "ecall_s": "ecall from S", "dropped_loss": "lost",
         "dropped_limit": "queue full", "unknown_ethertype": "unknown ethertype",
         "no_buffer": "no RX buffer", "rx_overrun": "RX overrun", "too_long": "too long",
         "demand_zero": "demand-zero", "swap_in": "swap-in", "swap_cache": "swap cache"}


def num(v: int) -> str:
    """A count with thousands separators: 13172 -> '13,172'."""
    return f"{v:,}"


def counts(d: dict[str, int], empty: str = "-") -> str:
    """'name n, name n' for the non-zero entries of `d` (names as words),
    or `empty` when every entry is zero."""
    return ", ".join(f"{NAMES.get(k, k.replace('_', ' '))} {v:,}" for k, v in d.items()
                     if v) or empty


def size(nbytes: float) -> str:
    """A byte count with its unit, decimal as the MB figures of the stats:
    '512 bytes', '131.9 kB', '5.6 MB', '1.2 GB'."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{nbytes:,.0f} bytes"


def text_console(out: IO[str]) -> Console:
    """A rich Console on `out` for text a person reads: the terminal's width,
    else COLUMNS, else REPORT_WIDTH columns."""
    con = Console(file=out, highlight=False)
    if not con.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        con.width = REPORT_WIDTH
    return con


def print_trimmed(con: Console, renderable: RenderableType) -> None:
    """Print `renderable` on `con` without the spaces rich pads the ends of
    table rows with."""
    out: list[Segment] = []
    for line in con.render_lines(renderable, pad=False):
        while line and not line[-1].control and not line[-1].text.rstrip():
            line.pop()
        if line and not line[-1].control:
            line[-1] = Segment(line[-1].text.rstrip(), line[-1].style)
        out += [*line, Segment.line()]
    con.print(Segments(out), end="")


def kernel_rows(kernel: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Report rows (label, value, detail) for kstats.collect()'s figures;
    [] for a guest without them. Details list only non-zero entries."""
    if not kernel:
        return []
    mem = kernel["memory"]
    wm = mem["watermarks"]
    rows = [
        ("processes", num(kernel["processes_created"]),
         f"context switches {kernel['context_switches']:,}, "
         f"preempted {kernel['preemptions']:,}"),
        ("system calls", num(kernel["syscalls_total"]), counts(kernel["syscalls"])),
        ("kernel faults", num(kernel["page_faults_total"]), counts(kernel["page_faults"])),
        ("free memory", f"{mem['pages_free']:,} pages",
         f"of {mem['pages_total']:,}; watermarks min {wm['min']:,}, low {wm['low']:,}, "
         f"high {wm['high']:,}"),
    ]
    swap, aoe, net = kernel.get("swap"), kernel.get("aoe"), kernel.get("net")
    if swap and (swap["swap_outs"] or swap["swap_ins"] or swap["slots_total"]):
        rows.append(("swap", f"{swap['swap_outs']:,} out, {swap['swap_ins']:,} in",
                     f"pages ({size(swap['bytes_out'] + swap['bytes_in'])}); major faults "
                     f"{kernel['major_faults']:,}, cache hits {swap['swap_cache_hits']:,}, "
                     f"clean drops {swap['clean_drops']:,}, slots {swap['slots_used']:,} of "
                     f"{swap['slots_total']:,}"))
    if aoe and aoe["requests"]:
        rows.append(("AoE", f"{aoe['requests']:,} requests",
                     f"retransmits {aoe['retransmits']:,}, stale {aoe['stale_replies']:,}, "
                     f"unknown {aoe['unknown_replies']:,}, srtt {aoe['srtt_ns'] / 1000:,.0f} us, "
                     f"rto {aoe['rto_ns'] / 1000:,.0f} us, window {aoe['window']:,}"
                     + (", DEAD" if aoe["dead"] else "")))
    so = kernel.get("swapoff")
    if so and so["calls"]:
        mb = so["pages"] * 4096 / 1e6
        vms = so["virtual_ns"] / 1e6
        wall = (f", {so['wall_s'] * 1000:,.0f} ms wall ({mb / so['wall_s']:,.1f} MB/s)"
                if so.get("wall_s") else "")
        rows.append(("swapoff", f"{so['pages']:,} pages back",
                     f"in {vms:,.1f} ms virtual"
                     + (f" ({mb / (vms / 1000):,.1f} MB/s)" if vms else "") + wall
                     + f"; {so['calls']:,} call" + "s" * (so["calls"] != 1)
                     + (f" ({so['failed']:,} failed)" if so["failed"] else "")
                     + f", PTEs read {so['ptes_read']:,}, address-space searches "
                     f"{so['mm_searches']:,}, reads {so['reads']:,} ({so['sectors']:,} "
                     f"sectors), round trips {so['round_trips']:,}, retransmits "
                     f"{so['retransmits']:,}, freed {so['freed']:,}"))
    res = kernel.get("reserve")
    if res and (kernel["reserve_allocs"] or kernel["pfmemalloc_drop"]
                or kernel.get("reserve_denied")):
        rows.append(("reserves", f"{kernel['reserve_allocs']:,} pages",
                     ", ".join(f"{n} {r['usage']:,} of {r['limit']:,} (peak {r['peak']:,})"
                               for n, r in res.items())
                     + f"; pfmemalloc drops {kernel['pfmemalloc_drop']:,}, refused at a "
                     f"limit {kernel.get('reserve_denied', 0):,}, throttled "
                     f"{kernel['reclaim'].get('throttled', 0):,}"))
    if net and (net["rx_frames"] or net["tx_frames"]):
        rows.append(("NIC driver", f"{net['tx_frames']:,} tx, {net['rx_frames']:,} rx",
                     "frames; drops: " + counts(net["drops"], "none")))
    return rows


def rates(stats: dict[str, Any]) -> str:
    """Traps, TLB fills and slices per wall second (wall-clock figures: in
    the report only, not in --stats-json, whose other keys repeat)."""
    wall = stats["wall_s"]
    if wall <= 0:
        return "-"
    traps = sum(stats["traps"].values()) + sum(stats["interrupts"].values())
    return (f"{traps / wall:,.0f} traps, {stats['tlb_fills'] / wall:,.0f} TLB fills, "
            f"{stats['slices'] / wall:,.0f} slices")


def report_rows(stats: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The report's rows (label, value, detail) for collect()'s figures."""
    vns = stats["virtual_ns"]
    traps, irqs = stats["traps"], stats["interrupts"]
    rows = [
        ("instructions", num(stats["instructions"]), ""),
        ("virtual time", f"{vns / 1e6:,.3f} ms", f"idle {stats['idle_ns'] / 1e6:,.3f} ms"),
        ("speed", f"{stats['mips']:,.1f} MIPS",
         f"wall {stats['wall_s']:,.3f} s, mmu {stats['mmu']}"),
        ("rates", "per wall s", rates(stats)),
        ("TLB fills", num(stats["tlb_fills"]),
         "code pages: {checks:,} checked, {compared:,} compared, {changed:,} changed"
         .format(**stats["code_pages"])),
        ("page faults", num(stats["page_faults_total"]), counts(stats["page_faults"])),
        ("traps", num(sum(traps.values())), counts(traps)),
        ("interrupts", num(sum(irqs.values())), counts(irqs)),
        ("SBI calls", num(stats["sbi_calls"]), ""),
    ]
    nic = stats["nic"]
    if nic["tx_frames"] or nic["rx_frames"]:
        drops = {k: v for k, v in nic.items()
                 if k.startswith("rx_") and k not in ("rx_frames", "rx_bytes", "rx_descs")}
        rows.append(("NIC frames", f"{nic['tx_frames']:,} tx, {nic['rx_frames']:,} rx",
                     "drops: " + counts(drops, "none")))
    clock = stats["clock"]
    if clock["mode"] == "wall":
        waited = f"; waited {clock['host_wait_ns'] / 1e6:,.1f} ms on the host" \
            if clock["host_waits"] else ""
        rows.append(("clock", "wall-coupled",
                     f"real peers: {', '.join(clock['peers']) or '-'}: virtual time never "
                     f"ran ahead of the wall clock in waits{waited}"))
    else:
        rows.append(("clock", "virtual", "time jumps to the next event while the guest waits"))
    if not stats["deterministic"]:
        rows.append(("determinism", "off", f"real peers ({', '.join(clock['peers'])}): "
                     "this run cannot be replayed"))
    rows += kernel_rows(stats.get("kernel") or {})
    sw = stats.get("swap")
    if sw and sw["mb_swapped"]:
        rows.append(("swap rate", f"{sw['mb_per_wall_s']:,.1f} MB/s wall",
                     f"{sw['mb_per_virtual_s']:,.1f} MB/s virtual"))
    link = stats.get("link")
    if link and any(link.values()):
        rows.append(("link", "", "frames " + counts(link)))
    pcap = (stats.get("network") or {}).get("pcap")
    if pcap:
        snap = f"snap length {pcap['snaplen']:,} bytes" if pcap["snaplen"] else "whole frames"
        fb = pcap["file_bytes"]
        rows.append(("capture", f"{pcap['frames']:,} frame" + "s" * (pcap["frames"] != 1),
                     f"{fb:,} bytes" + (f" ({size(fb)})" if fb >= 1000 else "")
                     + f" on disk; {snap}"))
    rows.append(("exit status", str(stats["exit_status"]), ""))
    return rows


def print_report(stats: dict[str, Any], out: IO[str]) -> None:
    """Print the short human report of a run (a table) to `out`."""
    t = Table(title=f"emu: {stats['stop_reason']}", show_header=False, box=None,
              title_justify="left", pad_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(justify="right", no_wrap=True)
    t.add_column(style="dim")
    for row in report_rows(stats):
        t.add_row(*row)
    print_trimmed(text_console(out), t)
