"""virtio-blk speed: one request per round, notification to used entry
(the device's side: chain walk, image I/O, used ring, interrupt decision)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emu.devices.virtio import blk as B
from emu.machine.board import RAM_BASE
from tests.test_nic_support import GuardedMem
from tests.test_virtio_support import BlkDriver, make_image, make_slot


@pytest.mark.parametrize("kind,nbytes", [("read", 1024), ("read", 4096), ("write", 4096)])
def test_bench_blk_request(benchmark, tmp_path: Path, kind: str,  # noqa: ANN001 - fixture
                           nbytes: int) -> None:
    """One request (3 descriptors) made available, notified and served."""
    from emu.core.memory import PhysMem

    class Plain(PhysMem):
        poke = GuardedMem.poke
        peek = GuardedMem.peek

    image = make_image(tmp_path / "disk.img", sectors=2048)
    t, mem, _, clock = make_slot(image, mem=Plain(RAM_BASE, 1 << 20))
    d = BlkDriver(t, mem, clock, qsize=64)
    d.init()
    data = bytes(nbytes)
    writing = kind == "write"
    heads = [d.post(B.T_OUT if writing else B.T_IN, 8 * i, data=data if writing else b"",
                    nbytes=0 if writing else nbytes, kick=False) for i in range(16)]
    d.avail_idx = 0
    state = {"i": 0}

    def one() -> None:
        i = state["i"] = (state["i"] + 1) % 16
        d.make_available(heads[i])            # the same chains, over and over
        clock.advance(clock.next_time())
        clock.run_due()

    benchmark.group = "virtio-blk request"
    benchmark(one)
    assert t.stats()["needs_reset"] == 0
    assert mem.read(d.STATUS + heads[0], 1) == bytes([B.S_OK])
