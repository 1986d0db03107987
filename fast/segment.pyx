# cython: language_level=3
"""Compiled twin of emu/net/segment.py: the learning switch joining ports,
each behind two netem links (the compiled ones, emu._fast.link).

Same names and contract as the reference (its docstring describes the
switch); ports and their counters are C objects, the FCS check is
emu.net.fcs's, as the reference's. Errors for bad
arguments are the reference's, word for word."""

from emu.net.fcs import strip_fcs

from emu._fast.link import Link
from emu.net.link import derive_seed
from emu.net.netem import parse_netem
from emu.net.segment import DEFAULT_MAX_FRAME, ETH_HLEN, Endpoint, Tap  # noqa: F401

PORT_STAT_FIELDS = ("rx_frames", "rx_bytes", "crc_errors", "runts", "giants", "tx_frames",
                    "tx_bytes", "flooded", "filtered")


cdef class PortStats:
    """Switch-side counters of one port (the links keep their own)."""

    cdef public long long rx_frames, rx_bytes, crc_errors, runts, giants
    cdef public long long tx_frames, tx_bytes, flooded, filtered

    def as_dict(self):
        """The counters as a plain dict (the reference's asdict)."""
        return {name: getattr(self, name) for name in PORT_STAT_FIELDS}


cdef object _without_fcs(object wire):
    """wire[:-4], spelled out (negative indices are off in the twins)."""
    cdef Py_ssize_t n = len(wire)
    return wire[:n - 4] if n >= 4 else wire[:0]


cdef class Port:
    """A switch port: the handle an endpoint transmits through."""

    cdef public Segment segment
    cdef public object endpoint, name, up, down
    cdef public PortStats stats
    cdef public bint attached
    cdef public list taps
    cdef object _up_send, _receive

    def __init__(self, Segment segment, endpoint, name, up, down):
        self.segment = segment
        self.endpoint = endpoint
        self.name = name
        self.up = up          # endpoint -> switch
        self.down = down      # switch -> endpoint
        self.stats = PortStats()
        self.attached = True
        self.taps = []        # see what the endpoint sends and receives
        self._bind()

    cdef void _bind(self):
        self._up_send = self.up.send if self.up is not None else None
        self._receive = self.endpoint.receive

    def send(self, wire):
        """Transmit one frame + FCS from the endpoint. Never raises for any bytes;
        a detached port drops silently."""
        if self.attached:
            if self.taps:
                now = self.segment.clock.now
                for tap in self.taps:
                    tap(now, bytes(_without_fcs(wire)))
            self._up_send(bytes(wire))

    def detach(self):
        """Remove this port from its segment (frames in flight are discarded)."""
        self.segment._detach(self)

    def as_dict(self):
        """Port counters plus both links' counters (keys `up`, `down`)."""
        d = self.stats.as_dict()
        d["up"] = self.up.stats.as_dict()
        d["down"] = self.down.stats.as_dict()
        return d

    # the links' delivery callbacks
    def _from_endpoint(self, wire):
        self.segment._ingress(self, wire)

    def _to_endpoint(self, wire):
        if self.attached:
            if self.taps:
                now = self.segment.clock.now
                for tap in self.taps:
                    tap(now, _without_fcs(wire))
            self._receive(wire)


cdef class Segment:
    """A learning switch joining ports; see the reference's module docstring."""

    cdef public object clock, seed, name
    cdef public long long max_frame, forwarded, flooded
    cdef public dict ports
    cdef dict _fdb
    cdef list _taps

    def __init__(self, clock, *, seed=0, max_frame=DEFAULT_MAX_FRAME, name="segment"):
        """Create an empty segment. `seed` is the run's --seed."""
        self.clock = clock
        self.seed = seed
        self.max_frame = max_frame
        self.name = name
        self.ports = {}
        self._fdb = {}
        self._taps = []
        self.forwarded = 0
        self.flooded = 0

    def attach(self, endpoint, name, *, up=None, down=None, net=None):
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
        port = Port(self, endpoint, name, None, None)
        port.up = Link(self.clock, up_spec, seed=derive_seed(self.seed, name, "up"),
                       name=f"{name}/up", deliver=port._from_endpoint)
        port.down = Link(self.clock, down_spec, seed=derive_seed(self.seed, name, "down"),
                         name=f"{name}/down", deliver=port._to_endpoint)
        port._bind()
        self.ports[name] = port
        return port

    def _detach(self, Port port):
        port.attached = False
        self.ports.pop(port.name, None)
        for mac in [m for m, p in self._fdb.items() if p is port]:
            del self._fdb[mac]

    def add_tap(self, tap):
        """Call `tap(time_ns, frame)` (frame without FCS) for every accepted frame."""
        self._taps.append(tap)

    # -- the switch ---------------------------------------------------------
    def _ingress(self, Port port, bytes wire):
        cdef PortStats st
        cdef bytes frame, dst, src
        cdef Py_ssize_t n
        cdef Port other
        if not port.attached:
            return
        st = port.stats
        frame = strip_fcs(wire)
        if frame is None:
            st.crc_errors += 1
            return
        n = len(frame)
        if n < ETH_HLEN:
            st.runts += 1
            return
        if n > self.max_frame:
            st.giants += 1
            return
        st.rx_frames += 1
        st.rx_bytes += len(wire)
        dst, src = frame[0:6], frame[6:12]
        if not src[0] & 1:  # learn unicast sources only (802.1D)
            self._fdb[src] = port
        if self._taps:
            now = self.clock.now
            for tap in self._taps:
                tap(now, frame)
        out = None if dst[0] & 1 else self._fdb.get(dst)
        if out is port:
            st.filtered += 1
            return
        self.forwarded += 1
        if out is not None:
            _forward(<Port>out, wire, False)
            return
        self.flooded += 1
        for other in list(self.ports.values()):
            if other is not port:
                _forward(other, wire, True)

    def stats(self):
        """{"forwarded", "flooded", "fdb", "ports": {name: Port.as_dict()}}."""
        return {"forwarded": self.forwarded, "flooded": self.flooded, "fdb": len(self._fdb),
                "ports": {n: p.as_dict() for n, p in self.ports.items()}}


cdef void _forward(Port out, bytes wire, bint flooded) except *:
    cdef PortStats st = out.stats
    st.tx_frames += 1
    st.tx_bytes += len(wire)
    if flooded:
        st.flooded += 1
    out.down.send(wire)
