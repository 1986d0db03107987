"""Debian's Linux swaps over emu's emulated link with its own aoe driver
(docs/linux.md, "Swap over AoE"): virtio-net on emu's segment (`-netdev
segment` + `-device virtio-net-device`), `/dev/etherd/e0.0` from the
embedded target, mkswap, swapon, then memhog larger than the free memory -
every page verified on a clean link, with 5 % loss, and with duplication,
reordering and corruption; and against Debian's vblade through emu's
bridge (a real peer: root and vblade, skipped outside CI without them).

And the stall emu found: on a link with no latency the target's reply can
arrive before virtio_net has freed the request's transmit clone, the aoe
driver cannot get a frame (newtframe), sets DEVFL_KICKME with nothing
outstanding, and its timer only re-runs the block queue - not the requests
aoe already holds: swap stops for good while memory is free and the target
has answered everything. The test pins that evidence (vmwatch, locked in
memory, prints the aoe driver's debugfs state: kicked > 0, nout 0).

The bundle comes from Debian's archive: .ci/run builds it before make test;
outside CI the tests skip when it is missing, saying so.
"""

from __future__ import annotations

import re
import time

import pytest

from emu.core import twins
from emu.machine.config import MachineConfig, NicSpec
from emu.machine.machine import Machine
from emu.net.network import NetConfig
from tests.test_linux import bundle

LINK = "delay 50us"          # a switch and a target that answer in 50 us, each way


def swap_run(netem: str | None, append: str, max_insns: int, mtu: int = 9000) -> Machine:
    """Linux with a virtio-net NIC on the segment (behind `netem`) and the
    default embedded target, running aoeswap with `append`'s arguments."""
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: billions of instructions take many minutes on the pure "
                    "twins; the compiled run (make test) swaps Linux over AoE")
    image, initrd = bundle()
    cfg = MachineConfig(kernel=image, initrd=initrd, ram_size=128 << 20, seed=7,
                        append=f"console=ttyS0 panic=-1 emu.run=aoeswap,{append}",
                        nics=(NicSpec("n0", mtu=mtu, netem=netem),),
                        net=NetConfig(seed=7), max_insns=max_insns)
    m = Machine(cfg)
    m.run()
    return m


def nic_counters(m: Machine) -> dict[str, int]:
    (vnet,) = [t.device for t in m.virtio if t.device is not None]
    return vnet.stats()


@pytest.mark.parametrize("netem", [
    LINK,
    f"{LINK} loss 5%",
    f"{LINK} 10us duplicate 2% reorder 10% corrupt 0.5%",
], ids=["clean", "loss5", "dup-reorder-corrupt"])
def test_linux_swaps_over_aoe_every_page_verified(netem: str) -> None:
    m = swap_run(netem, "pages=10240,passes=1,minfree=4096", 30_000_000_000)
    out = m.console.decode(errors="replace")
    assert m.exit_status == 0, f"{m.stop_reason}\n{out[-3000:]}"
    assert "aoe: e0.0: setting 8704 byte data frames" in out          # host_mtu=9000
    assert "memhog: pages=10240 passes=1 mismatches=0" in out, out[-3000:]
    assert "init: exit 0" in out
    swap = re.search(r"aoeswap: pswpin (\d+) pswpout (\d+)", out)
    assert swap and int(swap.group(1)) > 1000 and int(swap.group(2)) > 1000, out[-2000:]
    target = m.network.stats()["targets"]["e0.0"]
    assert target["writes"] > 1000 and target["reads"] > 1000
    port = m.network.stats()["segment"]["ports"]["n0"]
    links = (port["up"], port["down"])
    if "loss" in netem:
        assert sum(link["dropped_loss"] for link in links) > 50
    if "corrupt" in netem:
        assert sum(link["corrupted"] for link in links) > 0
        assert sum(link["duplicated"] for link in links) > 0
        assert nic_counters(m)["rx_crc_errors"] + target["crc_errors"] + \
            port["crc_errors"] > 0


def test_an_instant_link_stalls_linuxs_aoe_driver_with_memory_free() -> None:
    m = swap_run(None, "pages=12288,passes=2,minfree=4096,watch=1", 7_000_000_000, mtu=1500)
    out = m.console.decode(errors="replace")
    assert m.exit_status == 124, out[-3000:]                        # --max-insns: no end
    assert "memhog: pages=" not in out
    assert "vmwatch: no swap-out for 3 s" in out, out[-3000:]
    kicked = re.search(r"^kicked: (\d+)", out, re.M)
    window = re.search(r"^02ae00000000:(\d+):(\d+):(\d+)", out, re.M)   # nout:maxout:nframes
    assert kicked and int(kicked.group(1)) > 0, out[-3000:]
    assert window and window.group(1) == "0"                        # nothing outstanding
    free = [int(k) for k in re.findall(r"vmwatch: \d+s free (\d+) kB", out)]
    assert free[-1] > 4096                                          # above min: not OOM
    target = m.network.stats()["targets"]["e0.0"]
    assert target["replies"] >= target["requests"]                  # everything answered


@pytest.mark.peer
def test_linux_swaps_to_a_real_vblade_through_the_bridge(tmp_path) -> None:
    """Linux's aoe driver on emu's virtio-net, emu's segment bridged to a
    veth whose other end Debian's vblade serves: a real peer, so the clock
    is wall-coupled; every page verified."""
    from tests.test_net_vblade import require, vblade_on_veth
    require("ip", "vblade")
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: billions of instructions take many minutes on the pure "
                    "twins; the compiled run (make test) swaps Linux to vblade")
    image, initrd = bundle()
    with vblade_on_veth(tmp_path / "swap.img", 128 << 20) as host_side:
        cfg = MachineConfig(kernel=image, initrd=initrd, ram_size=128 << 20, seed=7,
                            append="console=ttyS0 panic=-1 emu.run=aoeswap,pages=10240,"
                            "passes=1,minfree=4096,wait=60",
                            nics=(NicSpec("n0", mtu=9000, netem=LINK),),
                            net=NetConfig(seed=7, targets=(f"iface:{host_side}",)),
                            max_insns=30_000_000_000)
        m = Machine(cfg)
        deadline = time.monotonic() + 300     # a real peer: bound the run on the wall
        while m.exit_status is None and time.monotonic() < deadline:
            m.run_slice()
    out = m.console.decode(errors="replace")
    assert m.exit_status is not None, f"no end after 300 s of wall time:\n{out[-3000:]}"
    assert m.exit_status == 0, f"{m.stop_reason}\n{out[-3000:]}"
    assert "memhog: pages=10240 passes=1 mismatches=0" in out, out[-3000:]
    swap = re.search(r"aoeswap: pswpin (\d+) pswpout (\d+)", out)
    assert swap and int(swap.group(2)) > 1000
    assert m.peers.ever == [f"bridge {host_side}"]
    bridge = m.network.stats()["bridges"][host_side]
    assert bridge["to_host"] > 1000 and bridge["from_host"] > 1000   # requests, replies
