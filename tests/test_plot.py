"""The plots (emu/tools/plot.py) as a reader sees them: a colour-blind-safe
palette, one colour per line, words and units instead of stat keys, rates
over a window, one shared x axis, and no empty panel."""

from __future__ import annotations

import random
import re

import pytest

from emu.tools.plot import (
    PALETTE,
    pick_window,
    plot_reserve_compare,
    reserve_compare_figure,
    timeline_figure,
)
from emu.tools.timeline import Sample, Timeline, window_level, window_rate

MS = 1_000_000
STAT_KEY = re.compile(r"kernel\.|net\.|\w+_\w+\.|dropped_|_drop\b|usage|swap_outs")


def synthetic_timeline(n: int, swapping: bool, seed: int = 1) -> Timeline:
    """A Timeline of n 1-ms samples with noisy counters; swap, retransmits
    and link losses only when `swapping`."""
    rng = random.Random(seed)
    tl = Timeline(None, period_ns=MS)
    v = {"page_faults": 0, "kernel.major_faults": 0, "kernel.minor_faults": 0,
         "kernel.swap.bytes_out": 0, "kernel.swap.bytes_in": 0, "kernel.aoe.retransmits": 0,
         "net.ports.guest.up.dropped_loss": 0, "net.ports.guest.down.dropped_loss": 0,
         "net.ports.guest.up.dropped_limit": 0}
    for i in range(n):
        minor = rng.choice((0, 0, 40))
        v["kernel.minor_faults"] += minor
        v["page_faults"] += minor
        if swapping:
            major = rng.choice((0, 10))
            v["kernel.major_faults"] += major
            v["page_faults"] += major
            v["kernel.swap.bytes_out"] += rng.choice((0, 4096 * 30))
            v["kernel.swap.bytes_in"] += major * 4096
            v["kernel.aoe.retransmits"] += rng.random() < 0.1
            v["net.ports.guest.up.dropped_loss"] += rng.random() < 0.05
        tl.samples.append(Sample(i * MS, 0.0, dict(v)))
    return tl


def lines_of(ax):
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def check_reader_rules(fig) -> None:
    """What every plot must satisfy."""
    axes = fig.get_axes()
    assert axes
    palette = set(PALETTE.values())
    for ax in axes:
        data = [ln for ln in lines_of(ax) if len(ln.get_xdata()) > 2]
        assert data and any(any(ln.get_ydata()) for ln in lines_of(ax)), "an empty panel"
        colours = [ln.get_color() for ln in data]
        assert set(colours) <= palette and len(set(colours)) == len(colours)
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels and not [lb for lb in labels if STAT_KEY.search(lb)], labels
        assert ax.get_title(loc="left")
        assert ax.get_ylabel() or not ax.get_subplotspec().is_first_col()   # one per row
        assert ax is axes[0] or ax.get_shared_x_axes().joined(ax, axes[0])
        assert ax.get_xlim() == axes[0].get_xlim()


def test_window_rate_smooths_a_noisy_counter():
    ts = [i * MS for i in range(10)]
    vs = [0, 0, 20, 20, 40, 40, 60, 60, 80, 80]       # 20 every other ms
    t, r = window_rate(ts, vs, 0)
    assert r[:4] == [0, 20_000, 0, 20_000]            # per sample: noise
    t, r = window_rate(ts, vs, 2 * MS)
    assert t[0] == 2.0 and set(r) == {10_000}         # over 2 ms: the rate


def test_window_level_gives_mean_and_range():
    ts = [i * MS for i in range(5)]
    mean, lo, hi = window_level(ts, [4, 0, 8, 0, 4], 2 * MS)
    assert mean == [4, 2, 4, 4, 2] and lo == [4, 0, 0, 0, 0] and hi == [4, 4, 8, 8, 4]


def test_pick_window_is_a_round_fraction_of_the_run():
    assert pick_window(955 * MS, MS) == 10 * MS
    assert pick_window(8 * MS, MS) == MS                # never under a sample period
    assert pick_window(2042 * MS, MS) == 20 * MS
    assert pick_window(4000 * MS, MS) == 50 * MS        # 40 ms: nearer 50 than 20


