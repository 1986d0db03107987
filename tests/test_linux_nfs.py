"""Debian's Linux swaps to a file over NFS - the seed discussion's own case
(Linux's NFS client with NFS_SWAP) - through emu's emulated link, to
Debian's nfs-ganesha (VFS backend, with rpcbind) in a network namespace on
the far side of a veth pair that emu bridges to its segment
(`--target iface:NAME,frames=all`: IP and ARP cross, not only AoE). The
test starts, configures and stops the server; docs/linux.md says how a
user does the same. Every page is verified, on a clean link and with 1 %
loss on emu's side (TCP recovers), with memory exhausted (48 MiB
of memhog in Linux's 63 MB, vm.min_free_kbytes 1024): Linux's TCP hands
virtio-net super-frames with partial checksums, which the device completes
and cuts (CSUM, HOST_TSO4, as QEMU's virtio-net on a tap). Without those
offloads Linux segments in dev_queue_xmit with atomic allocations, which
fail at this pressure: the swap-outs are dropped inside the guest and
swap stops for good (docs/linux.md) - what this test saw in CI before the
device had them.

Needs root, ip, ethtool, rpcbind, ganesha.nfsd and the Linux bundle:
skipped with the reason outside CI when missing, a failure in CI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emu.core import twins
from emu.machine.config import MachineConfig, NicSpec
from emu.machine.machine import Machine
from emu.net.network import NetConfig
from emu.tools import nfsserver
from tests.test_linux import bundle
from tests.test_net_vblade import require

pytestmark = pytest.mark.peer

NS = "emunfs"
HOST_SIDE = f"{NS}0"
SERVER_IP = nfsserver.SERVER_IP


@pytest.fixture
def nfs_server(tmp_path: Path) -> Iterator[Path]:
    """An NFSv3 export served by nfs-ganesha in its own namespace, reachable
    through HOST_SIDE (emu/tools/nfsserver.py); yields the exported directory."""
    require(*nfsserver.TOOLS)
    with nfsserver.nfs_server(tmp_path, NS) as server:
        assert server.iface == HOST_SIDE
        yield server.export


WALL_LIMIT_S = 300     # a real peer: the run follows the wall clock, so bound it there
PAGES = 12288          # 48 MiB of memhog in the 63 MB Linux manages at -m 128M


def nfs_machine(export: Path, netem: str, *, csum: bool = True, watch: str = "") -> Machine:
    """Linux running nfsswap against `export`, its NIC on a link with `netem`."""
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: billions of instructions take many minutes on the pure "
                    "twins; the compiled run (make test) swaps Linux over NFS")
    image, initrd = bundle()
    return Machine(MachineConfig(
        kernel=image, initrd=initrd, ram_size=128 << 20, seed=7,
        append=f"console=ttyS0 panic=-1 emu.run=nfsswap,size=64,pages={PAGES},passes=1,"
        f"minfree=1024,server={SERVER_IP},export={export}{watch}",
        nics=(NicSpec("n0", mtu=9000, netem=netem, csum=csum),),
        net=NetConfig(seed=7, targets=(f"iface:{HOST_SIDE},frames=all",)),
        max_insns=40_000_000_000))


def run_until(m: Machine, done) -> str:
    """Run `m` until it ends or done(console) holds, at most WALL_LIMIT_S of
    wall time; returns the console."""
    deadline = time.monotonic() + WALL_LIMIT_S
    while m.exit_status is None and time.monotonic() < deadline:
        m.run_slice()
        if done(m.console):
            break
    return m.console.decode(errors="replace")


@pytest.mark.parametrize("netem", ["delay 50us", "delay 50us loss 1%"], ids=["clean", "loss1"])
def test_linux_swaps_to_a_file_over_nfs_through_emus_link(nfs_server: Path, netem: str) -> None:
    m = nfs_machine(nfs_server, netem)
    out = run_until(m, lambda console: False)
    assert m.exit_status is not None, f"no end after {WALL_LIMIT_S} s of wall time:\n{out[-3000:]}"
    assert m.exit_status == 0, f"{m.stop_reason}\n{out[-3000:]}"
    assert f"nfsswap: mounted {SERVER_IP}:{nfs_server}" in out, out[-3000:]
    assert "Adding 65532k swap on /mnt/swapfile" in out
    assert f"memhog: pages={PAGES} passes=1 mismatches=0" in out, out[-3000:]
    swap = re.search(r"nfsswap: pswpin (\d+) pswpout (\d+)", out)
    assert swap and int(swap.group(1)) > 1000 and int(swap.group(2)) > 1000, out[-2000:]
    assert (nfs_server / "swapfile").stat().st_size == 64 << 20
    bridge = m.network.stats()["bridges"][HOST_SIDE]
    assert bridge["to_host_bytes"] > 40 << 20                 # the swap-outs crossed
    assert m.peers.ever == [f"bridge {HOST_SIDE}"]
    nic = next(v.device for v in m.virtio if v.device is not None)
    assert nic.stats()["tx_segmented"] > 100 and nic.stats()["tx_bad_header"] == 0


def test_without_offloads_linux_drops_its_own_swap_outs_and_stops(nfs_server: Path) -> None:
    """csum=off (QEMU's socket and user back-ends offer no offloads either):
    Linux segments and checksums in dev_queue_xmit with atomic allocations,
    which fail with memory exhausted. vmwatch, at the stall, shows eth0's
    transmit drops and TCP's retransmissions - frames that never reached
    the device: emu's link lost nothing, and the swap-outs stopped."""
    m = nfs_machine(nfs_server, "delay 50us", csum=False, watch=",watch=5")
    out = run_until(m, lambda console: re.search(rb"vmwatch: no swap-out[^\n]*\n(.*\n)*Tcp: \d",
                                                 console) is not None)
    assert m.exit_status is None and "memhog: pages=" not in out, out[-3000:]
    dev = re.search(r"^\s*eth0:" + r"\s+(\d+)" * 12, out, re.M)
    assert dev, out[-3000:]
    tx_drop = int(dev.group(12))                              # /proc/net/dev: TX drop
    tcp = re.search(r"^Tcp:(?: -?\d+){11} (\d+) ", out, re.M)          # RetransSegs
    assert tx_drop > 0 and tcp and int(tcp.group(1)) > 0, out[-3000:]
    assert "mempool_alloc" in out or "throttle_direct_reclaim" in out   # sysrq w
    nic = next(v.device for v in m.virtio if v.device is not None)
    assert nic.stats()["tx_segmented"] == 0 and nic.stats()["tx_bad_header"] == 0
    link = m.network.stats()["segment"]["ports"]["n0"]["up"]
    assert link["dropped_loss"] == 0 and link["sent"] == link["delivered"]
