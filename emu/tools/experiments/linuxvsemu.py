"""`emu experiment linux-vs-emu`: our kernel and Debian's Linux swapping
over the same emulated link to the same embedded AoE target with the same
memhog (docs/linux.md, "Side by side").

Each run is one guest on one link: our kernel runs `init=memhog` on the
eNIC; Linux (the `make linux-guest` bundle) runs aoeswap - its own aoe
driver on a virtio-net NIC with host_mtu=9000, so both carry a page per
frame. Both verify every page. The figures come from the capture of each
run, taken where the guest's NIC meets its link (--pcap-port: the
initiator's view, link delays included; emu/tools/aoeflow.py reads both
initiators the same way): requests,
retransmits, round trips, the window in flight, data moved per second of
virtual time; plus what the guest says it swapped. The kernels differ in
what they keep for themselves, so each gets the RAM that leaves memhog
about the same free memory: Linux -m 128M (about 63 MB managed, 35 MB
free after boot), our kernel RAM_EMU_MIB.

Guest `linux-nfs` is Linux swapping to a file over NFS instead (nfsswap,
the same memhog) on the same link, to nfs-ganesha in a network namespace
that emu bridges to (emu/tools/nfsserver.py; needs root and the Debian
packages): its figures come from the same capture through
emu/tools/tcpflow.py - data moved, retransmitted TCP segments, round
trips; requests and the window are AoE's notions and stay empty. A real
peer couples virtual time to the wall, so its rows are not repeatable to
the digit, and a run is bounded by NFS_WALL_LIMIT_S of wall time.

Memory exhaustion, the seed's question: guest `emu-noreserve` is our
kernel with its memory reserves off (`reserve=off`); `--noise RATE` adds
junk frames to the link (--noise's generator: they compete for receive
buffers) and `--minfree KB` sets Linux's vm.min_free_kbytes. Our kernel's
runs are watched by emu's deadlock detector (DEADLOCK_SPAN of virtual time
without progress stops them); Linux's console is read for what its kernel
says: hung-task reports ("blocked for more than") and OOM kills. The
`outcome` column says which.

A run that does not finish (the instruction cap, a stall) is a row that
says so, not an error: that is a result here.

Layer: tools.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from emu.core.units import ConfigError, parse_time_ns
from emu.tools.deadlock import EXIT_DEADLOCK
from emu.tools.experiments import runner
from emu.tools.session import RunSession

GUESTS = ("emu", "emu-noreserve", "linux", "linux-nfs")
DEFAULT_GUESTS = ("emu", "linux")   # linux-nfs needs root and a real server: asked for by name
LINK_SPECS = {"clean": "delay 50us", "loss1": "delay 50us loss 1%",
              "loss5": "delay 50us loss 5%", "instant": ""}
LINKS = ("clean", "loss1", "loss5")
PAGES = 12288                      # 48 MiB of memhog
PASSES = 2
QUICK = {"links": ("clean",), "passes": 1}
RAM_LINUX_MIB = 128
RAM_EMU_MIB = 40
MAX_INSNS = 60_000_000_000
NFS_WALL_LIMIT_S = 600
DEADLOCK_SPAN = "2s"               # our kernel's runs: emu's detector (emu/tools/deadlock.py)
MINFREE_KB = 4096                  # Linux's vm.min_free_kbytes unless --minfree
HUNG = re.compile(rb"blocked for more than \d+ seconds")
OOM = re.compile(rb"Out of memory: Killed process")
NA = -1                            # a figure that does not apply (AoE's, for NFS)
MEMHOG = re.compile(rb"memhog: pages=\d+ passes=\d+ mismatches=(\d+)")
PSWP = re.compile(rb"(?:aoe|nfs)swap: pswpin (\d+) pswpout (\d+)")


def links_help() -> str:
    """The named links and their netem specs, for --help."""
    return ", ".join(f"{k} ({v or 'no latency'})" for k, v in LINK_SPECS.items())


def bundle_version(bundle: str) -> str:
    """The kernel release `make linux-guest` recorded, or "unknown"."""
    try:
        with open(os.path.join(bundle, "kernel-version")) as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


def default_bundle() -> str:
    """Where `make linux-guest` puts the bundle (EMU_LINUX overrides)."""
    return os.environ.get("EMU_LINUX", "build/linux")


@dataclass(frozen=True)
class Case:
    """One guest on one link."""

    guest: str
    link: str
    pages: int
    passes: int
    noise: str | None = None     # junk frames on the link (--noise's spelling)
    minfree: int = MINFREE_KB    # Linux's vm.min_free_kbytes


@dataclass(frozen=True)
class Row:
    """A case and what its run did."""

    case: Case
    completed: bool            # memhog finished and verified every page
    mismatches: int            # pages that came back wrong (-1: memhog never finished)
    stop: str                  # why the run ended
    virtual_ms: float          # the whole run
    pages_out: int             # what the guest says it swapped out / in
    pages_in: int
    requests: int              # AoE requests (NA for NFS)
    retransmits: int           # AoE requests sent again; NFS: TCP segments sent again
    rtt_mean_us: float
    rtt_p95_us: float
    window_max: int            # AoE requests in flight (NA for NFS)
    window_mean: float
    mb_moved: float            # data read and written, MB
    mb_per_s: float            # per second of virtual time, first request to last frame
    outcome: str = ""          # completed / deadlock / stall, and what the kernel reported


def _config(case: Case, kernel: str | None, bundle: str, pcap: str, seed: int,
            server: Any = None) -> Any:
    """The machine of one case; `server` (an NfsServer) for linux-nfs."""
    from emu.machine.config import MachineConfig, NicSpec
    from emu.net.network import NetConfig
    netem = LINK_SPECS[case.link]
    targets = (f"iface:{server.iface},frames=all",) if server is not None else ("mem:256M",)
    ours = case.guest.startswith("emu")
    net = NetConfig(net=netem, seed=seed, pcap=pcap, targets=targets, noise=case.noise,
                    pcap_port="guest" if ours else "n0")
    if ours:
        off = "reserve=off " if case.guest == "emu-noreserve" else ""
        return MachineConfig(kernel=kernel, ram_size=RAM_EMU_MIB << 20, seed=seed, net=net,
                             append=f"{off}init=memhog pages={case.pages} passes={case.passes}",
                             max_insns=MAX_INSNS)
    image, initrd = os.path.join(bundle, "Image"), os.path.join(bundle, "initrd.gz")
    run = f"aoeswap,pages={case.pages},passes={case.passes},minfree={case.minfree}"
    if server is not None:
        run = (f"nfsswap,size=0,pages={case.pages},passes={case.passes},"
               f"minfree={case.minfree},server={server.ip},export={server.export}")
    return MachineConfig(kernel=image, initrd=initrd, ram_size=RAM_LINUX_MIB << 20, seed=seed,
                         net=net, max_insns=MAX_INSNS,
                         nics=(NicSpec("n0", mtu=9000, netem=netem),),
                         append=f"console=ttyS0 panic=-1 emu.run={run}")


NFS_SWAP_MIB = 64                  # the swap file, made on the server's side


def _run_nfs(case: Case, kernel: str | None, bundle: str, pcap: str, seed: int,
             tmp: str) -> tuple[Any, int | None]:
    """A linux-nfs case against a server of its own (a namespace named
    after this process, so that parallel runs do not meet)."""
    import time
    from pathlib import Path

    from emu.machine.machine import Machine
    from emu.tools.nfsserver import nfs_server
    with nfs_server(Path(tmp), f"lve{os.getpid() % 100_000}") as server:
        swapfile = server.export / "swapfile"       # fully allocated: zeros, not a hole
        with open(swapfile, "wb") as f:
            for _ in range(NFS_SWAP_MIB):
                f.write(bytes(1 << 20))
        swapfile.chmod(0o600)
        m = Machine(_config(case, kernel, bundle, pcap, seed, server))
        deadline = time.monotonic() + NFS_WALL_LIMIT_S
        while m.exit_status is None and time.monotonic() < deadline:
            m.run_slice()
        if m.exit_status is None:
            m.stop_reason = f"no end after {NFS_WALL_LIMIT_S} s of wall time (a stall)"
        m.network.close()
    return m, m.exit_status


def measure(kernel: str | None, bundle: str, case: Case, seed: int = 1) -> Row:
    """Run one case and read its capture."""
    from emu.guestview import kstats
    from emu.machine.machine import Machine
    from emu.tools import aoeflow, tcpflow
    with tempfile.TemporaryDirectory(prefix="emu-lve-") as tmp:
        pcap = os.path.join(tmp, "run.pcap")
        deadlocked = False
        if case.guest == "linux-nfs":
            m, status = _run_nfs(case, kernel, bundle, pcap, seed, tmp)
            tcp = tcpflow.analyze(pcap)
        elif case.guest.startswith("emu"):
            session = RunSession(_config(case, kernel, bundle, pcap, seed), io.BytesIO(),
                                 deadlock_ns=parse_time_ns(DEADLOCK_SPAN))
            m = session.machine
            status = session.run()
            deadlocked = session.diagnosis is not None and status == EXIT_DEADLOCK
            m.network.close()
            flow = aoeflow.analyze(pcap)
        else:
            m = Machine(_config(case, kernel, bundle, pcap, seed))
            status = m.run()
            m.network.close()
            flow = aoeflow.analyze(pcap)
    console = bytes(m.console)
    outcome = _outcome(status == 0 and bool(MEMHOG.findall(console)), deadlocked, console,
                       case.guest.startswith("linux"))
    found = MEMHOG.findall(console)
    mismatches = int(found[-1]) if found else -1
    if case.guest.startswith("emu"):
        swap = (kstats.collect(m) or {}).get("swap") or {}
        out, back = swap.get("swap_outs", 0), swap.get("swap_ins", 0)
    else:
        pswp = PSWP.findall(console)
        back, out = (int(pswp[-1][0]), int(pswp[-1][1])) if pswp else (0, 0)
    if case.guest == "linux-nfs":
        return Row(case, status == 0 and mismatches == 0, mismatches, m.stop_reason,
                   round(m.now() / 1e6, 3), out, back, NA, tcp.retransmits,
                   round(tcp.rtt_mean_ns / 1e3, 1), round(tcp.rtt_p95_ns / 1e3, 1), NA, NA,
                   round(tcp.bytes_moved / 1e6, 3), round(tcp.mb_per_s, 3), outcome)
    return Row(case, status == 0 and mismatches == 0, mismatches, m.stop_reason,
               round(m.now() / 1e6, 3), out, back, flow.requests, flow.retransmits,
               round(flow.rtt_mean_ns / 1e3, 1), round(flow.rtt_p95_ns / 1e3, 1),
               flow.window_max, round(flow.window_mean, 2),
               round((flow.bytes_read + flow.bytes_written) / 1e6, 3), round(flow.mb_per_s, 3),
               outcome)


def _outcome(finished: bool, deadlocked: bool, console: bytes, linux: bool) -> str:
    """A few words: how the run ended, and for Linux what its kernel
    reported on the console (hung tasks, OOM kills)."""
    what = "completed" if finished else "deadlock (detector)" if deadlocked else "stalled"
    if linux:
        hung, oom = len(HUNG.findall(console)), len(OOM.findall(console))
        notes = [f"{hung} hung-task reports" if hung else "", f"{oom} OOM kills" if oom else ""]
        what = ", ".join([what] + [n for n in notes if n])
    return what


def cases(guests: Sequence[str], links: Sequence[str], pages: int, passes: int,
          noise: str | None = None, minfree: int = MINFREE_KB) -> list[Case]:
    """The sweep's points, checked (ConfigError with one line for a bad value)."""
    if noise is not None:
        from emu.net.noise import parse_noise
        try:
            parse_noise(noise)
        except ValueError as exc:
            raise ConfigError(f"--noise: {exc}") from None
    if not 128 <= minfree <= 65536:
        raise ConfigError(f"--minfree: {minfree} is not in 128..65536 (KB)")
    for g in guests:
        if g not in GUESTS:
            raise ConfigError(f"--guests: {g!r} is not one of {', '.join(GUESTS)}")
    for lk in links:
        if lk not in LINK_SPECS:
            raise ConfigError(f"--links: {lk!r} is not one of {', '.join(LINK_SPECS)}")
    if not 256 <= pages <= 65536:
        raise ConfigError(f"--pages: {pages} is not in 256..65536")
    if not 1 <= passes <= 8:
        raise ConfigError(f"--passes: {passes} is not in 1..8")
    if not guests or not links:
        raise ConfigError("--guests and --links need at least one value each")
    return [Case(g, lk, pages, passes, noise, minfree) for lk in links for g in guests]


