"""`info reserve` (docs/debugging.md, docs/reserves.md): the memory reserves
below min as a tree - layout, the AT LIMIT mark and the one-line answer for
a kernel without counters, from made-up kstats; then the real guest swapping
over AoE, where the three reserves' limits add up to the min watermark."""

from __future__ import annotations

import copy
import io
import re

import pytest

from emu.debug.commands import CommandError, Session, lookup
from emu.debug.control import Controller
from emu.guestview import kstats
from emu.guestview.reserveview import info_reserve
from emu.machine.config import MachineConfig
from emu.net.network import NetConfig

# The figures of the example in docs/debugging.md.
FAKE = {
    "memory": {"pages_total": 4096, "pages_free": 118, "free_low": 97,
               "pages_by_use": {"free": 118, "kmalloc": 40, "netbuf": 33},
               "watermarks": {"min": 118, "low": 147, "high": 177}},
    "reserve": {"swap_io": {"limit": 45, "usage": 0, "peak": 0},
                "aoe_tx": {"limit": 14, "usage": 0, "peak": 0},
                "aoe_rx": {"limit": 59, "usage": 0, "peak": 26}},
    "reserve_allocs": 1069, "reserve_denied": 0, "pfmemalloc_drop": 672,
    "reclaim": {"throttled": 0},
    "net": {"drops": {"no_buffer": 0, "runt": 0}},
}

EXPECTED = """\
memory: 118 free of 4096 pages (low point 97); watermarks min 118 low 147 high 177
reserve (pages below min)        usage   peak  limit
  total                              0     26    118
    swap_io                          0      0     45
    aoe_tx                           0      0     14
    aoe_rx                           0     26     59
reserve pages handed out 1,069; refused at a limit 0; pfmemalloc drops 672; reclaimers throttled 0
RX buffers: 33 pages (netbuf); frames dropped for want of a buffer 0"""


class _Machine:
    """Enough of a Machine for info_reserve with kstats.collect patched."""

    def __init__(self, append: str = "") -> None:
        self.config = MachineConfig(append=append)


@pytest.fixture
def fake(monkeypatch):
    """Return a function(dict) that makes kstats.collect return that dict."""
    def use(k: dict) -> None:
        monkeypatch.setattr(kstats, "collect", lambda machine: k)
    return use


def test_layout_of_the_tree(fake):
    fake(FAKE)
    assert info_reserve(_Machine()) == EXPECTED


def test_a_reserve_at_its_limit_is_marked(fake):
    k = copy.deepcopy(FAKE)
    k["reserve"]["aoe_rx"].update(usage=59, peak=59)
    k["reserve_denied"] = 1234
    fake(k)
    lines = info_reserve(_Machine()).splitlines()
    rows = {ln.split()[0]: ln for ln in lines[2:6]}
    assert re.fullmatch(r" {4}aoe_rx +59 +59 +59  AT LIMIT", rows["aoe_rx"]), rows
    assert "AT LIMIT" not in rows["swap_io"] + rows["aoe_tx"] + rows["total"]
    assert "refused at a limit 1,234" in lines[6]
    # usage past the limit (a charge the kernel let through) is marked too;
    # a zero limit is never "at" it
    k["reserve"]["aoe_tx"].update(usage=15, peak=15)
    k["reserve"]["swap_io"].update(limit=0)
    rows = {ln.split()[0]: ln for ln in info_reserve(_Machine()).splitlines()[2:6]}
    assert rows["aoe_tx"].endswith("AT LIMIT") and not rows["swap_io"].endswith("AT LIMIT")


def test_whole_tree_at_its_limit_marks_the_total(fake):
    k = copy.deepcopy(FAKE)
    for r in k["reserve"].values():
        r["usage"] = r["peak"] = r["limit"]
    fake(k)
    out = info_reserve(_Machine())
    assert re.search(r"^  total +118 +118 +118  AT LIMIT$", out, re.M), out
    assert out.count("AT LIMIT") == 4


def test_limits_that_do_not_add_up_to_min_are_said(fake):
    k = copy.deepcopy(FAKE)
    k["reserve"]["swap_io"]["limit"] = 40
    fake(k)
    assert "(limits do not add up to min 118)" in info_reserve(_Machine())


def test_reserve_off_is_said(fake):
    fake(FAKE)
    out = info_reserve(_Machine("init=memhog reserve=off"))
    assert out.splitlines()[1] == ("reserves are off (reserve=off): nobody may allocate "
                                   "below min")


@pytest.mark.parametrize("k, needle", [
    ({}, "no reserve tree: the kernel's counters (kstats) are not readable"),
    ({"memory": FAKE["memory"]}, "no reserve tree: this kernel keeps no reserve counters"),
])
def test_no_kstats_is_one_line(fake, k, needle):
    fake(k)
    out = info_reserve(_Machine())
    assert out.startswith(needle) and "\n" not in out


def test_the_command_table_knows_it(fake):
    fake(FAKE)
    assert lookup("i").name == "info"
    ctl = type("Ctl", (), {"machine": _Machine(), "boots": 1})()   # kstats is patched
    s = Session(ctl)
    for word in ("reserve", "reserves", "res"):
        assert s.execute(f"info {word}") == EXPECTED
        assert s.execute(f"info {word}", via_gdb=True) == EXPECTED   # gdb's monitor
    with pytest.raises(CommandError, match="reserve"):
        s.execute("info")
    assert "reserve" in s.execute("help info")


def test_info_reserve_on_the_swapping_guest(kernel):
    """The real guest at reset (no counters yet) and after memhog swapped
    over AoE on 4 MiB: the three reserves, limits adding up to min, the
    aoe_rx reserve used by the RX buffers."""
    cfg = MachineConfig(kernel=kernel, append="init=memhog pages=1500 passes=2 procs=2",
                        ram_size=4 << 20, seed=1, max_insns=2_000_000_000,
                        net=NetConfig(seed=1))
    s = Session(Controller(cfg, console=io.BytesIO()))
    assert s.execute("info reserve").startswith("no reserve tree: ")
    stop = s.ctl.cont()
    assert stop.kind == "exited", stop.message
    out = s.execute("info reserve")
    assert "Traceback" not in out
    m = re.match(r"memory: \d+ free of 1024 pages \(low point \d+\); "
                 r"watermarks min (\d+) low \d+ high \d+\n", out)
    assert m, out
    wmin = int(m.group(1))
    rows = dict(re.findall(r"^ {2,4}(\w+) +(\d+ +\d+ +\d+)", out, re.M))
    assert list(rows) == ["total", "swap_io", "aoe_tx", "aoe_rx"], out
    figures = {name: [int(v) for v in f.split()] for name, f in rows.items()}
    limits = [figures[n][2] for n in ("swap_io", "aoe_tx", "aoe_rx")]
    # (on 4 MiB the RX ring's reserve takes most of min: swap_io may get 0)
    assert sum(limits) == wmin == figures["total"][2] and limits[-1] > 0, out
    assert figures["aoe_rx"][1] > 0, out            # RX buffers came from the reserve
    assert re.search(r"^reserve pages handed out [1-9][\d,]*; refused at a limit \d+; "
                     r"pfmemalloc drops \d+; reclaimers throttled \d+$", out, re.M), out
    assert re.search(r"^RX buffers: \d+ pages \(netbuf\); frames dropped for want of a "
                     r"buffer \d+$", out, re.M), out
    assert s.execute("info reserve", via_gdb=True) == out    # gdb's monitor
