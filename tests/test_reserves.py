"""Memory reserves end to end (issue 6, docs/reserves.md).

- The scenario matrix: memory exhaustion (a working set twice RAM) with junk
  traffic and a lossy link, over several seeds. With `reserve=off` the swap
  path deadlocks - RX buffers cannot be replaced at the min watermark, so
  the acknowledgements never get in - and the detector stops the run with
  exit status 3 and a diagnosis that says so. With reserves on every run
  completes with every page bit-identical, the reserve was really used,
  and no reserve's peak reached its limit.
- `emu reserve-search` finds a smallest min_free_kb that completes and a
  largest that deadlocks, below the kernel's default (Linux's rule).
- The AoE pools under loss: retransmits reuse the request and its header
  (in-kernel test aoe_pool on a lossy link; the pcap shows a retransmit
  keeps its pool slot and takes a new generation).
- `meminfo` prints the reserve tree.
"""

from __future__ import annotations

import json
import re

import pytest
from scapy.utils import rdpcap

from emu.cli.main import main
from emu.core import twins
from emu.core.units import ConfigError
from emu.guestview import kstats
from emu.net.network import NetConfig
from emu.tools.experiments.reserves import Scenario, linux_min_free_kb, run_once, search
from tests.conftest import boot

PURE = twins.pure_forced()

# Twice RAM: three memhog workers of 4 MiB on 8 MiB, 20,000 junk frames/s,
# 1% loss. A short deadlock span keeps the deadlocked runs quick.
SMALL = Scenario(ram="8M", workload="memhog pages=1024 passes=1 procs=3",
                 target="mem:64M", deadlock="500ms")
HEAVY = Scenario(ram="8M", workload="memhog pages=1024 passes=1 procs=3",
                 net="loss 5% delay 50us 20us", noise="50000", target="mem:64M",
                 deadlock="500ms")
MATRIX = [("small", SMALL, s) for s in (1, 2, 3)] + [("heavy", HEAVY, s) for s in (1, 2)]
PURE_CELLS = {("small", 1)}


def _cell(name: str, seed: int) -> None:
    if PURE and (name, seed) not in PURE_CELLS:
        pytest.skip("EMU_PURE=1: the pure paths run one cell; the fast paths run them all")


@pytest.mark.parametrize(("name", "scenario", "seed"), MATRIX,
                         ids=[f"{n}-seed{s}" for n, _, s in MATRIX])
def test_reserve_off_deadlocks_and_is_diagnosed(name, scenario, seed):
    _cell(name, seed)
    o = run_once(scenario, seed, reserve_off=True)
    assert o.status == 3 and o.deadlocked, o.summary()
    d = o.diagnosis or ""
    assert "why: free memory is at the min watermark" in d
    assert "why: reserves are off (reserve=off)" in d
    assert "for want of an RX buffer" in d
    # the memhogs wait for write-back (or for the swap device's probe)
    assert re.search(r"\(memhog\): sleeping on (reclaim_chan|swapstate)", d), d
    assert o.reserve_allocs == 0 and o.free_low >= o.min_pages   # nobody went below min
    assert o.no_buffer_drops > 0


@pytest.mark.parametrize(("name", "scenario", "seed"), MATRIX,
                         ids=[f"{n}-seed{s}" for n, _, s in MATRIX])
def test_reserves_on_complete_intact_below_limits(name, scenario, seed):
    _cell(name, seed)
    o = run_once(scenario, seed)
    assert o.completed, o.summary() + "\n" + (o.diagnosis or o.console[-2000:])
    assert "mismatches=0" in o.console
    assert o.reserve_allocs > 0 and o.free_low < o.min_pages     # the reserve was needed
    assert o.pfmemalloc_drop > 0                                 # junk met reserve buffers
    for res, r in o.reserve.items():
        assert r["peak"] < r["limit"], f"{res}: peak {r['peak']} reached limit {r['limit']}"
        assert r["usage"] == 0, f"{res}: {r['usage']} pages still charged at the end"
    assert o.reserve_denied == 0


def test_same_seed_same_run():
    _cell("small", 2)
    a, b = run_once(SMALL, 7), run_once(SMALL, 7)
    assert a.console == b.console and a.reserve == b.reserve
    assert (a.free_low, a.reserve_allocs, a.pfmemalloc_drop) == \
        (b.free_low, b.reserve_allocs, b.pfmemalloc_drop)


def test_small_min_free_kb_deadlocks_on_the_rx_reserve_limit():
    """16 KiB of min (4 pages, aoe_rx 2): the RX reserve fills, every
    replacement is refused at its limit, and the diagnosis names it."""
    _cell("small", 2)
    o = run_once(SMALL, 1, min_kb=16)
    assert o.deadlocked, o.summary()
    assert "why: reserve aoe_rx is at its limit" in (o.diagnosis or "")
    assert o.reserve_denied > 0


