"""The embedded target's disk models (emu/net/disk.py): the hdd's seek and
rotation figures against its datasheet numbers, order mattering on hdd and
not on flash, the models behind `--target ...,disk=MODEL`, and bad specs."""

from __future__ import annotations

import random

import pytest

from emu.core.clock import Clock
from emu.core.units import ConfigError
from emu.net import frames as F
from emu.net.aoe_target import AoETarget
from emu.net.disk import FLASH, HDD, RAM, Disk, model
from emu.net.fcs import append_fcs
from emu.net.network import NetConfig, Network, parse_target
from emu.net.segment import Segment
from emu.net.store import MemoryStore

ME = bytes.fromhex("525400123456")
CAPACITY = 128 << 11            # 128 MiB in sectors


def test_hdd_figures_are_a_7200_rpm_disk():
    rng = random.Random(1)
    seeks = [HDD.seek_ns(abs(rng.randrange(CAPACITY) - rng.randrange(CAPACITY)), CAPACITY)
             for _ in range(20_000)]
    assert 7.6e6 < sum(seeks) / len(seeks) < 8.3e6          # ~8 ms average seek
    assert HDD.seek_ns(0, CAPACITY) == 0 and HDD.seek_ns(1, CAPACITY) >= 1_000_000
    assert HDD.seek_ns(CAPACITY, CAPACITY) == 14_000_000
    assert all(HDD.seek_ns(d, CAPACITY) <= HDD.seek_ns(d + 1000, CAPACITY)
               for d in range(0, CAPACITY, 9973))
    assert 8_300_000 < HDD.rotation_ns < 8_350_000           # 7,200 rpm
    waits = [HDD.rotation_wait_ns(rng.randrange(10**12), rng.randrange(CAPACITY))
             for _ in range(20_000)]
    assert 4.0e6 < sum(waits) / len(waits) < 4.3e6           # half a turn on average
    assert 95e6 < 512e9 / HDD.sector_ns < 100e6              # ~98 MB/s media rate


def _serve_all(m, lbas: list[int], sectors: int = 8, seeks: list | None = None) -> int:
    disk, now = Disk(m, CAPACITY), 0
    for lba in lbas:
        now += disk.serve(now, lba, sectors)
    if seeks is not None:
        seeks.append(disk.seek_ns)
    return now


def test_order_matters_on_hdd_not_on_flash():
    """512 scattered pages of a 128 MiB disk: in slot order the arm moves
    little (about 1.5 ms a seek against 8), while the rotational wait -
    half a turn either way - stays: about half the time in all."""
    rng = random.Random(2)
    slots = rng.sample(range(0, CAPACITY - 8, 8), 512)
    for m in (HDD, FLASH):
        seeks: list[int] = []
        in_order = _serve_all(m, sorted(slots), seeks=seeks)
        scattered = _serve_all(m, slots, seeks=seeks)
        if m is HDD:
            assert seeks[0] * 4 < seeks[1], seeks
            assert scattered > 1.8 * in_order, (scattered, in_order)
        else:
            assert scattered == in_order == 512 * (80_000 + 8 * 1024)
    stream = _serve_all(HDD, list(range(0, 8 * 1000, 8)))       # one sequential stream
    assert stream < 1000 * 8 * HDD.sector_ns + 14_000_000 + HDD.rotation_ns
    assert _serve_all(RAM, slots) == 0


def _target_run(disk_name: str, lbas: list[int]) -> tuple[list[int], dict]:
    """Reads at `lbas` sent at once to a target with that disk: reply times."""
    clock = Clock()
    seg = Segment(clock)
    store = MemoryStore(CAPACITY)
    t = AoETarget(store, shelf=0, slot=0, clock=clock, bufcnt=64,
                  disk=Disk(model(disk_name), store.nsectors))  # "ram": a disk of no cost
    t.attach(seg, "e0.0")
    got: list[int] = []

    class Sink:
        def receive(self, wire: bytes) -> None:
            got.append(clock.now)

    port = seg.attach(Sink(), "guest")
    for i, lba in enumerate(lbas):
        port.send(append_fcs(F.pad(F.build_ata(t.mac, ME, 0, 0, i, scnt=8,
                                               cmdstat=F.ATA_READ, lba=lba))))
    while (nt := clock.next_time()) is not None:
        clock.advance(nt)
        clock.run_due()
    return got, t.stats_dict()


def test_the_target_serves_through_its_disk():
    lbas = [8 * k * 7919 % (CAPACITY - 8) for k in range(40)]
    hdd, stats = _target_run("hdd", lbas)
    flash, _ = _target_run("flash", lbas)
    ram, ram_stats = _target_run("ram", lbas)
    assert len(hdd) == len(flash) == len(ram) == 40
    assert hdd[-1] > 40 * 4_000_000 and flash[-1] == 40 * (80_000 + 8 * 1024)
    assert ram[-1] == 0 and ram_stats["disk"]["seeks"] == 0
    assert stats["disk"]["model"] == "hdd" and stats["disk"]["seeks"] >= 39


def test_target_specs_name_a_disk():
    assert parse_target("mem:128M,disk=hdd").disk == "hdd"
    assert parse_target("mem:128M@1.2,disk=flash").slot == 2
    assert parse_target("mem:64M").disk == "ram"
    assert parse_target("iface:eth0,frames=all").all_frames
    assert not parse_target("iface:eth0").all_frames
    assert not parse_target("iface:eth0,frames=aoe").all_frames
    for bad in ("mem:128M,disk=tape", "mem:128M,rpm=5400", "iface:eth0,disk=hdd",
                "iface:eth0,frames=ip", "mem:64M,frames=all", "iface:eth0@1.2"):
        with pytest.raises(ConfigError, match="bad --target"):
            parse_target(bad)
    net = Network(Clock(), NetConfig(targets=("mem:16M,disk=hdd", "mem:16M")))
    assert [t.disk is not None for t in net.targets] == [True, False]
    net.close()


def test_swap_over_a_seeking_disk_keeps_every_page(kernel):
    """Our kernel swaps to a target with each model: every page comes back
    (memhog's pattern check), and the hdd costs virtual time the RAM disk
    does not."""
    from emu.guestview import kstats
    from emu.machine.config import MachineConfig
    from emu.machine.machine import Machine
    took = {}
    for disk in ("ram", "hdd"):
        m = Machine(MachineConfig(kernel=kernel, append="init=memhog pages=512 passes=2 procs=2",
                                  ram_size=4 << 20, seed=1, max_insns=4_000_000_000,
                                  net=NetConfig(targets=(f"mem:64M,disk={disk}",), seed=1)))
        assert m.run() == 0, m.console.decode(errors="replace")[-1500:]
        assert b"mismatches=0" in m.console
        took[disk] = m.now()
        k = kstats.collect(m)
        assert k["swap"]["swap_ins"] > 0
    assert took["hdd"] > took["ram"] + 50_000_000, took      # at least 50 ms more
