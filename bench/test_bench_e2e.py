"""End-to-end frames/s: guest NIC (driven through its registers and DMA
rings, as the guest driver will) -> segment -> links -> embedded AoE target
-> back into the NIC's RX ring, with the fast codec. One 4 KiB write and one
4 KiB read per round trip at MTU 9000. The I/O path's twins (clock, links,
switch, AoE target, eNIC, PLIC: MachineConfig.io) run pure and compiled in the same run; the
summary row "I/O path round trip" shows the ratio.
"""

from __future__ import annotations

import time

import pytest

from bench import summary
from emu.core import clock as clock_ref
from emu.core import twins
from emu.devices import nic as N
from emu.devices.plic import Plic
from emu.net import codec
from emu.net.network import NetConfig, Network
from tests.test_nic_support import OUR_MAC, Driver, GuardedMem

TARGET_MAC = b"\xff" * 6   # broadcast: the switch floods it to the target


def _rig(net: str, impl: str):
    io = "python" if impl == "pure" else "fast"
    clock = twins.pick_class("clock", io, clock_ref.Clock)()
    mem = GuardedMem(size=4 << 20)
    plic = twins.pick_class("plic", io, Plic)(lambda level: None)
    nic = twins.pick_class("nic", io, N.Nic)(mem, plic.line(1), clock, mac=OUR_MAC)
    network = Network(clock, NetConfig(net=net, seed=1, mtu=9000), io)
    nic.transmit = network.attach_guest(nic, OUR_MAC).send
    drv = Driver(nic, mem)
    drv.setup()
    return clock, nic, drv, network


def _round_trips(clock, drv, n: int) -> int:
    page = bytes(range(256)) * 16
    frames = 0
    for i in range(n):
        lba = (i * 8) % 4096
        drv.send(codec.pad(codec.build_ata(TARGET_MAC, OUR_MAC, 0, 0, 2 * i, aflags=0x41,
                                           scnt=8, cmdstat=0x34, lba=lba, data=page)))
        drv.send(codec.pad(codec.build_ata(TARGET_MAC, OUR_MAC, 0, 0, 2 * i + 1, aflags=0x40,
                                           scnt=8, cmdstat=0x24, lba=lba)))
        got = 0
        while got < 2:
            nxt = clock.next_time()
            assert nxt is not None, "no reply in flight"
            clock.advance(nxt)
            clock.run_due()
            for f in drv.reap_rx():
                if len(f) >= 14 and f[12:14] == b"\x88\xa2":
                    got += 1
                    frames += 2
    return frames


@pytest.mark.parametrize("impl", ["pure", "compiled"])
@pytest.mark.parametrize("net", ["", "delay 20us"])
@pytest.mark.benchmark(group="e2e-nic-target")
def test_end_to_end_frames_per_second(benchmark, net, impl):
    if impl == "compiled" and twins.pure_forced():
        pytest.skip("EMU_PURE=1: the compiled twins are not loaded")
    clock, nic, drv, network = _rig(net, impl)
    n = 500
    t0 = time.perf_counter()
    frames = benchmark.pedantic(_round_trips, args=(clock, drv, n), rounds=3, iterations=1)
    wall = time.perf_counter() - t0
    assert frames == 4 * n
    if not net:
        summary.record("I/O path round trip (NIC, switch, AoE target)", impl,
                       wall / (3 * n) * 1e6)
    benchmark.extra_info["frames_per_round"] = frames
    st = nic.stats()
    assert st["rx_crc_errors"] == 0 and st["errors"] == 0
