"""`emu experiment prefetch`: "the morning after" - Con Kolivas' case for
swap prefetch, and Andrew Morton's question about it ("amount of memory,
workload, observed results"), measured (docs/prefetch.md).

One run boots the kernel with `init=morning ws=W batch=B night=MS`: an
interactive process fills a working set of W pages, a batch job of B pages
pushes it out to swap and exits, the machine idles for the night, then the
interactive process touches its working set again, timing every touch.
The sweep crosses prefetch off/on (`prefetch=on`: kprefetchd), the two
read-ahead flavours (`readahead=cluster|vma`) and the night's length; the
cost side is the same night with `touch=0` (the working set is never
wanted again: what prefetch read was wasted). Figures: the morning's touch
time, its faults, per-touch latency (median, 99th percentile, max) from the
guest; pages prefetched, later used, dropped unused, read requests, and
read-ahead hits from the kernel's counters. Runs are independent and go
through the experiments' runner.

Layer: tools.
"""

from __future__ import annotations

import csv
import itertools
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from emu.core.units import ConfigError
from emu.tools.experiments import runner

WS = 1024                    # pages of the interactive working set (4 MiB)
BATCH = 4096                 # pages of the batch job (16 MiB)
RAM_MIB = 16
NIGHTS = (500, 5000)         # ms: shorter and longer than kprefetchd's 1 s idle delay
QUICK = {"nights": (3000,), "ws": 256, "batch": 1536, "ram": 8}
MORNING = re.compile(rb"morning: ws=(\d+) rss=(\d+) free=(\d+) at night, touched in (\d+) us: "
                     rb"faults major (\d+) minor (\d+); latency median (\d+) ns, p99 (\d+) ns, "
                     rb"max (\d+) ns; mismatches (\d+)")
UNTOUCHED = re.compile(rb"morning: ws=(\d+) rss=(\d+) free=(\d+) at night; not touched")
SLOW = re.compile(rb"morning: slow touch at (\d+) ns: page (\d+), (\d+) ns")


@dataclass(frozen=True)
class Case:
    """One run: prefetch on or off, the read-ahead flavour, the night, and
    whether the working set is touched again."""

    prefetch: bool
    readahead: str           # cluster | vma
    night_ms: int
    touch: bool = True
    ws: int = WS
    batch: int = BATCH
    ram_mib: int = RAM_MIB

    @property
    def label(self) -> str:
        return f"prefetch {'on' if self.prefetch else 'off'}, {self.readahead}"

    def append(self, trace: bool = False) -> str:
        return (("prefetch=on " if self.prefetch else "") + f"readahead={self.readahead} "
                f"init=morning ws={self.ws} batch={self.batch} night={self.night_ms}"
                + ("" if self.touch else " touch=0") + (" trace=1" if trace else ""))


@dataclass(frozen=True)
class Row:
    """A case and what happened."""

    case: Case
    rss_at_night: int        # working-set pages still resident after the batch job
    free_at_night: int       # free pages when the night began
    touch_us: int            # the morning's touches, all of them (0: not touched)
    major: int               # the morning's faults that read swap
    minor: int
    median_ns: int
    p99_ns: int
    max_ns: int
    prefetched: int          # pages kprefetchd read
    prefetch_reads: int      # in how many requests
    prefetch_used: int       # of those, later mapped
    prefetch_dropped: int    # reclaimed or freed unused
    ra_hits: int             # read-ahead pages later mapped
    ra_dropped: int
    slow: tuple[tuple[int, int], ...] = field(default=(), compare=False)  # (t ns, latency ns)
    samples: tuple[tuple[int, int, int, int], ...] = field(default=(), compare=False)

    @property
    def wasted(self) -> int:
        """Prefetched pages nobody used (dropped, or still waiting)."""
        return self.prefetched - self.prefetch_used


def measure(kernel: str | None, case: Case, trace: bool = False, seed: int = 1) -> Row:
    """Run one case (with `trace`, also the slow touches and samples of free
    memory, prefetched pages and major faults over virtual time). Raises
    RuntimeError (one line) if the guest does not finish cleanly."""
    from emu.guestview import kstats
    from emu.machine.config import MachineConfig
    from emu.machine.machine import Machine
    from emu.net.network import NetConfig
    from emu.tools.timeline import Timeline
    m = Machine(MachineConfig(kernel=kernel, append=case.append(trace), seed=seed,
                              ram_size=case.ram_mib << 20, max_insns=50_000_000_000,
                              net=NetConfig(seed=seed, targets=("mem:128M",))))
    timeline = None
    if trace:
        timeline = Timeline(m, period_ns=2_000_000)
        m.after_slice.append(timeline)
    status = m.run()
    what = f"{case.label}, night {case.night_ms} ms"
    if status != 0:
        raise RuntimeError(f"{what}: {m.stop_reason}")
    k = kstats.collect(m)
    pf = k["prefetch"]
    counters = (pf["pages"], pf["reads"], pf["hits"], pf["dropped"], pf["readahead_hits"],
                pf["readahead_dropped"])
    samples: tuple[tuple[int, int, int, int], ...] = ()
    if timeline is not None:
        timeline.sample()
        samples = tuple((s.t_ns, s.values.get("kernel.memory.pages_free", 0),
                         s.values.get("kernel.prefetch.pages", 0),
                         s.values.get("kernel.major_faults", 0)) for s in timeline.samples)
    slow = tuple((int(t), int(lat)) for t, _, lat in SLOW.findall(m.console))
    if not case.touch:
        u = UNTOUCHED.findall(m.console)
        if not u:
            raise RuntimeError(f"{what}: morning did not report")
        return Row(case, int(u[-1][1]), int(u[-1][2]), 0, 0, 0, 0, 0, 0, *counters, slow,
                   samples)
    found = MORNING.findall(m.console)
    if not found:
        raise RuntimeError(f"{what}: morning did not report")
    f = [int(x) for x in found[-1]]
    if f[9]:
        raise RuntimeError(f"{what}: {f[9]} pages came back wrong")
    return Row(case, *f[1:9], *counters, slow, samples)