def test_a_short_run_plots_only_the_panels_it_has():
    fig = timeline_figure(synthetic_timeline(12, swapping=False))
    check_reader_rules(fig)
    assert [ax.get_title(loc="left") for ax in fig.get_axes()] == ["Page faults"]


def test_a_swapping_run_plots_faults_swap_and_losses_with_units():
    fig = timeline_figure(synthetic_timeline(400, swapping=True), "emu demo")
    check_reader_rules(fig)
    axes = fig.get_axes()
    assert [ax.get_title(loc="left") for ax in axes] == ["Page faults", "Swap traffic",
                                               "Retransmits and lost frames"]
    assert "per virtual second, 5 ms window" in axes[0].get_ylabel()
    assert axes[1].get_ylabel().startswith("MB per virtual second")
    legend = [t.get_text() for t in axes[2].get_legend().get_texts()]
    assert "lost on the link, guest to switch" in legend
    assert not any("queue full" in lb for lb in legend)      # stayed 0: no line


def story_samples(ms: int, stall: int | None, seed: int) -> list[tuple[int, dict[str, int]]]:
    """Samples of a reserve-compare run lasting `ms`, that stops making
    progress at `stall` ms (then drops every frame) or borrows reserve."""
    rng = random.Random(seed)
    out, no_buffer, junk = [], 0, 0
    for i in range(ms + 1):
        stuck = stall is not None and i >= stall
        no_buffer += rng.randrange(15, 25) if stuck else 0
        junk += rng.randrange(0, 3) if stall is None and i < ms // 3 else 0
        out.append((i * MS, {
            "kernel.memory.pages_free": 118 if stuck else rng.randrange(118, 180),
            "kernel.memory.watermarks.min": 118, "kernel.memory.watermarks.low": 147,
            "kernel.memory.watermarks.high": 177,
            "kernel.reserve.aoe_rx.usage": 0 if stall is not None else rng.randrange(0, 20),
            "kernel.reserve.aoe_rx.peak": 0 if stall is not None else 25,
            "kernel.reserve.aoe_rx.limit": 37,
            "kernel.reserve.swap_io.usage": 0, "kernel.reserve.swap_io.peak": 0,
            "kernel.reserve.aoe_tx.usage": 0, "kernel.reserve.aoe_tx.peak": 0,
            "kernel.net.drops.no_buffer": no_buffer, "kernel.pfmemalloc_drop": junk}))
    return out


def test_reserve_compare_shares_one_x_axis_and_names_things():
    runs = [("reserve=off", story_samples(600, 40, 1)),
            ("reserves on", story_samples(300, None, 2))]
    fig = reserve_compare_figure(runs, stalls={"reserve=off": 40 * MS})
    check_reader_rules(fig)
    axes = fig.get_axes()
    assert len(axes) == 6 and axes[0].get_xlim() == (0, 600)
    off_legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert "no progress from here" in off_legend and "min watermark (118 pages)" in off_legend
    assert [ax.get_title(loc="left").split("\n")[-1] for ax in axes] == \
        ["Free memory"] * 2 + ["Reserve in use"] * 2 + ["Frames dropped by the guest"] * 2
    assert axes[2].get_ylabel() == "pages (5 ms mean and range)"
    for ax in axes[2:4]:
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "AoE receive buffers (aoe_rx)" in legend
        assert "0 throughout: swap I/O (swap_io), AoE send (aoe_tx)" in legend   # no lines
        assert len([ln for ln in lines_of(ax) if len(ln.get_xdata()) > 2]) == 1
    assert axes[4].get_ylabel() == "frames per virtual second, 5 ms window"
    assert all(ax.get_yscale() == "linear" for ax in axes[4:])


def test_plots_refuse_runs_too_short_to_sample(tmp_path):
    with pytest.raises(ValueError, match="too short"):
        plot_reserve_compare([("x", story_samples(0, None, 1))], str(tmp_path / "x.png"))
