"""Figures of a run: the stats dictionary (stable keys, see docs/stats.md),
the short human report printed at exit, and the --stats-json file.

Layer: tools.
"""

from __future__ import annotations

import json
from typing import IO, Any

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
             isa.CAUSE_FETCH_PAGE_FAULT: "fetch_page_fault",
             isa.CAUSE_LOAD_PAGE_FAULT: "load_page_fault",
             isa.CAUSE_STORE_PAGE_FAULT: "store_page_fault"}
IRQ_KEYS = {isa.IRQ_S_SOFT: "software", isa.IRQ_S_TIMER: "timer",
            isa.IRQ_S_EXT: "external"}


def _named(counts: dict[int, int], names: dict[int, str], all_keys: bool) -> dict[str, int]:
    out = {name: 0 for name in names.values()} if all_keys else {}
    for k, v in counts.items():
        out[names.get(k, f"cause_{k}")] = out.get(names.get(k, f"cause_{k}"), 0) + v
    return out


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
        "page_faults": _named(faults, PAGE_FAULT_KEYS, True),
        "page_faults_total": sum(faults.values()),
        "traps": _named(st.traps, TRAP_KEYS, False),
        "interrupts": _named(st.interrupts, IRQ_KEYS, True),
        "sbi_calls": st.sbi_calls,
        "emulated_csr_reads": st.emulated_csr_reads,
        "wfi": st.wfi,
        "timer_fired": machine.timer.fired,
        "plic_claims": machine.plic.claims,
        "uart_tx_bytes": machine.uart.tx_bytes,
        "nic": machine.nic.stats(),
        "deterministic": not machine.peers.ever,
        "clock": {"mode": "wall" if machine.peers.coupled else "virtual",
                  "peers": list(machine.peers.ever), "host_waits": machine.peers.waits,
                  "host_wait_ns": machine.peers.waited_ns},
        "network": machine.network.stats(),
        "kernel": kstats.collect(machine),
    }
    out["swap"] = swap_figures(out)
    out["link"] = link_figures(out)
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


def print_report(stats: dict[str, Any], out: IO[str]) -> None:
    """Print the short human report of a run to `out`."""
    from rich.console import Console
    from rich.table import Table

    con = Console(file=out, highlight=False, soft_wrap=True)
    t = Table(title=f"emu: {stats['stop_reason']}", show_header=False, box=None,
              title_justify="left", pad_edge=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_column(style="dim")
    vns = stats["virtual_ns"]
    t.add_row("instructions", f"{stats['instructions']:,}", "")
    t.add_row("virtual time", f"{vns / 1e6:,.3f} ms", f"idle {stats['idle_ns'] / 1e6:,.3f} ms")
    t.add_row("speed", f"{stats['mips']:,.1f} MIPS", f"wall {stats['wall_s']:.3f} s, "
              f"mmu {stats['mmu']}")
    t.add_row("TLB fills", f"{stats['tlb_fills']:,}", "")
    pf = stats["page_faults"]
    t.add_row("page faults", f"{stats['page_faults_total']:,}",
              " ".join(f"{k}={v}" for k, v in pf.items() if v) or "-")
    traps = stats["traps"]
    t.add_row("traps", f"{sum(traps.values()):,}",
              " ".join(f"{k}={v}" for k, v in traps.items()) or "-")
    irqs = stats["interrupts"]
    t.add_row("interrupts", f"{sum(irqs.values()):,}",
              " ".join(f"{k}={v}" for k, v in irqs.items() if v) or "-")
    t.add_row("SBI calls", f"{stats['sbi_calls']:,}", "")
    nic = stats["nic"]
    if nic["tx_frames"] or nic["rx_frames"]:
        drops = " ".join(f"{k}={v}" for k, v in nic.items()
                         if v and k.startswith("rx_") and k not in ("rx_frames", "rx_bytes",
                                                                    "rx_descs"))
        t.add_row("NIC frames", f"{nic['tx_frames']:,} tx {nic['rx_frames']:,} rx",
                  drops or "no drops")
    clock = stats["clock"]
    if clock["mode"] == "wall":
        waited = f"; waited {clock['host_wait_ns'] / 1e6:,.1f} ms on the host" \
            if clock["host_waits"] else ""
        t.add_row("clock", "wall-coupled", f"real peers: {', '.join(clock['peers']) or '-'}: "
                  f"virtual time never ran ahead of the wall clock in waits{waited}")
    else:
        t.add_row("clock", "virtual", "time jumps to the next event while the guest waits")
    if not stats["deterministic"]:
        t.add_row("determinism", "off", f"real peers ({', '.join(clock['peers'])}): "
                  "this run cannot be replayed")
    for row in kstats.rows(stats.get("kernel") or {}):
        t.add_row(*row)
    sw = stats.get("swap")
    if sw and sw["mb_swapped"]:
        t.add_row("swap rate", f"{sw['mb_per_wall_s']:,.1f} MB/wall s",
                  f"{sw['mb_per_virtual_s']:,.1f} MB per virtual s")
    link = stats.get("link")
    if link and any(link.values()):
        t.add_row("link", "", " ".join(f"{k}={v}" for k, v in link.items() if v))
    t.add_row("exit status", str(stats["exit_status"]), "")
    con.print(t)
