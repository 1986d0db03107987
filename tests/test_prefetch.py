"""Swap prefetch and the two read-ahead flavours (docs/prefetch.md).

- the morning after: with prefetch=on, kprefetchd reads the working set
  back during the idle night, the morning's touches find it in the swap
  cache (no major fault) and take a fraction of the time; every page is
  verified;
- it waits for the machine to be idle (a night shorter than the delay:
  nothing prefetched), stops at 3 x the high watermark, and yields to
  other work (a morning that comes while it reads);
- the cost side: a working set never touched again is prefetched for
  nothing, and the counters say so;
- VMA read-ahead reads the faulting process's next pages: on interleaved
  swap-out its pages are nearly all used, more than cluster read-ahead's;
- `emu experiment prefetch --quick` prints, writes CSV and plot; bad
  values get one line.
"""

from __future__ import annotations

import csv
import subprocess

import pytest

from emu.core import twins
from emu.guestview import kstats
from emu.machine.config import MachineConfig
from emu.machine.machine import Machine
from emu.net.network import NetConfig
from emu.tools.experiments import prefetch
from tests.conftest import REPO

EMU = str(REPO / ".venv" / "bin" / "emu")
Q = prefetch.QUICK
# EMU_PURE=1 (make test-pure): ~15x slower; the pure twins run the morning
# after and the cost side, the compiled run (make test) everything.
COMPILED_ONLY = pytest.mark.skipif(twins.pure_forced(), reason="EMU_PURE=1: the pure twins run "
                                   "the morning after and the cost side; make test runs this")


def case(on: bool, night: int = 3000, readahead: str = "cluster", touch: bool = True,
         **kw) -> prefetch.Case:
    args = {"ws": Q["ws"], "batch": Q["batch"], "ram_mib": Q["ram"], **kw}
    return prefetch.Case(on, readahead, night, touch, **args)


def test_the_morning_after_is_fast_with_prefetch(kernel):
    off = prefetch.measure(kernel, case(False))
    on = prefetch.measure(kernel, case(True))
    assert off.rss_at_night < 16 and on.rss_at_night < 16       # the batch pushed it out
    assert off.major > 10 and off.prefetched == 0
    assert on.prefetched >= Q["ws"] - 16 and on.prefetch_used == on.prefetched
    assert on.major == 0 and on.minor >= Q["ws"] - 16            # all found in the swap cache
    assert on.touch_us * 3 < off.touch_us
    assert on.p99_ns * 10 < off.p99_ns


@COMPILED_ONLY
def test_nothing_is_prefetched_before_the_machine_was_idle_long_enough(kernel):
    r = prefetch.measure(kernel, case(True, night=500))         # the delay is 1,000 ms
    assert r.prefetched == 0 and r.major > 10


@COMPILED_ONLY
def test_prefetch_stops_at_three_times_the_high_watermark(kernel):
    """A working set bigger than what may be prefetched: kprefetchd stops
    when free memory falls below 3 x high, whatever is left."""
    r = prefetch.measure(kernel, case(True, touch=False, ws=1400, batch=1600))
    m = Machine(MachineConfig(kernel=kernel, append="init=hello", ram_size=Q["ram"] << 20))
    m.run()
    high = kstats.collect(m)["memory"]["watermarks"]["high"]
    assert 0 < r.prefetched < 1400
    assert r.free_at_night - r.prefetched >= 3 * high - 16      # one read may overshoot


@COMPILED_ONLY
def test_prefetch_yields_when_the_morning_comes(kernel):
    """On a seeking disk prefetching takes seconds: the morning arrives 50 ms
    after kprefetchd started, and it stops at once."""
    m = Machine(MachineConfig(kernel=kernel, ram_size=Q["ram"] << 20, max_insns=20_000_000_000,
                              append=f"prefetch=on init=morning ws={Q['ws']} "
                              f"batch={Q['batch']} night=1050",
                              net=NetConfig(targets=("mem:128M,disk=hdd",))))
    assert m.run() == 0, m.stop_reason
    k = kstats.collect(m)["prefetch"]
    assert k["runs"] >= 1 and k["yields"] >= 1
    assert 0 < k["pages"] < Q["ws"] // 2
    assert b"mismatches 0" in m.console


def test_the_cost_of_a_night_nobody_needed(kernel):
    r = prefetch.measure(kernel, case(True, touch=False))
    assert r.prefetched >= Q["ws"] - 16 and r.prefetch_reads >= r.prefetched // 16
    assert r.prefetch_used <= 2 and r.wasted >= Q["ws"] - 18


@COMPILED_ONLY
def test_vma_readahead_reads_what_the_process_needs(kernel):
    cluster = prefetch.measure_ra(kernel, "cluster")
    vma = prefetch.measure_ra(kernel, "vma")
    assert vma.hit_rate > 99.0 > cluster.hit_rate
    assert vma.ra_dropped * 10 < cluster.ra_dropped
    assert vma.swap_ins < cluster.swap_ins


@COMPILED_ONLY
def test_command_quick_prints_writes_csv_and_plot(kernel, tmp_path):
    out_csv, out_png = tmp_path / "p.csv", tmp_path / "p.png"
    r = subprocess.run([EMU, "experiment", "prefetch", "-kernel", kernel, "--quick", "--csv",
                        str(out_csv), "--plot", str(out_png), "-j", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "the morning takes" in r.stdout and "for nothing" in r.stdout
    assert "prefetch: 5/5 runs" in r.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 5 and {row["readahead"] for row in rows} == {"cluster", "vma"}
    assert out_png.stat().st_size > 10_000


@pytest.mark.parametrize("flags, word", [
    (["--nights", "-5"], "--nights"), (["--nights", "x"], "--nights"),
    (["--ws", "4"], "--ws"), (["--ram", "2"], "RAM"),
])
def test_bad_values_get_one_line(flags, word):
    r = subprocess.run([EMU, "experiment", "prefetch", *flags], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert word in r.stderr


@pytest.mark.parametrize("param", ["readahead=sideways", "prefetch=maybe",
                                   "prefetch_delay_ms=-3"])
def test_bad_boot_parameters_are_reported(kernel, param):
    m = Machine(MachineConfig(kernel=kernel, append=f"{param} init=hello", ram_size=8 << 20))
    assert m.run() == 0
    assert b"param: " in m.console and param.split("=")[0].encode() in m.console
