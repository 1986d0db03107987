"""Plots of runs over virtual time (matplotlib, Agg backend: no display
needed): `--plot FILE.png` (page faults, swap traffic, retransmits and lost
frames, from a Timeline) and `emu reserve-compare --plot` (free memory,
reserve use and drops of two runs side by side).

What every plot here keeps to: Okabe and Ito's colour-blind-safe palette,
each line of a panel its own colour and dash; legends and axes in words
with units, never a stat key; counts that are noisy per sample shown as
rates over a window (named in the axis label), levels as the window's mean
with its range shaded; one x axis shared by every panel; and no panel
without a line in it.

Layer: tools.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from emu.tools.progress import RETRANSMIT_KEYS, first_key
from emu.tools.timeline import Timeline, window_level, window_rate

# Okabe & Ito, "Color Universal Design" (2008): distinguishable with every
# common colour-vision deficiency, and in grey by their lightness.
PALETTE = {"blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73",
           "orange": "#E69F00", "purple": "#CC79A7", "sky": "#56B4E9",
           "yellow": "#F0E442", "black": "#000000"}
DASHES = ("-", "--", "-.", ":")
WINDOWS_PER_RUN = 100        # a rate window is about this fraction of the run


def pick_window(span_ns: int, period_ns: int) -> int:
    """A window for rates and levels of a run of `span_ns` sampled every
    `period_ns`: about 1/WINDOWS_PER_RUN of the run, rounded to the nearest
    1, 2 or 5 x 10^k ns (on a log scale), never shorter than one sampling
    period."""
    target = max(span_ns / WINDOWS_PER_RUN, 1)
    scale = 10 ** math.floor(math.log10(target))
    steps = [1, 2, 5, 10]
    best = min(steps, key=lambda k: abs(math.log(k * scale / target)))
    return max(best * scale, period_ns)


def ms_text(ns: int) -> str:
    """'10 ms', '500 us' - a window's length for an axis label."""
    return f"{ns / 1e6:,g} ms" if ns >= 1_000_000 else f"{ns / 1e3:,g} us"


@dataclass
class Series:
    """One line of a panel: x (ms), y, its label, and optionally a shaded
    range (lo, hi) around it."""

    label: str
    x: list[float]
    y: list[float]
    band: tuple[list[float], list[float]] | None = None

    @property
    def nonzero(self) -> bool:
        """True when the line leaves zero somewhere."""
        return any(self.y)


