"""`emu experiment swapoff`: the four ways our kernel's swapoff finds the
PTEs of swapped-out pages (docs/swapoff.md) - scan (Linux before 5.1),
batch and hint (Hugh Dickins' two ideas), walk (Daniel Drake's proposal,
Linux 5.1) - measured against how much is out, how many processes hold
it, how much memory is free, the disk behind the AoE target and the link.

One run boots the kernel with `swapoff=MODE init=swapofftest ...`: PROCS
workers fill OUT MiB between them, a memhog the size of RAM pushes them
out, (with free=low) the test takes memory until only the high watermark
will be left, and `swapoff` brings everything back; every page is then
verified against memhog's pattern. RAM is OUT + 12 MiB. Figures come from
the kernel's counters (kstats: PTEs read, address-space searches, reads,
sectors, virtual time) and the host's wall clock around the call
(SwapoffClock). Runs are independent and go through the experiments'
runner.

Layer: tools.
"""

from __future__ import annotations

import csv
import itertools
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from emu.core.units import ConfigError
from emu.tools.experiments import runner

MODES = ("scan", "batch", "hint", "walk")
SIZES = (4, 16, 64)                   # MiB out on swap
PROCS = (8,)
FREE = ("low",)
DISKS = ("ram", "hdd")
LINKS = ("clean",)
LINK_SPECS = {"clean": "", "loss1": "loss 1%"}
FREE_KINDS = ("low", "plenty")
DISK_KINDS = ("ram", "flash", "hdd")
QUICK = {"sizes": (2,), "procs": (4,), "free": ("low",), "disks": ("ram",),
         "links": ("clean",)}
HEADROOM_MIB = 12
RESULT = re.compile(rb"swapofftest: procs=\d+ pages=\d+ out=(\d+) mismatches=(\d+)")


@dataclass(frozen=True)
class Case:
    """One point of the sweep."""

    mode: str
    out_mib: int
    procs: int
    free: str
    disk: str
    link: str

    def append(self) -> str:
        """The kernel command line."""
        pages = self.out_mib * 256 // self.procs
        hog = (self.out_mib + HEADROOM_MIB) * 256
        return (f"swapoff={self.mode} init=swapofftest procs={self.procs} pages={pages} "
                f"hog={hog}" + (" free=0" if self.free == "low" else ""))

    def config(self, kernel: str | None, seed: int) -> Any:
        from emu.machine.config import MachineConfig
        from emu.net.network import NetConfig
        ram = self.out_mib + HEADROOM_MIB
        target = f"mem:{max(64, 4 * ram)}M" + ("" if self.disk == "ram" else f",disk={self.disk}")
        return MachineConfig(kernel=kernel, append=self.append(), ram_size=ram << 20, seed=seed,
                             max_insns=200_000_000_000,
                             net=NetConfig(net=LINK_SPECS[self.link], seed=seed,
                                           targets=(target,)))


@dataclass(frozen=True)
class Row:
    """A case and what its swapoff did."""

    case: Case
    out_pages: int           # slots in use when swapoff started
    pages: int               # brought back into their PTEs
    ptes: int                # page-table entries read
    mms: int                 # address-space searches
    hint_hits: int
    reads: int               # read requests (bios)
    sectors: int
    retransmits: int         # AoE retransmissions during the call
    virtual_ns: int
    wall_s: float

    @property
    def mb_per_s(self) -> float:
        """MB (10^6 bytes) brought back per second of virtual time."""
        return self.pages * 4096 / 1e6 / (self.virtual_ns / 1e9) if self.virtual_ns else 0.0