# The read-ahead comparison: memhog's processes swap out interleaved, so the
# slots after a fault's belong to other processes as often as not.
RA_WORKLOAD = "init=memhog pages=1024 passes=2 procs=4"
RA_RAM_MIB = 8


@dataclass(frozen=True)
class RaRow:
    """One read-ahead flavour on the interleaved memhog workload."""

    flavour: str             # cluster | vma
    swap_ins: int            # pages read (faults and read-ahead)
    ahead: int               # of which read ahead of a fault
    ra_hits: int
    ra_dropped: int
    virtual_ns: int

    @property
    def hit_rate(self) -> float:
        """Read-ahead pages later mapped, in % of those read ahead."""
        return 100.0 * self.ra_hits / self.ahead if self.ahead else 0.0


def measure_ra(kernel: str | None, flavour: str, seed: int = 1) -> RaRow:
    """memhog (RA_WORKLOAD) with readahead=FLAVOUR. RuntimeError if it fails."""
    from emu.guestview import kstats
    from emu.machine.config import MachineConfig
    from emu.machine.machine import Machine
    from emu.net.network import NetConfig
    m = Machine(MachineConfig(kernel=kernel, append=f"readahead={flavour} {RA_WORKLOAD}",
                              seed=seed, ram_size=RA_RAM_MIB << 20, max_insns=50_000_000_000,
                              net=NetConfig(seed=seed, targets=("mem:64M",))))
    if m.run() != 0:
        raise RuntimeError(f"readahead={flavour}: {m.stop_reason}")
    k = kstats.collect(m)
    return RaRow(flavour, k["swap"]["swap_ins"], k["swap"]["readahead"],
                 k["prefetch"]["readahead_hits"], k["prefetch"]["readahead_dropped"], m.now())


def ra_text(rows: Sequence[RaRow]) -> str:
    """The read-ahead comparison, one line per flavour."""
    return "\n".join(f"readahead={r.flavour:7}: {r.swap_ins:,} pages read, "
                     f"{r.ahead:,} of them ahead of a fault, {r.hit_rate:.1f} % of those "
                     f"used ({r.ra_dropped:,} dropped unused); {r.virtual_ns / 1e6:,.1f} ms"
                     for r in rows)


def cases(nights: Sequence[int], ws: int = WS, batch: int = BATCH,
          ram_mib: int = RAM_MIB) -> list[Case]:
    """prefetch off/on x cluster/vma x each night, touched; then the cost
    side (prefetch on, cluster, untouched) for each night. ConfigError (one
    line) for a bad value."""
    if not nights or any(n < 0 or n > 3_600_000 for n in nights):
        raise ConfigError("--nights: one or more lengths in ms, 0..3600000")
    if ws < 16 or batch < ws:
        raise ConfigError("--ws at least 16 pages, --batch at least --ws")
    if ram_mib < 4:
        raise ConfigError("RAM: at least 4 MiB")
    touched = [Case(p, ra, n, True, ws, batch, ram_mib)
               for n, p, ra in itertools.product(nights, (False, True), ("cluster", "vma"))]
    return touched + [Case(True, "cluster", n, False, ws, batch, ram_mib) for n in nights]


def sweep(kernel: str | None, todo: Sequence[Case], jobs: int | runner.Spread = 0,
          trace: bool = False, progress: Any = None) -> list[Row]:
    """measure() every case through the runner (`jobs`: local workers or a
    runner.Spread); rows in `todo` order."""
    return runner.run_all(measure, [(kernel, c, trace) for c in todo], jobs, on_done=progress)


