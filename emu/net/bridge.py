"""`--target iface:NAME`: join the emulated segment to a real Linux interface.

The Bridge is a segment endpoint: frames the switch sends it go out on the
interface (FCS stripped: the kernel and the NIC add their own); `poll()`,
which the machine calls at slice boundaries, reads what the interface
received (non-blocking AF_PACKET) and injects it into the segment with a
fresh FCS at the current virtual time. So the guest can reach a real target
such as vblade on a veth pair or a real network.

By default only AoE (ethertype 0x88A2) crosses the bridge, both ways: the
guest needs nothing else, and host traffic (IPv6 neighbour discovery, ...)
stays out of the guest's receive ring and out of the capture. `ethertype=None`
bridges everything.

Bridged runs are NOT deterministic: what arrives, and when in virtual time it
is injected, depends on the real peer and the wall clock. Needs root
(CAP_NET_RAW).

Layer: net (imports only emu.core).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from emu.net.fcs import append_fcs, strip_fcs
from emu.net.rawsock import (
    ETH_P_ALL,
    ETH_P_AOE,
    PACKET_OUTGOING,
    open_packet_socket,
    recv_frame,
    send_frame,
)


@dataclass
class BridgeStats:
    """Counters of a bridge (to_host: segment -> interface; from_host: the reverse)."""

    to_host: int = 0
    to_host_bytes: int = 0
    to_host_errors: int = 0      # refused by the kernel (too big, buffer full, link down)
    to_host_filtered: int = 0    # not the bridged ethertype
    crc_errors: int = 0          # arrived from the segment with a bad FCS
    from_host: int = 0
    from_host_bytes: int = 0
    from_host_filtered: int = 0


class Bridge:
    """A segment endpoint backed by a real interface; see the module docstring."""

    def __init__(self, iface: str, *, ethertype: int | None = ETH_P_AOE,
                 max_per_poll: int = 1024) -> None:
        """Open `iface`. Raises ValueError (no such interface) or PermissionError (not root)."""
        self.iface = iface
        self.ethertype = ethertype
        self.max_per_poll = max_per_poll
        self.sock = open_packet_socket(iface, ethertype if ethertype is not None else ETH_P_ALL)
        self.port: Any = None   # the segment port handle (has send(wire))
        self.stats = BridgeStats()

    def _wanted(self, frame: bytes) -> bool:
        if self.ethertype is None:
            return True
        return len(frame) >= 14 and ((frame[12] << 8) | frame[13]) == self.ethertype

    def receive(self, wire: bytes) -> None:
        """A frame from the segment: send it out on the interface."""
        st = self.stats
        frame = strip_fcs(wire)
        if frame is None:
            st.crc_errors += 1
        elif not self._wanted(frame):
            st.to_host_filtered += 1
        elif send_frame(self.sock, frame):
            st.to_host += 1
            st.to_host_bytes += len(frame)
        else:
            st.to_host_errors += 1

    def poll(self) -> int:
        """Inject what the interface received since the last poll (at most
        max_per_poll frames). Returns how many frames went into the segment."""
        st, count = self.stats, 0
        while count < self.max_per_poll:
            got = recv_frame(self.sock)
            if got is None:
                break
            frame, pkttype = got
            if pkttype == PACKET_OUTGOING:   # our own transmissions, looped back
                continue
            if not self._wanted(frame):
                st.from_host_filtered += 1
                continue
            st.from_host += 1
            st.from_host_bytes += len(frame)
            count += 1
            if self.port is not None:
                self.port.send(append_fcs(frame))
        return count

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def as_dict(self) -> dict[str, Any]:
        """The counters plus the interface name."""
        d: dict[str, Any] = asdict(self.stats)
        d["iface"] = self.iface
        return d
