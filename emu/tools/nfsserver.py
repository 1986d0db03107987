"""An NFSv3 server for swap-over-NFS runs: Debian's nfs-ganesha (VFS
backend, with rpcbind) in a network namespace of its own, at the far end
of a veth pair whose near end emu bridges to its segment
(`--target iface:NAME,frames=all`). Used by `emu experiment linux-vs-emu`
(guest linux-nfs) and tests/test_linux_nfs.py; docs/linux.md shows a user
the same steps by hand.

A packet socket sees frames as the kernel hands them over, so checksum
offload is turned off on both ends of the veth (and GRO on the near end):
every frame emu reads carries its real checksum and its real size.

Needs root, ip, ethtool, rpcbind and ganesha.nfsd; NfsServerError (one
line) says what is missing or what failed. Everything created is removed
on the way out, also after an error, and leftovers of a killed run with
the same name are removed first.

Layer: tools.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TOOLS = ("ip", "ethtool", "rpcbind", "ganesha.nfsd")
SERVER_IP = "10.0.2.2"               # QEMU user networking's host address; the guest is .15
START_TIMEOUT_S = 30
GANESHA_CONF = """\
NFS_CORE_PARAM {{ Protocols = 3; Enable_NLM = false; Enable_RQUOTA = false; }}
EXPORT {{
    Export_Id = 1; Path = {path}; Pseudo = /export; Access_Type = RW;
    Squash = No_Root_Squash; Protocols = 3; Transports = TCP; SecType = sys;
    FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = EVENT; }}
"""


class NfsServerError(RuntimeError):
    """The server cannot be set up here (one line)."""


@dataclass(frozen=True)
class NfsServer:
    """A running server: bridge emu to `iface`; the guest mounts
    `ip`:`export`."""

    iface: str
    ip: str
    export: Path
    log: Path


def missing_tools() -> list[str]:
    """The programs of TOOLS this machine lacks."""
    return [t for t in TOOLS if shutil.which(t) is None]


def _sh(*args: str) -> None:
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise NfsServerError(f"{' '.join(args)}: {(r.stderr or r.stdout).strip()[:200]}")


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def nfs_server(workdir: Path, name: str = "emunfs") -> Iterator[NfsServer]:
    """Serve `workdir`/export over NFSv3 from namespace `name`, reachable
    through the veth `name`0 (the server side is `name`1). Yields the
    NfsServer; tears everything down on exit. Raises NfsServerError."""
    missing = missing_tools()
    if missing:
        raise NfsServerError(f"needs {', '.join(missing)} (Debian: nfs-ganesha "
                             "nfs-ganesha-vfs rpcbind ethtool iproute2)")
    host, server = f"{name}0", f"{name}1"
    if len(host) > 15:
        raise NfsServerError(f"namespace name {name!r} is too long for an interface name")
    export = workdir / "export"
    export.mkdir(parents=True, exist_ok=True)
    conf, log = workdir / "ganesha.conf", workdir / "ganesha.log"
    conf.write_text(GANESHA_CONF.format(path=export))
    for stale in (["ip", "netns", "del", name], ["ip", "link", "del", host]):
        subprocess.run(stale, capture_output=True)          # left by a run that was killed
    procs: list[subprocess.Popen] = []
    try:
        _sh("ip", "netns", "add", name)
        _sh("ip", "link", "add", host, "mtu", "9000", "type", "veth", "peer", "name", server,
            "mtu", "9000")
        _sh("ip", "link", "set", server, "netns", name)
        _sh("ip", "link", "set", host, "up")
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", server, "up"],
                    ["ip", "addr", "add", f"{SERVER_IP}/24", "dev", server],
                    ["ethtool", "-K", server, "tx", "off"]):
            _sh("ip", "netns", "exec", name, *cmd)
        _sh("ethtool", "-K", host, "tx", "off", "gro", "off")
        procs.append(subprocess.Popen(["ip", "netns", "exec", name, "rpcbind", "-f", "-w"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", name, "ganesha.nfsd", "-F", "-f", str(conf), "-L", str(log),
             "-p", str(workdir / "ganesha.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + START_TIMEOUT_S
        while "NFS SERVER INITIALIZED" not in _read(log):
            if time.monotonic() > deadline or procs[-1].poll() is not None:
                raise NfsServerError(f"nfs-ganesha did not start: {_read(log)[-300:]}")
            time.sleep(0.2)
        yield NfsServer(host, SERVER_IP, export, log)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
