"""NIC speed: one frame out (doorbell per frame) and one in, per round."""

from __future__ import annotations

import pytest

from emu.devices import nic as N
from emu.machine.board import RAM_BASE
from tests.test_nic_support import DESC, OUR_MAC, Driver, GuardedMem, eth, wire


@pytest.mark.parametrize("payload", [50, 1500, 4120, 9000])
def test_bench_tx_rx(benchmark, payload: int) -> None:  # noqa: ANN001 - fixture
    """One frame out (doorbell per frame) and one in, per round."""
    from emu.core.memory import PhysMem
    from tests.test_nic_support import make_nic as mk

    class Plain(PhysMem):
        poke = GuardedMem.poke
        peek = GuardedMem.peek

    nic, mem, _, _ = mk(Plain(RAM_BASE, 16 << 20))
    nic.transmit = lambda w: None
    d = Driver(nic, mem, tx_size=256, rx_size=256)
    d.setup()
    for i in range(255):
        mem.poke(d.tx_buf(i), eth(payload=bytes(payload)))
        mem.poke(d.tx_desc(i), DESC.pack(d.tx_buf(i), 14 + payload, 0, 0))
    w = wire(eth(dst=OUR_MAC, payload=bytes(payload)))
    state = {"t": 0}

    def one() -> None:
        t = state["t"] = (state["t"] + 1) % 256
        if t == 0:                       # keep both rings turning without a driver
            state["t"] = 1
            nic.write(N.REG_CTRL, 4, N.CTRL_RESET)
            d2 = Driver(nic, mem, tx_size=256, rx_size=256)
            d2.setup()
            t = 1
        nic.write(N.REG_TX_TAIL, 4, t)
        nic.receive(w)

    benchmark.group = "nic tx+rx"
    benchmark(one)
    assert nic.stats()["errors"] == 0