def check_cases(todo: Sequence[Case], bundle: str) -> None:
    """What the Linux cases need before any runs: the bundle; for
    linux-nfs, root and the NFS server's programs. Raises ConfigError."""
    from emu.tools.nfsserver import missing_tools
    if any(c.guest.startswith("linux") for c in todo):
        for name in ("Image", "initrd.gz"):
            path = os.path.join(bundle, name)
            if not os.path.exists(path):
                raise ConfigError(f"{path} is missing: make linux-guest builds the Linux "
                                  "bundle (or --linux DIR names one)")
    if any(c.guest == "linux-nfs" for c in todo):
        if os.geteuid() != 0:
            raise ConfigError("--guests linux-nfs needs root (a network namespace, a veth "
                              "pair and a packet socket)")
        if missing_tools():
            raise ConfigError(f"--guests linux-nfs needs {', '.join(missing_tools())} "
                              "(Debian: nfs-ganesha nfs-ganesha-vfs rpcbind ethtool)")


def sweep(kernel: str | None, bundle: str, todo: Sequence[Case],
          jobs: int | runner.Spread = 0, progress: Any = None) -> list[Row]:
    """measure() every case through the runner; rows in `todo` order."""
    return runner.run_all(measure, [(kernel, bundle, c) for c in todo], jobs, on_done=progress)


