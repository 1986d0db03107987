"""`--plot FILE.png`: page faults, swap-out/in rates and retransmits over
virtual time, from a Timeline (matplotlib, Agg backend: no display needed).
"""

from __future__ import annotations

from emu.progress import RETRANSMIT_KEYS, SWAP_IN_KEYS, SWAP_OUT_KEYS, first_key
from emu.timeline import Timeline


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