def measure(kernel: str | None, case: Case, seed: int = 1) -> Row:
    """Run one case. Raises RuntimeError (one line) if the guest does not
    finish cleanly or a page came back wrong."""
    from emu.guestview import kstats
    from emu.machine.machine import Machine
    from emu.tools.swapoffclock import SwapoffClock
    m = Machine(case.config(kernel, seed))
    clock = SwapoffClock(m)
    m.after_slice.append(clock)
    status = m.run()
    found = RESULT.findall(m.console)
    what = f"{case.mode}, {case.out_mib} MiB out"
    if status != 0 or not found:
        raise RuntimeError(f"{what}: {m.stop_reason}")
    if int(found[-1][1]):
        raise RuntimeError(f"{what}: {int(found[-1][1])} pages came back wrong")
    k = kstats.collect(m)
    so = k["swapoff"]
    return Row(case, int(found[-1][0]), so["pages"], so["ptes_read"], so["mm_searches"],
               so["hint_hits"], so["reads"], so["sectors"], so["retransmits"],
               so["virtual_ns"], round(clock.wall_s, 6))


def cases(modes: Sequence[str], sizes: Sequence[int], procs: Sequence[int],
          free: Sequence[str], disks: Sequence[str], links: Sequence[str]) -> list[Case]:
    """The sweep's points, checked (ConfigError with one line for a bad value)."""
    def check(what: str, got: Sequence[str], known: Sequence[str]) -> None:
        for g in got:
            if g not in known:
                raise ConfigError(f"--{what}: {g!r} is not one of {', '.join(known)}")
    check("modes", modes, MODES)
    check("free", free, FREE_KINDS)
    check("disks", disks, DISK_KINDS)
    check("links", links, tuple(LINK_SPECS))
    for s in sizes:
        if not 1 <= s <= 1024:
            raise ConfigError(f"--sizes: {s} MiB is not in 1..1024")
    for p in procs:
        if not 1 <= p <= 16:
            raise ConfigError(f"--procs: {p} is not in 1..16")
        for s in sizes:
            if s * 256 < p:
                raise ConfigError(f"--sizes {s} with --procs {p}: less than a page each")
    if not all((modes, sizes, procs, free, disks, links)):
        raise ConfigError("every dimension of the sweep needs at least one value")
    return [Case(m, s, p, f, d, lk) for d, lk, f, p, s, m
            in itertools.product(disks, links, free, procs, sizes, modes)]


def sweep(kernel: str | None, todo: Sequence[Case], jobs: int | runner.Spread = 0,
          progress: Any = None) -> list[Row]:
    """measure() every case through the runner (`jobs`: local workers or a
    runner.Spread, which may name a Dask cluster); rows in `todo` order."""
    return runner.run_all(measure, [(kernel, c) for c in todo], jobs, on_done=progress)


def _varying(rows: Sequence[Row]) -> list[str]:
    """Case fields (other than mode and size) with more than one value."""
    return [f.name for f in fields(Case) if f.name not in ("mode", "out_mib")
            and len({getattr(r.case, f.name) for r in rows}) > 1]