def table_text(rows: Sequence[Row]) -> str:
    """One line per run."""
    head = ["prefetch", "readahead", "night ms", "touched", "rss", "touch us", "major", "minor",
            "median ns", "p99 ns", "max ns", "prefetched", "used", "wasted", "ra hits",
            "ra dropped"]
    lines = [head]
    for r in rows:
        c = r.case
        lines.append(["on" if c.prefetch else "off", c.readahead, f"{c.night_ms:,}",
                      "yes" if c.touch else "no", f"{r.rss_at_night:,}",
                      f"{r.touch_us:,}" if c.touch else "-", f"{r.major:,}", f"{r.minor:,}",
                      f"{r.median_ns:,}", f"{r.p99_ns:,}", f"{r.max_ns:,}",
                      f"{r.prefetched:,}", f"{r.prefetch_used:,}", f"{r.wasted:,}",
                      f"{r.ra_hits:,}", f"{r.ra_dropped:,}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(c.ljust(widths[i]) if i in (0, 1, 3) else c.rjust(widths[i])
                             for i, c in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def answer_text(rows: Sequence[Row]) -> str:
    """Morton's question, answered per night: the morning with prefetch on
    against off (cluster read-ahead), and what an untouched night cost."""
    by = {(r.case.prefetch, r.case.readahead, r.case.night_ms, r.case.touch): r for r in rows}
    out = []
    for night in sorted({r.case.night_ms for r in rows}):
        off, on = by.get((False, "cluster", night, True)), by.get((True, "cluster", night, True))
        cost = by.get((True, "cluster", night, False))
        if off and on and on.touch_us:
            out.append(f"night {night:,} ms: the morning takes {off.touch_us:,} us without "
                       f"prefetch, {on.touch_us:,} us with it ({off.touch_us / on.touch_us:,.1f}x);"
                       f" major faults {off.major:,} -> {on.major:,}")
        if cost:
            out.append(f"night {night:,} ms, never touched again: {cost.prefetched:,} pages "
                       f"({cost.prefetched * 4096 / 2**20:,.1f} MiB) read in "
                       f"{cost.prefetch_reads:,} requests for nothing")
    return "\n".join(out)


def write_csv(rows: Sequence[Row], path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        case_fields = [x.name for x in fields(Case)]
        row_fields = [x.name for x in fields(Row) if x.name not in ("case", "slow", "samples")]
        w.writerow(case_fields + row_fields + ["wasted"])
        for r in rows:
            d = asdict(r)
            w.writerow([d["case"][k] for k in case_fields] + [d[k] for k in row_fields]
                       + [r.wasted])


def plot(rows: Sequence[Row], path: str) -> None:
    """Over virtual time, for the longest night's touched runs with cluster
    read-ahead, prefetch off and on: free memory, pages prefetched, major
    faults (top), and each slow touch's latency (bottom, log)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    night = max(r.case.night_ms for r in rows)
    runs = [r for r in rows if r.case.night_ms == night and r.case.touch
            and r.case.readahead == "cluster"]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for r in runs:
        style = "-" if r.case.prefetch else "--"
        if r.samples:
            t = [s[0] / 1e6 for s in r.samples]
            axes[0].plot(t, [s[1] for s in r.samples], style, label=f"free pages, {r.case.label}")
            axes[0].plot(t, [s[2] for s in r.samples], style, label=f"prefetched, {r.case.label}")
            axes[1].plot(t, [s[3] for s in r.samples], style, label=r.case.label)
        if r.slow:
            axes[2].scatter([s[0] / 1e6 for s in r.slow], [s[1] / 1e3 for s in r.slow], s=8,
                            label=r.case.label)
    axes[0].set_ylabel("pages")
    axes[1].set_ylabel("major faults (all)")
    axes[2].set_ylabel("slow touch (us)")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("virtual time (ms)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"The morning after: a {night:,} ms night (emu experiment prefetch)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def command(kernel: str | None, todo: Sequence[Case], jobs: int | runner.Spread,
            csv_path: str | None, plot_path: str | None, err: Any = None,
            readahead: bool = True) -> int:
    """Run the sweep (and, with `readahead`, the read-ahead comparison) on
    `jobs` (local workers or a runner.Spread), print the tables and the
    answer, write the CSV and the plot (progress on `err`, default stderr).
    Returns 0. Raises ConfigError for a cluster that cannot be reached."""
    from emu.tools.experiments.sweepbar import SweepBar
    ra_jobs = [(kernel, f) for f in ("cluster", "vma")] if readahead else []
    with runner.Spread.of(jobs) as spread, \
            SweepBar(len(todo) + len(ra_jobs), "prefetch", err or sys.stderr) as bar:
        rows = sweep(kernel, todo, spread, trace=plot_path is not None, progress=bar.done)
        ra = runner.run_all(measure_ra, ra_jobs, spread, on_done=bar.done)
    c = todo[0]
    print(f"{c.ram_mib} MiB of RAM, working set {c.ws:,} pages ({c.ws / 256:,.1f} MiB), batch "
          f"job {c.batch:,} pages ({c.batch / 256:,.1f} MiB), RAM disk; kprefetchd's idle delay "
          f"1,000 ms")
    print(table_text(rows))
    print()
    print(answer_text(rows))
    if ra:
        print()
        print(f"Read-ahead on {RA_WORKLOAD.removeprefix('init=')} ({RA_RAM_MIB} MiB of RAM):")
        print(ra_text(ra))
    if csv_path:
        write_csv(rows, csv_path)
    if plot_path:
        plot(rows, plot_path)
    return 0
