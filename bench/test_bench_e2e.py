"""End-to-end frames/s: guest NIC (driven through its registers and DMA
rings, as the guest driver will) -> segment -> links -> embedded AoE target
-> back into the NIC's RX ring, with the fast codec. One 4 KiB write and one
4 KiB read per round trip at MTU 9000.
"""

from __future__ import annotations

import pytest

from emu.core.clock import Clock
from emu.devices import nic as N
from emu.devices.plic import Plic
from emu.net import codec
from emu.net.network import NetConfig, Network
from tests.test_nic_support import OUR_MAC, Driver, GuardedMem

TARGET_MAC = b"\xff" * 6   # broadcast: the switch floods it to the target


def _rig(net: str):
    clock = Clock()
    mem = GuardedMem(size=4 << 20)
    plic = Plic(lambda level: None)
    nic = N.Nic(mem, plic.line(1), clock, mac=OUR_MAC)
    network = Network(clock, NetConfig(net=net, seed=1, mtu=9000))
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


@pytest.mark.parametrize("net", ["", "delay 20us"])
@pytest.mark.benchmark(group="e2e-nic-target")
def test_end_to_end_frames_per_second(benchmark, net):
    clock, nic, drv, network = _rig(net)
    n = 500
    frames = benchmark.pedantic(_round_trips, args=(clock, drv, n), rounds=3, iterations=1)
    assert frames == 4 * n
    benchmark.extra_info["frames_per_round"] = frames
    st = nic.stats()
    assert st["rx_crc_errors"] == 0 and st["errors"] == 0
