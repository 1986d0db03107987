"""The Ethernet segment: a learning switch joining ports, each behind two netem links.

    endpoint --send--> [up Link] --> switch --> [down Link] --receive--> endpoint

An endpoint is any object with `receive(wire: bytes) -> None`, where wire is
a frame followed by its 4-byte FCS (emu/net/fcs.py). `Segment.attach` returns
the port handle whose `send(wire)` the endpoint calls to transmit. The guest
NIC, AoE targets, the noise generator and a bridge attach the same way.

The switch is store-and-forward, as real ones are: it checks the FCS of each
frame it receives and drops a damaged one (counted as the port's crc_errors;
a corrupting up link is caught here, a corrupting down link by the endpoint),
drops runts (< 14 bytes) and giants (> max_frame), learns source MACs,
forwards known unicast to one port, floods broadcast, multicast and unknown
unicast to every other port, and filters a frame addressed back to the port
it came from. The switch itself adds no delay; all delay and damage is in
the links. Frames are delivered only from Clock events, never synchronously.

A capture tap (`add_tap`) sees every frame the switch accepts, without its
FCS, at the virtual time it is forwarded: a mirror port. The pcap writer is
such a tap. A port tap (`Port.taps`) sees instead what one endpoint sends
and receives, where it meets its link - the initiator's view, link delays
included - a capture on the host's own interface.

Seeds: each link's generator is seeded with derive_seed(seed, port name,
"up"|"down") so that the run's --seed fixes every random choice.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from emu.core.clock import Clock
from emu.net.fcs import strip_fcs
from emu.net.link import Link, derive_seed
from emu.net.netem import NetemSpec, parse_netem

ETH_HLEN = 14
DEFAULT_MAX_FRAME = 9216  # a common jumbo limit of switches (frame without FCS)

Tap = Callable[[int, bytes], None]


class Endpoint(Protocol):
    """What a port needs from the device attached to it."""

    def receive(self, wire: bytes) -> None:
        """Take one frame + FCS off the wire."""


@dataclass
class PortStats:
    """Switch-side counters of one port (the links keep their own)."""

    rx_frames: int = 0       # frames the switch accepted from this port
    rx_bytes: int = 0
    crc_errors: int = 0      # frames from this port dropped: bad FCS
    runts: int = 0           # frames from this port dropped: < 14 bytes
    giants: int = 0          # frames from this port dropped: > max_frame
    tx_frames: int = 0       # frames the switch sent toward this port
    tx_bytes: int = 0
    flooded: int = 0         # of tx_frames, sent by flooding
    filtered: int = 0        # frames from this port addressed back to it


class Port:
    """A switch port: the handle an endpoint transmits through."""

    def __init__(self, segment: Segment, endpoint: Endpoint, name: str, up: Link,
                 down: Link) -> None:
        self.segment = segment
        self.endpoint = endpoint
        self.name = name
        self.up = up          # endpoint -> switch
        self.down = down      # switch -> endpoint
        self.stats = PortStats()
        self.attached = True
        self.taps: list[Tap] = []      # see what the endpoint sends and receives

    def send(self, wire: bytes) -> None:
        """Transmit one frame + FCS from the endpoint. Never raises for any bytes;
        a detached port drops silently."""
        if self.attached:
            for tap in self.taps:
                tap(self.segment.clock.now, bytes(wire[:-4]))
            self.up.send(bytes(wire))

    def detach(self) -> None:
        """Remove this port from its segment (frames in flight are discarded)."""
        self.segment._detach(self)

    def as_dict(self) -> dict[str, Any]:
        """Port counters plus both links' counters (keys `up`, `down`)."""
        d: dict[str, Any] = asdict(self.stats)
        d["up"] = self.up.stats.as_dict()
        d["down"] = self.down.stats.as_dict()
        return d


