"""`emu experiment kmem`: how much of RAM our kernel keeps for itself, by
kind, as RAM grows - the measurement behind Rik van Riel's argument that
swapping kernel memory is not worth it, because what grows with memory (the
page structs: our frame table) is under 1 % of it.

Each run boots the kernel with `-m SIZE` and `init=meminfo` and reads the
kernel's pages by use (kstats, docs/kernel.md); the runs of a sweep are
independent and go through the experiments' runner (joblib: this host's
cores, or a Dask cluster with `--cluster`). Output: a table (share of RAM
per kind, in %), `--csv`, `--plot` (share against RAM, log scale).

Layer: tools.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emu.core.units import ConfigError, parse_size
from emu.tools.experiments import runner

SIZES = ("4M", "8M", "16M", "32M", "64M", "128M", "256M", "512M", "1G")
QUICK = ("4M", "16M", "64M")
# The kernel's own kinds (FRAME_* of kstats.h, names as emu.guestview.kstats
# gives them) with what a reader calls them; the rest of RAM is free, user
# pages and program images.
KERNEL_KINDS: tuple[tuple[str, str], ...] = (
    ("frametable", "frame table"), ("pagetable", "page tables"), ("kmalloc", "kernel heap"),
    ("kstack", "kernel stacks"), ("netbuf", "network buffers"), ("swapmap", "swap map"),
    ("kimage", "kernel image"), ("reserved", "firmware, reserved"), ("kernel", "kernel, other"),
)


@dataclass(frozen=True)
class Row:
    """One RAM size: its pages and the kernel's pages by kind."""

    ram: str
    pages: int
    by_use: dict[str, int]

    def share(self, kind: str) -> float:
        """Percent of RAM."""
        return 100.0 * self.by_use.get(kind, 0) / self.pages

    @property
    def kernel_pages(self) -> int:
        return sum(self.by_use.get(k, 0) for k, _ in KERNEL_KINDS)


def measure(kernel: str | None, ram: str) -> Row:
    """Boot `kernel` with `ram` and init=meminfo; its pages by use. Raises
    RuntimeError if the guest does not end cleanly."""
    from emu.guestview import kstats
    from emu.machine.config import MachineConfig
    from emu.machine.machine import Machine
    m = Machine(MachineConfig(kernel=kernel, ram_size=parse_size(ram), append="init=meminfo",
                              max_insns=2_000_000_000))
    if m.run() != 0:
        raise RuntimeError(f"-m {ram}: {m.stop_reason}")
    mem = kstats.collect(m)["memory"]
    return Row(ram, mem["pages_total"], dict(mem["pages_by_use"]))


def sweep(kernel: str | None, sizes: Sequence[str], jobs: int | runner.Spread = 0,
          progress: Any = None) -> list[Row]:
    """measure() for every size, through the runner (`jobs`: local workers,
    or a runner.Spread, which may name a Dask cluster); rows in `sizes`
    order, the same wherever they ran."""
    for s in sizes:
        parse_size(s)                                 # one line for a bad size, before any run
    return runner.run_all(measure, [(kernel, s) for s in sizes], jobs, on_done=progress)


def table_text(rows: Sequence[Row]) -> str:
    """The table: each kernel kind's share of RAM (%), then the total."""
    head = ["kind"] + [r.ram for r in rows]
    lines = [head]
    for kind, label in KERNEL_KINDS:
        lines.append([label] + [f"{r.share(kind):.2f}" for r in rows])
    lines.append(["kernel, all"] + [f"{100.0 * r.kernel_pages / r.pages:.2f}" for r in rows])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                             for i, c in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def growth_text(rows: Sequence[Row]) -> str:
    """Which kinds grow with RAM (their pages scale with it, within a factor
    of two) and which stay put, from the first and the last row."""
    first, last = rows[0], rows[-1]
    scale = last.pages / first.pages
    grows, fixed = [], []
    for kind, label in KERNEL_KINDS:
        a, b = first.by_use.get(kind, 0), last.by_use.get(kind, 0)
        if a and scale > 1 and b >= a * scale / 2:
            grows.append(f"{label} ({a:,} -> {b:,} pages, {first.share(kind):.2f} % -> "
                         f"{last.share(kind):.2f} % of RAM)")
        elif a or b:
            fixed.append(f"{label} ({a:,} -> {b:,})")
    return (f"From {first.ram} to {last.ram} ({scale:,.0f} x the pages):\n"
            f"  grows with RAM: {'; '.join(grows) or 'nothing'}\n"
            f"  does not:       {'; '.join(fixed) or 'nothing'}")


def write_csv(rows: Sequence[Row], path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ram", "pages", *[k for k, _ in KERNEL_KINDS], "kernel_total"])
        for r in rows:
            w.writerow([r.ram, r.pages, *[r.by_use.get(k, 0) for k, _ in KERNEL_KINDS],
                        r.kernel_pages])


def plot(rows: Sequence[Row], path: str) -> None:
    """Share of RAM against RAM size (log x), one line per kind with pages."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xs = [r.pages * 4096 / 2**20 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for kind, label in KERNEL_KINDS:
        ys = [r.share(kind) for r in rows]
        if any(ys):
            ax.plot(xs, ys, marker="o", label=label)
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.text(xs[0], 1.05, "1 % of RAM", color="grey", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("RAM (MiB)")
    ax.set_ylabel("share of RAM (%)")
    ax.set_title("Our kernel's own memory by kind (emu experiment kmem)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def command(kernel: str | None, sizes: Sequence[str], jobs: int | runner.Spread,
            csv_path: str | None, plot_path: str | None, err: Any = None) -> int:
    """Run the sweep (on `jobs`: local workers or a runner.Spread), print
    the table, write the CSV and the plot (progress on `err`, default
    stderr). Returns 0. Raises ConfigError, before any run, for bad sizes or
    a cluster that cannot be reached."""
    from emu.tools.experiments.sweepbar import SweepBar
    if not sizes:
        raise ConfigError("--sizes: at least one RAM size")
    for s in sizes:
        parse_size(s)                 # a bad size before connecting to a cluster
    with runner.Spread.of(jobs) as spread, \
            SweepBar(len(sizes), "kmem", err or sys.stderr) as bar:
        rows = sweep(kernel, sizes, spread, bar.done)
    print(table_text(rows))
    print()
    print(growth_text(rows))
    if csv_path:
        write_csv(rows, csv_path)
    if plot_path:
        plot(rows, plot_path)
    return 0
