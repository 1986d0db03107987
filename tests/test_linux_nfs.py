"""Debian's Linux swaps to a file over NFS - the seed discussion's own case
(Linux's NFS client with NFS_SWAP) - through emu's emulated link, to
Debian's nfs-ganesha (VFS backend, with rpcbind) in a network namespace on
the far side of a veth pair that emu bridges to its segment
(`--target iface:NAME,frames=all`: IP and ARP cross, not only AoE). The
test starts, configures and stops the server; docs/linux.md says how a
user does the same. Every page is verified. (With 1 % loss on emu's side
of the link a run once finished and once stalled - "nfs: server not
responding" - so that case is not a test yet: see the issue's notes.)

Needs root, ip, ethtool, rpcbind, ganesha.nfsd and the Linux bundle:
skipped with the reason outside CI when missing, a failure in CI.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emu.core import twins
from emu.machine.config import MachineConfig, NicSpec
from emu.machine.machine import Machine
from emu.net.network import NetConfig
from tests.test_linux import bundle
from tests.test_net_vblade import require

pytestmark = pytest.mark.peer

NS = "emunfs"
HOST_SIDE, SERVER_SIDE = "emunfs0", "emunfs1"
SERVER_IP = "10.0.2.2"
GANESHA_CONF = """\
NFS_CORE_PARAM {{ Protocols = 3; Enable_NLM = false; Enable_RQUOTA = false; }}
EXPORT {{
    Export_Id = 1; Path = {path}; Pseudo = /export; Access_Type = RW;
    Squash = No_Root_Squash; Protocols = 3; Transports = TCP; SecType = sys;
    FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = EVENT; }}
"""


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def nfs_server(tmp_path: Path) -> Iterator[Path]:
    """An NFSv3 export served by nfs-ganesha in its own namespace, reachable
    through HOST_SIDE; yields the exported directory."""
    require("ip", "ethtool", "rpcbind", "ganesha.nfsd")
    export = tmp_path / "export"
    export.mkdir()
    conf = tmp_path / "ganesha.conf"
    conf.write_text(GANESHA_CONF.format(path=export))
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    sh("ip", "netns", "add", NS)
    procs: list[subprocess.Popen] = []
    try:
        sh("ip", "link", "add", HOST_SIDE, "mtu", "9000", "type", "veth", "peer", "name",
           SERVER_SIDE, "mtu", "9000")
        sh("ip", "link", "set", SERVER_SIDE, "netns", NS)
        sh("ip", "link", "set", HOST_SIDE, "up")
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", SERVER_SIDE, "up"],
                    ["ip", "addr", "add", f"{SERVER_IP}/24", "dev", SERVER_SIDE],
                    # a packet socket gets what the kernel hands it: no offloaded checksums
                    ["ethtool", "-K", SERVER_SIDE, "tx", "off"]):
            sh("ip", "netns", "exec", NS, *cmd)
        sh("ethtool", "-K", HOST_SIDE, "tx", "off", "gro", "off")
        procs.append(subprocess.Popen(["ip", "netns", "exec", NS, "rpcbind", "-f", "-w"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", NS, "ganesha.nfsd", "-F", "-f", str(conf),
             "-L", str(tmp_path / "ganesha.log"), "-p", str(tmp_path / "ganesha.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        while "NFS SERVER INITIALIZED" not in _read(tmp_path / "ganesha.log"):
            if time.monotonic() > deadline or procs[-1].poll() is not None:
                pytest.fail(f"nfs-ganesha did not start: {_read(tmp_path / 'ganesha.log')[-800:]}")
            time.sleep(0.2)
        yield export
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "link", "del", HOST_SIDE], capture_output=True)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


WALL_LIMIT_S = 300     # a real peer: the run follows the wall clock, so bound it there


def test_linux_swaps_to_a_file_over_nfs_through_emus_link(nfs_server: Path) -> None:
    netem = "delay 50us"
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: billions of instructions take many minutes on the pure "
                    "twins; the compiled run (make test) swaps Linux over NFS")
    image, initrd = bundle()
    cfg = MachineConfig(kernel=image, initrd=initrd, ram_size=128 << 20, seed=7,
                        append="console=ttyS0 panic=-1 emu.run=nfsswap,size=64,pages=10240,"
                        f"passes=1,minfree=4096,server={SERVER_IP},export={nfs_server}",
                        nics=(NicSpec("n0", mtu=9000, netem=netem),),
                        net=NetConfig(seed=7, targets=(f"iface:{HOST_SIDE},frames=all",)),
                        max_insns=40_000_000_000)
    m = Machine(cfg)
    deadline = time.monotonic() + WALL_LIMIT_S
    while m.exit_status is None and time.monotonic() < deadline:
        m.run_slice()
    out = m.console.decode(errors="replace")
    assert m.exit_status is not None, f"no end after {WALL_LIMIT_S} s of wall time:\n{out[-3000:]}"
    assert m.exit_status == 0, f"{m.stop_reason}\n{out[-3000:]}"
    assert f"nfsswap: mounted {SERVER_IP}:{nfs_server}" in out, out[-3000:]
    assert "Adding 65532k swap on /mnt/swapfile" in out
    assert "memhog: pages=10240 passes=1 mismatches=0" in out, out[-3000:]
    swap = re.search(r"nfsswap: pswpin (\d+) pswpout (\d+)", out)
    assert swap and int(swap.group(1)) > 1000 and int(swap.group(2)) > 1000, out[-2000:]
    assert (nfs_server / "swapfile").stat().st_size == 64 << 20
    bridge = m.network.stats()["bridges"][HOST_SIDE]
    assert bridge["to_host_bytes"] > 40 << 20                 # the swap-outs crossed
    assert m.peers.ever == [f"bridge {HOST_SIDE}"]