def table_text(rows: Sequence[Row]) -> str:
    """One line per run, virtual-time figures only (a run repeats them
    exactly; wall_text() has the host's)."""
    head = ["mode", "out MiB", "procs", "free", "disk", "link", "pages", "PTEs read",
            "searches", "reads", "retx", "virtual ms", "MB/s"]
    lines = [head]
    for r in rows:
        c = r.case
        lines.append([c.mode, str(c.out_mib), str(c.procs), c.free, c.disk, c.link,
                      f"{r.pages:,}", f"{r.ptes:,}", f"{r.mms:,}", f"{r.reads:,}",
                      f"{r.retransmits:,}", f"{r.virtual_ns / 1e6:,.1f}", f"{r.mb_per_s:,.1f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(c.ljust(widths[i]) if i in (0, 3, 4, 5) else c.rjust(widths[i])
                             for i, c in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def wall_text(rows: Sequence[Row]) -> str:
    """The host's wall time in each swapoff call, one line per run."""
    # (no padding around the figures: the docs mask wall-clock numbers, so
    # a line must not change its spacing with their width)
    return "\n".join(f"wall  {r.case.mode} {r.case.out_mib} MiB, {r.case.procs} procs, free "
                     f"{r.case.free}, {r.case.disk}, {r.case.link}: {r.wall_s * 1000:,.0f} ms"
                     for r in rows)


def compare_text(rows: Sequence[Row]) -> str:
    """walk against scan at each point where both ran: how many times as
    fast (virtual time) or slower, and how many times fewer PTEs it read."""
    by = {(r.case.out_mib, r.case.procs, r.case.free, r.case.disk, r.case.link, r.case.mode): r
          for r in rows}
    order = {d: i for i, d in enumerate(DISK_KINDS)}
    out = []
    scans = [(k[:-1], r) for k, r in by.items() if k[-1] == "scan"]
    for key, scan in sorted(scans, key=lambda kr: (order[kr[0][3]], kr[0])):
        walk = by.get(key + ("walk",))
        if walk is None or not walk.virtual_ns or not walk.ptes:
            continue
        out_mib, procs, free, disk, link = key
        speed = scan.virtual_ns / walk.virtual_ns
        out.append(f"{out_mib} MiB out, {procs} procs, free {free}, {disk}, {link}: walk "
                   + (f"{speed:,.1f}x as fast as scan" if speed >= 1
                      else f"{1 / speed:,.1f}x slower than scan")
                   + f", {scan.ptes / walk.ptes:,.0f}x fewer PTEs read")
    return "\n".join(out)


def write_csv(rows: Sequence[Row], path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        case_fields = [x.name for x in fields(Case)]
        row_fields = [x.name for x in fields(Row) if x.name != "case"]
        w.writerow(case_fields + row_fields + ["mb_per_s"])
        for r in rows:
            d = asdict(r)
            w.writerow([d["case"][k] for k in case_fields] + [d[k] for k in row_fields]
                       + [round(r.mb_per_s, 3)])


def plot(rows: Sequence[Row], path: str) -> None:
    """MB/s (top) and PTEs read (bottom, log) against MiB out, one line per
    strategy (and per value of any other dimension that varies), one column
    per disk model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    disks = list(dict.fromkeys(r.case.disk for r in rows))
    vary = [v for v in _varying(rows) if v != "disk"]
    fig, axes = plt.subplots(2, len(disks), figsize=(4.5 * len(disks) + 1, 7), squeeze=False)
    for col, disk in enumerate(disks):
        lines: dict[str, list[Row]] = {}
        for r in rows:
            if r.case.disk == disk:
                label = " ".join([r.case.mode] + [f"{v}={getattr(r.case, v)}" for v in vary])
                lines.setdefault(label, []).append(r)
        for label, rs in lines.items():
            rs.sort(key=lambda r: r.case.out_mib)
            xs = [r.case.out_mib for r in rs]
            axes[0][col].plot(xs, [r.mb_per_s for r in rs], marker="o", label=label)
            axes[1][col].plot(xs, [r.ptes for r in rs], marker="o", label=label)
        axes[0][col].set_title(f"disk: {disk}")
        axes[0][col].set_ylabel("MB/s back (virtual time)")
        axes[1][col].set_ylabel("page-table entries read")
        axes[1][col].set_yscale("log")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("MiB out on swap")
            ax.grid(alpha=0.3)
        axes[0][col].legend(fontsize=7)
    fig.suptitle("swapoff strategies (emu experiment swapoff)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def command(kernel: str | None, todo: Sequence[Case], jobs: int | runner.Spread,
            csv_path: str | None, plot_path: str | None, err: Any = None) -> int:
    """Run the sweep (on `jobs`: local workers or a runner.Spread), print
    the table and the walk/scan comparison, write the CSV and the plot
    (progress on `err`, default stderr). Returns 0. Raises ConfigError for
    a cluster that cannot be reached."""
    from emu.tools.experiments.sweepbar import SweepBar
    with runner.Spread.of(jobs) as spread, \
            SweepBar(len(todo), "swapoff", err or sys.stderr) as bar:
        rows = sweep(kernel, todo, spread, bar.done)
    print(table_text(rows))
    cmp = compare_text(rows)
    if cmp:
        print()
        print(cmp)
    print()
    print(wall_text(rows))
    if csv_path:
        write_csv(rows, csv_path)
    if plot_path:
        plot(rows, plot_path)
    return 0