@pytest.mark.skipif(PURE, reason="EMU_PURE=1: a search is a dozen runs; the fast paths do it")
def test_reserve_search_brackets_the_smallest_min(tmp_path, capsys):
    out = tmp_path / "search.json"
    rc = main(["reserve-search", "-m", "8M", "--workload", SMALL.workload, "--target",
               "mem:64M", "--deadlock", "500ms", "--seeds", "1,2", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    res = json.loads(out.read_text())
    small, bad = res["smallest_min_free_kb"], res["largest_failing_min_free_kb"]
    assert bad is not None and small is not None and bad < small <= res["default_min_free_kb"]
    assert small - bad == 4                                  # bracketed to one page
    probes = {p["min_free_kb"]: p for p in res["probes"]}
    assert probes[small]["completed"] and not probes[bad]["completed"]
    assert all(r["status"] == 0 for r in probes[small]["runs"])
    assert any(r["deadlocked"] for r in probes[bad]["runs"])
    assert res["linux_rule_kb"] == linux_min_free_kb(8 << 20) == 362
    assert f"smallest min_free_kb that completes: {small} KB" in text


def test_reserve_search_bad_flags_one_line(capsys):
    assert main(["reserve-search", "--seeds", "x"]) == 2
    assert main(["reserve-search", "--lo", "8"]) == 2
    assert main(["reserve-search", "--net", "loss 200%"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("emu: ") for e in err)
    assert "Traceback" not in "".join(err)


def test_search_checks_its_range():
    with pytest.raises(ConfigError):
        search(SMALL, [1], lo_kb=4)
    with pytest.raises(ConfigError):
        search(SMALL, [])


def test_linux_rule():
    assert linux_min_free_kb(16 << 20) == 512
    assert linux_min_free_kb(1 << 20) == 128           # clamped up
    assert linux_min_free_kb(1 << 50) == 65536         # clamped down


@pytest.mark.parametrize("mtu", [9000, 1500])
def test_aoe_pool_under_loss(kernel, tmp_path, mtu):
    """The in-kernel pool test on a link losing 20%: I/O with retransmits
    allocates nothing; on the wire a retransmit keeps its pool slot (tag
    bits 31:24) and takes a new generation (23:16)."""
    pcap = tmp_path / "pool.pcap"
    m = boot(kernel, append="test=aoe_pool", mtu=mtu, max_insns=400_000_000,
             net=NetConfig(net="loss 20%", pcap=str(pcap), seed=3, mtu=mtu))
    assert m.exit_status == 0, m.console.decode(errors="replace")[-2000:]
    assert b"PASS aoe_pool" in m.console
    k = kstats.collect(m)
    assert k["aoe"]["retransmits"] > 0
    # Requests on the wire: (slot, generation) per (LBA, write) - a
    # retransmit repeats the LBA with the same slot and a newer generation.
    seen: dict[tuple[bytes, int], list[tuple[int, int]]] = {}
    for pkt in rdpcap(str(pcap)):
        raw = bytes(pkt)
        if len(raw) < 36 or raw[12:14] != b"\x88\xa2" or raw[14] & 0x08 or raw[19] != 0:
            continue
        key = (raw[28:34], raw[24] & 1)
        seen.setdefault(key, []).append((raw[20], raw[21]))
    retx = [v for v in seen.values() if len(v) > 1]
    assert retx, "no retransmitted request on the wire"
    for sends in retx:          # each LBA is written once and read once
        assert len({slot for slot, _ in sends}) == 1, sends
        assert len({gen for _, gen in sends}) == len(sends), sends


def test_meminfo_prints_the_reserve_tree(kernel):
    m = boot(kernel, append="init=meminfo")
    text = m.console.decode()
    assert m.exit_status == 0, text
    assert "Reserve (pages below min)   usage   peak  limit" in text
    for name in ("swap_io", "aoe_tx", "aoe_rx"):
        assert f"    {name}" in text
    off = boot(kernel, append="reserve=off init=meminfo").console.decode()
    assert "Reserves:  off (reserve=off)" in off


def test_reserve_compare_tells_the_story(tmp_path, capsys):
    _cell("small", 2)
    png = tmp_path / "story.png"
    rc = main(["reserve-compare", "-m", "8M", "--workload", SMALL.workload, "--target",
               "mem:64M", "--deadlock", "500ms", "--plot", str(png)])
    cap = capsys.readouterr()
    assert rc == 0, cap.out + cap.err
    assert cap.out.startswith("reserve=off  seed 1: DEADLOCK")
    assert "reserves on  seed 1: completed" in cap.out
    assert "why: reserves are off" in cap.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["reserve-compare", "--plot", str(tmp_path / "x.jpg")]) == 2