class Segment:
    """A learning switch joining ports; see the module docstring."""

    def __init__(self, clock: Clock, *, seed: int = 0, max_frame: int = DEFAULT_MAX_FRAME,
                 name: str = "segment") -> None:
        """Create an empty segment. `seed` is the run's --seed."""
        self.clock = clock
        self.seed = seed
        self.max_frame = max_frame
        self.name = name
        self.ports: dict[str, Port] = {}
        self._fdb: dict[bytes, Port] = {}
        self._taps: list[Tap] = []
        self.forwarded = 0
        self.flooded = 0

    def attach(self, endpoint: Endpoint, name: str, *,
               up: NetemSpec | str | None = None, down: NetemSpec | str | None = None,
               net: NetemSpec | str | None = None) -> Port:
        """Attach `endpoint` as port `name` and return its handle.

        `up` impairs endpoint->switch, `down` switch->endpoint; `net` sets both
        at once (each direction gets its own generator). Raises ValueError for
        a duplicate name, an endpoint without receive(), or a bad netem spec.
        """
        if name in self.ports:
            raise ValueError(f"port name {name!r} already attached")
        if not callable(getattr(endpoint, "receive", None)):
            raise ValueError(f"port {name!r}: endpoint has no receive(wire) method")
        up_spec = parse_netem(up if up is not None else net)
        down_spec = parse_netem(down if down is not None else net)
        port: Port
        up_link = Link(self.clock, up_spec, seed=derive_seed(self.seed, name, "up"),
                       name=f"{name}/up", deliver=lambda w: self._ingress(port, w))
        down_link = Link(self.clock, down_spec, seed=derive_seed(self.seed, name, "down"),
                         name=f"{name}/down", deliver=lambda w: self._egress(port, w))
        port = Port(self, endpoint, name, up_link, down_link)
        self.ports[name] = port
        return port

    def _detach(self, port: Port) -> None:
        port.attached = False
        self.ports.pop(port.name, None)
        for mac in [m for m, p in self._fdb.items() if p is port]:
            del self._fdb[mac]

    def add_tap(self, tap: Tap) -> None:
        """Call `tap(time_ns, frame)` (frame without FCS) for every accepted frame."""
        self._taps.append(tap)

    # -- the switch ---------------------------------------------------------
    def _ingress(self, port: Port, wire: bytes) -> None:
        if not port.attached:
            return
        st = port.stats
        frame = strip_fcs(wire)
        if frame is None:
            st.crc_errors += 1
            return
        if len(frame) < ETH_HLEN:
            st.runts += 1
            return
        if len(frame) > self.max_frame:
            st.giants += 1
            return
        st.rx_frames += 1
        st.rx_bytes += len(wire)
        dst, src = frame[0:6], frame[6:12]
        if not src[0] & 1:  # learn unicast sources only (802.1D)
            self._fdb[src] = port
        for tap in self._taps:
            tap(self.clock.now, frame)
        out = None if dst[0] & 1 else self._fdb.get(dst)
        if out is port:
            st.filtered += 1
            return
        self.forwarded += 1
        if out is not None:
            self._forward(out, wire, flooded=False)
            return
        self.flooded += 1
        for other in list(self.ports.values()):
            if other is not port:
                self._forward(other, wire, flooded=True)

    @staticmethod
    def _forward(out: Port, wire: bytes, flooded: bool) -> None:
        st = out.stats
        st.tx_frames += 1
        st.tx_bytes += len(wire)
        if flooded:
            st.flooded += 1
        out.down.send(wire)

    def _egress(self, port: Port, wire: bytes) -> None:
        if port.attached:
            for tap in port.taps:
                tap(self.clock.now, wire[:-4])
            port.endpoint.receive(wire)

    def stats(self) -> dict[str, Any]:
        """{"forwarded", "flooded", "fdb", "ports": {name: Port.as_dict()}}."""
        return {"forwarded": self.forwarded, "flooded": self.flooded, "fdb": len(self._fdb),
                "ports": {n: p.as_dict() for n, p in self.ports.items()}}
