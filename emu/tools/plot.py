"""`--plot FILE.png`: page faults, swap-out/in rates and retransmits over
virtual time, from a Timeline (matplotlib, Agg backend: no display needed).

Layer: tools.
"""

from __future__ import annotations

from emu.tools.progress import RETRANSMIT_KEYS, SWAP_IN_KEYS, SWAP_OUT_KEYS, first_key
from emu.tools.timeline import Timeline


def plot_timeline(tl: Timeline, path: str, title: str = "") -> None:
    """Draw the run's timeline to `path` (PNG). Raises ValueError with one
    line if there are fewer than two samples (the run was too short)."""
    if len(tl.samples) < 2:
        raise ValueError("--plot: the run was too short to sample (under two sampling periods)")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = tl.samples[-1].values
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    ax = axes[0]
    ax.plot(*tl.rate("page_faults"), label="page faults (MMU)", color="tab:blue")
    for key, label in (("kernel.major_faults", "major (swap-in)"),
                       ("kernel.minor_faults", "minor")):
        if key in last:
            ax.plot(*tl.rate(key), label=label)
    ax.set_ylabel("faults / virtual s")
    ax.legend(loc="upper right")
    ax = axes[1]
    k_out, k_in = first_key(last, SWAP_OUT_KEYS), first_key(last, SWAP_IN_KEYS)
    if k_out and k_in:
        ax.plot(*tl.rate(k_out), label="swap-out", color="tab:red")
        ax.plot(*tl.rate(k_in), label="swap-in", color="tab:green")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "no swap counters in this kernel", ha="center",
                transform=ax.transAxes)
    ax.set_ylabel("pages / virtual s")
    ax = axes[2]
    k_rt = first_key(last, RETRANSMIT_KEYS)
    if k_rt:
        ax.plot(*tl.level(k_rt), label="AoE retransmits (cumulative)", color="tab:purple")
    drops = [k for k in last if k.startswith("net.ports.guest.") and ".dropped_" in k
             and last[k]]
    for k in drops[:4]:
        ax.plot(*tl.level(k), label="link " + k.removeprefix("net.ports.guest."),
                linestyle="--")
    if k_rt or drops:
        ax.legend(loc="upper left")
    ax.set_ylabel("count")
    ax.set_xlabel("virtual time (ms)")
    fig.suptitle(title or "emu run", fontsize=9, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# Series of the reserve comparison: (row, sample key, label, colour).
RESERVE_SERIES: tuple[tuple[int, str, str, str], ...] = (
    (0, "kernel.memory.pages_free", "free pages", "tab:blue"),
    (1, "kernel.reserve.aoe_rx.usage", "aoe_rx in use", "tab:green"),
    (1, "kernel.reserve.swap_io.usage", "swap_io in use", "tab:olive"),
    (1, "kernel.reserve.aoe_tx.usage", "aoe_tx in use", "tab:cyan"),
    (2, "kernel.net.drops.no_buffer", "dropped: no RX buffer", "tab:red"),
    (2, "kernel.pfmemalloc_drop", "pfmemalloc drops (junk)", "tab:purple"),
)


def plot_reserve_compare(runs: list[tuple[str, list[tuple[int, dict[str, int]]]]],
                         path: str, title: str = "",
                         stalls: dict[str, int] | None = None) -> None:
    """Draw, one column per (label, samples) run - samples as
    emu.tools.experiments.reserves.Outcome.samples - free memory against the watermarks,
    reserve usage and cumulative drops over virtual time, to `path` (PNG).
    `stalls` maps a label to the virtual time (ns) its stall began, marked
    on its column. Raises ValueError with one line if a run has fewer than
    two samples."""
    for label, samples in runs:
        if len(samples) < 2:
            raise ValueError(f"--plot: run {label!r} was too short to sample")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(runs), figsize=(6 * len(runs), 8), sharey="row",
                             squeeze=False)
    for col, (label, samples) in enumerate(runs):
        t = [s[0] / 1e6 for s in samples]
        last = samples[-1][1]
        for row, key, what, colour in RESERVE_SERIES:
            axes[row][col].plot(t, [s[1].get(key, 0) for s in samples], color=colour,
                                label=what)
        for wm, style in (("min", "-"), ("low", "--"), ("high", ":")):
            v = last.get(f"kernel.memory.watermarks.{wm}")
            if v is not None:
                axes[0][col].axhline(v, color="grey", linewidth=0.8, linestyle=style,
                                     label=f"{wm} watermark ({v})")
        lim = last.get("kernel.reserve.aoe_rx.limit")
        if lim:
            axes[1][col].axhline(lim, color="tab:green", linewidth=0.8, linestyle="--",
                                 label=f"aoe_rx limit ({lim})")
        if stalls and label in stalls:
            for row in range(3):
                axes[row][col].axvline(stalls[label] / 1e6, color="black", linewidth=0.8,
                                       linestyle="-.",
                                       label="no progress from here" if row == 0 else None)
        axes[0][col].set_title(label)
        axes[2][col].set_xlabel("virtual time (ms)")
        for row in range(3):
            axes[row][col].legend(loc="upper right", fontsize=7)
    highs = [s[-1][1].get("kernel.memory.watermarks.high", 0) for _, s in runs]
    axes[0][0].set_ylim(0, 4 * max(highs + [1]))
    axes[0][0].set_ylabel("free pages")
    axes[1][0].set_ylabel("reserve pages in use")
    axes[2][0].set_ylabel("frames dropped (cumulative)")
    axes[2][0].set_yscale("symlog", linthresh=10)
    axes[2][0].set_ylim(bottom=0)
    fig.suptitle(title or "memory reserves", fontsize=9, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
