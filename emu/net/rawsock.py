"""AF_PACKET access to a real Linux interface (root / CAP_NET_RAW): the bridge and
`emu aoe-target` use it. These are the only wall-clock, non-deterministic
paths of the network.

Linux delivers frames without their FCS and pads short frames itself; it also
shows a packet socket the frames the host sends (PACKET_OUTGOING), which the
callers skip, and frames for other unicast MACs (PACKET_OTHERHOST), which a
real NIC would have filtered.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

import errno
import os
import socket

ETH_P_ALL = 0x0003
ETH_P_AOE = 0x88A2
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING = range(5)


def iface_mac(iface: str) -> bytes:
    """Return the interface's MAC address. Raises ValueError if there is no such interface."""
    try:
        with open(f"/sys/class/net/{iface}/address") as f:
            return bytes.fromhex(f.read().strip().replace(":", ""))
    except (FileNotFoundError, ValueError):
        raise ValueError(f"no Ethernet interface named {iface!r}") from None


def iface_mtu(iface: str) -> int:
    """Return the interface's MTU. Raises ValueError if there is no such interface."""
    try:
        with open(f"/sys/class/net/{iface}/mtu") as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        raise ValueError(f"no interface named {iface!r}") from None


def open_packet_socket(iface: str, proto: int = ETH_P_AOE, *,
                       blocking: bool = False) -> socket.socket:
    """Open an AF_PACKET raw socket bound to `iface` for ethertype `proto`.

    Raises ValueError (one line) if the interface does not exist, PermissionError
    with a hint if the process lacks CAP_NET_RAW.
    """
    iface_mtu(iface)  # a clear error for a missing interface
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    except PermissionError:
        raise PermissionError(f"opening a packet socket on {iface!r} needs root "
                              "(CAP_NET_RAW)") from None
    try:
        s.bind((iface, proto))
        s.setblocking(blocking)
        # Large buffers: a burst of jumbo AoE frames must not overflow the socket.
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            s.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
    except OSError:
        s.close()
        raise
    return s


def recv_frame(s: socket.socket, bufsize: int = 65536) -> tuple[bytes, int] | None:
    """Read one frame: (frame without FCS, packet type), or None if none is waiting."""
    try:
        data, addr = s.recvfrom(bufsize)
    except (BlockingIOError, InterruptedError):
        return None
    return data, addr[2]


def send_frame(s: socket.socket, frame: bytes) -> bool:
    """Send one frame (without FCS). Returns False if the kernel refused it
    (too big for the MTU, buffer full, interface down) instead of raising."""
    try:
        s.send(frame)
        return True
    except OSError as exc:
        if exc.errno in (errno.EMSGSIZE, errno.ENOBUFS, errno.EAGAIN, errno.ENETDOWN,
                         errno.ENXIO, errno.EINVAL):
            return False
        raise


def have_raw_sockets() -> bool:
    """True if this process may open AF_PACKET sockets (root or CAP_NET_RAW)."""
    if not hasattr(socket, "AF_PACKET"):
        return False
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
        return True
    except PermissionError:
        return False
    except OSError:
        return os.geteuid() == 0