def _na(value: float, text: str) -> str:
    return "-" if value == NA else text


def table_text(rows: Sequence[Row]) -> str:
    """One line per run (virtual-time figures: a run repeats them exactly)."""
    head = ["guest", "link", "done", "pages out", "pages in", "requests", "retx",
            "rtt mean us", "rtt p95 us", "window max", "window mean", "MB", "MB/s", "outcome"]
    lines = [head]
    for r in rows:
        c = r.case
        lines.append([c.guest, c.link, "yes" if r.completed else "NO", f"{r.pages_out:,}",
                      f"{r.pages_in:,}", _na(r.requests, f"{r.requests:,}"),
                      f"{r.retransmits:,}", f"{r.rtt_mean_us:,.1f}", f"{r.rtt_p95_us:,.1f}",
                      _na(r.window_max, str(r.window_max)),
                      _na(r.window_mean, f"{r.window_mean:.2f}"), f"{r.mb_moved:,.1f}",
                      f"{r.mb_per_s:,.1f}", r.outcome])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(c.ljust(widths[i]) if i < 3 or i == len(head) - 1
                             else c.rjust(widths[i])
                             for i, c in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    stalls = [f"{r.case.guest} on {r.case.link}: {r.stop}" for r in rows if not r.completed]
    return "\n".join(out + (["", "did not finish:"] + stalls if stalls else []))


def write_csv(rows: Sequence[Row], path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        case_fields = [x.name for x in fields(Case)]
        row_fields = [x.name for x in fields(Row) if x.name != "case"]
        w.writerow(case_fields + row_fields)
        for r in rows:
            d = asdict(r)
            w.writerow([d["case"][k] for k in case_fields] + [d[k] for k in row_fields])


def plot(rows: Sequence[Row], path: str) -> None:
    """Per link, side by side for the two guests: MB/s (virtual time),
    retransmits, and the mean window in flight."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    links = list(dict.fromkeys(r.case.link for r in rows))
    guests = list(dict.fromkeys(r.case.guest for r in rows))
    by = {(r.case.guest, r.case.link): r for r in rows}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    width = 0.8 / max(1, len(guests))
    for gi, g in enumerate(guests):
        xs = [i + gi * width for i in range(len(links))]
        got = [by.get((g, lk)) for lk in links]
        for ax, key in zip(axes, ("mb_per_s", "retransmits", "window_mean"), strict=True):
            ax.bar(xs, [max(0, getattr(r, key)) if r else 0 for r in got], width, label=g)
    for ax, title in zip(axes, ("MB/s (virtual time)", "retransmits", "requests in flight (mean)"),
                         strict=True):
        ax.set_xticks([i + width * (len(guests) - 1) / 2 for i in range(len(links))], links)
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend()
    fig.suptitle("our kernel and Linux on the same link (emu experiment linux-vs-emu)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def command(kernel: str | None, bundle: str, todo: Sequence[Case], jobs: int | runner.Spread,
            csv_path: str | None, plot_path: str | None, err: Any = None) -> int:
    """Run the sweep, print the table, write the CSV and the plot. Returns
    0. Raises ConfigError for a missing bundle or an unreachable cluster."""
    from emu.tools.experiments.sweepbar import SweepBar
    check_cases(todo, bundle)
    with runner.Spread.of(jobs) as spread, \
            SweepBar(len(todo), "linux-vs-emu", err or sys.stderr) as bar:
        rows = sweep(kernel, bundle, todo, spread, bar.done)
    print(table_text(rows))
    if any(c.guest.startswith("linux") for c in todo):
        print()
        print(f"linux bundle: {bundle_version(bundle)}")
    if csv_path:
        write_csv(rows, csv_path)
    if plot_path:
        plot(rows, plot_path)
    return 0