@dataclass
class Panel:
    """One panel: a title, a y label with its unit, its lines, horizontal
    reference lines (label, value, colour name) and notes for the legend."""

    title: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    refs: list[tuple[str, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _draw(ax: Any, panel: Panel, colours: dict[str, str] | None = None) -> None:
    """Draw `panel` on `ax`: palette colours in order (or `colours` by
    label), a dash per line, bands shaded in the line's colour."""
    from matplotlib.ticker import StrMethodFormatter

    names = list(PALETTE)
    for i, s in enumerate(panel.series):
        colour = (colours or {}).get(s.label) or PALETTE[names[i % len(names)]]
        ax.plot(s.x, s.y, color=colour, linestyle=DASHES[i % len(DASHES)], linewidth=1.4,
                label=s.label)
        if s.band is not None:
            ax.fill_between(s.x, s.band[0], s.band[1], color=colour, alpha=0.2, linewidth=0)
    for i, (label, value, colour) in enumerate(panel.refs):
        ax.axhline(value, color=PALETTE[colour], linewidth=1, linestyle=DASHES[-1 - i % 3],
                   label=label)
    for note in panel.notes:
        ax.plot([], [], " ", label=note)
    ax.set_title(panel.title, fontsize=10, loc="left")
    ax.set_ylabel(panel.ylabel, fontsize=9)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_ylim(bottom=0)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)


# -- --plot: one run from its Timeline -----------------------------------------

LINK_DROPS = {"dropped_loss": "lost", "dropped_limit": "dropped (queue full)"}
DIRECTIONS = {"up": "guest to switch", "down": "switch to guest"}


def timeline_panels(tl: Timeline) -> list[Panel]:
    """The panels of `--plot` with a line in them."""
    last = tl.samples[-1].values
    span = tl.samples[-1].t_ns - tl.samples[0].t_ns
    w = pick_window(span, tl.period_ns)
    per = f"per virtual second, {ms_text(w)} window"
    faults = Panel("Page faults", f"faults {per}")
    faults.series.append(Series("all page faults (MMU)", *tl.rate("page_faults", w)))
    for key, label in (("kernel.major_faults", "major: page read from swap"),
                       ("kernel.minor_faults", "minor: no I/O")):
        if key in last:
            faults.series.append(Series(label, *tl.rate(key, w)))
    swap = Panel("Swap traffic", f"MB {per}")
    for key, label in (("kernel.swap.bytes_out", "written to swap (swap-out)"),
                       ("kernel.swap.bytes_in", "read from swap (swap-in)")):
        if key in last:
            t, r = tl.rate(key, w)
            swap.series.append(Series(label, t, [v / 1e6 for v in r]))
    trouble = Panel("Retransmits and lost frames", "frames since boot")
    k_rt = first_key(last, RETRANSMIT_KEYS)
    if k_rt:
        trouble.series.append(Series("AoE requests retransmitted", *tl.level(k_rt)))
    for direction, where in DIRECTIONS.items():
        for drop, what in LINK_DROPS.items():
            key = f"net.ports.guest.{direction}.{drop}"
            if key in last:
                trouble.series.append(Series(f"{what} on the link, {where}", *tl.level(key)))
    faults.series[1:] = [s for s in faults.series[1:] if s.nonzero]
    panels = [faults]
    for p in (swap, trouble):
        p.series = [s for s in p.series if s.nonzero]
        if p.series:
            panels.append(p)
    return panels


def plot_timeline(tl: Timeline, path: str, title: str = "") -> None:
    """Draw the run's timeline to `path` (PNG): page faults always, swap
    traffic and retransmits/lost frames when the run had any. Raises
    ValueError with one line if there are fewer than two samples (the run
    was too short)."""
    if len(tl.samples) < 2:
        raise ValueError("--plot: the run was too short to sample (under two sampling periods)")
    plt = _pyplot()
    fig = timeline_figure(tl, title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def timeline_figure(tl: Timeline, title: str = "") -> Any:
    """The matplotlib Figure of plot_timeline (one column of panels)."""
    plt = _pyplot()
    panels = timeline_panels(tl)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.2 + 2.7 * len(panels)),
                             sharex=True, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        _draw(ax, panel)
    axes[-1][0].set_xlabel("virtual time (ms)")
    axes[-1][0].set_xlim(tl.samples[0].t_ns / 1e6, tl.samples[-1].t_ns / 1e6)
    fig.suptitle(title or "emu run", fontsize=9, wrap=True)
    fig.tight_layout()
    return fig


# -- emu reserve-compare --plot: two runs side by side --------------------------

RESERVES = {"aoe_rx": "AoE receive buffers (aoe_rx)", "swap_io": "swap I/O (swap_io)",
            "aoe_tx": "AoE send (aoe_tx)"}
DROPS = {"kernel.net.drops.no_buffer": "dropped: no free RX buffer",
         "kernel.pfmemalloc_drop": "dropped: junk in a reserve buffer"}
Samples = Sequence[tuple[int, dict[str, int]]]


def reserve_panels(samples: Samples, w: int, reserves: Sequence[str],
                   drops: Sequence[str], quiet: Sequence[str] = ()) -> list[Panel]:
    """The three panels of one run of reserve-compare: free pages against
    the watermarks, the given reserves' pages in use (the `quiet` ones,
    0 throughout, named in a note), and the given drops as rates over the
    window `w` (ns)."""
    ts = [t for t, _ in samples]
    x_of = [t / 1e6 for t in ts]
    last = samples[-1][1]

    def level(key: str, label: str) -> Series:
        mean, lo, hi = window_level(ts, [v.get(key, 0) for _, v in samples], w)
        return Series(label, x_of, mean, (lo, hi))

    free = Panel("Free memory", f"pages ({ms_text(w)} mean and range)")
    free.series.append(level("kernel.memory.pages_free", "free pages"))
    for wm, colour in (("min", "vermillion"), ("low", "orange"), ("high", "green")):
        v = last.get(f"kernel.memory.watermarks.{wm}")
        if v is not None:
            free.refs.append((f"{wm} watermark ({v:,} pages)", v, colour))
    used = Panel("Reserve in use", f"pages ({ms_text(w)} mean and range)")
    for name in reserves:
        used.series.append(level(f"kernel.reserve.{name}.usage", RESERVES.get(name, name)))
    lim = last.get("kernel.reserve.aoe_rx.limit")
    if lim and "aoe_rx" in reserves:
        used.refs.append((f"aoe_rx limit ({lim:,} pages)", lim, "black"))
    if quiet:
        used.notes.append("0 throughout: " + ", ".join(RESERVES.get(n, n) for n in quiet))
    dropped = Panel("Frames dropped by the guest",
                    f"frames per virtual second, {ms_text(w)} window")
    for key in drops:
        t, r = window_rate(ts, [v.get(key, 0) for _, v in samples], w)
        dropped.series.append(Series(DROPS[key], t, r))
    return [free, used, dropped]


def plot_reserve_compare(runs: list[tuple[str, list[tuple[int, dict[str, int]]]]],
                         path: str, title: str = "",
                         stalls: dict[str, int] | None = None) -> None:
    """Draw, one column per (label, samples) run - samples as
    emu.tools.experiments.reserves.Outcome.samples - free memory against the
    watermarks, reserve usage and drop rates over virtual time, to `path`
    (PNG). `stalls` maps a label to the virtual time (ns) its stall began,
    marked on its column. Raises ValueError with one line if a run has
    fewer than two samples."""
    for label, samples in runs:
        if len(samples) < 2:
            raise ValueError(f"--plot: run {label!r} was too short to sample")
    plt = _pyplot()
    fig = reserve_compare_figure(runs, title, stalls)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reserve_compare_figure(runs: list[tuple[str, list[tuple[int, dict[str, int]]]]],
                           title: str = "", stalls: dict[str, int] | None = None) -> Any:
    """The matplotlib Figure of plot_reserve_compare. Every panel shares
    one x axis (the longest run's); rows share their y axis; a reserve or a
    drop counter that stayed 0 in every run gets no line (the panel says so)."""
    plt = _pyplot()
    span = max(s[-1][0] for _, s in runs)
    period = min(s[1][0] - s[0][0] for _, s in runs) or 1
    w = pick_window(span, period)
    lasts = [s[-1][1] for _, s in runs]
    every = [name for name in RESERVES
             if any(f"kernel.reserve.{name}.peak" in v for v in lasts)]
    reserves = [n for n in every if any(v.get(f"kernel.reserve.{n}.peak", 0) for v in lasts)]
    drops = [k for k in DROPS if any(v.get(k, 0) for v in lasts)]
    quiet = [n for n in every if n not in reserves]
    columns = [reserve_panels(s, w, reserves, drops, quiet) for _, s in runs]
    rows = [r for r in range(3) if any(col[r].series for col in columns)]
    labels = [p.series[i].label for col in columns for p in col for i in range(len(p.series))]
    colours = {lb: PALETTE[list(PALETTE)[i % len(PALETTE)]]
               for i, lb in enumerate(dict.fromkeys(labels))}
    fig, axes = plt.subplots(len(rows), len(runs), figsize=(6.5 * len(runs), 1 + 3 * len(rows)),
                             sharex=True, sharey="row", squeeze=False)
    for c, ((label, _), col) in enumerate(zip(runs, columns, strict=True)):
        for r, row in enumerate(rows):
            ax = axes[r][c]
            if stalls and label in stalls:
                ax.axvline(stalls[label] / 1e6, color=PALETTE["black"], linewidth=1,
                           linestyle="-.", label="no progress from here" if r == 0 else None)
            _draw(ax, col[row], colours)
        axes[0][c].set_title(f"{label}\n{col[rows[0]].title}", fontsize=10, loc="left")
        axes[-1][c].set_xlabel("virtual time (ms)")
    for ax in axes.flat:
        ax.label_outer()           # one y label per row, one x label per column
    highs = [v.get("kernel.memory.watermarks.high", 0) for v in lasts]
    axes[0][0].set_ylim(0, 4 * max(highs + [1]))
    axes[0][0].set_xlim(0, span / 1e6)
    fig.suptitle(title or "memory reserves", fontsize=9, wrap=True)
    fig.tight_layout()
    return fig
