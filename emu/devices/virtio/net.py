"""virtio-net (virtio 1.2, 5.1) on emu's Ethernet segment: one receive and
one transmit queue, the MAC and link status in the configuration space,
and optionally an MTU (QEMU's `host_mtu=`), so that Linux's virtio_net
driver gets an eth0 on the same switch, links, pcap and AoE targets as the
eNIC.

Offered features: MAC, STATUS, MTU (only with `host_mtu`), the ring
features INDIRECT_DESC and EVENT_IDX, ANY_LAYOUT on the legacy transport,
and the transmit offloads QEMU's virtio-net offers when its peer takes a
vnet header (a tap, the usual set-up): CSUM (the device completes a
partial checksum) and HOST_TSO4/HOST_TSO6 (the driver hands over TCP
super-frames of up to 64 KiB; the device cuts them into segments:
emu/net/offload.py), each refusable with QEMU's `csum=off`,
`host_tso4=off`, `host_tso6=off` (TSO needs CSUM, spec 5.1.3.1). They
matter for Linux beyond speed: without them its TCP still builds GSO
super-frames and dev_queue_xmit cuts and checksums them with atomic
allocations, which fail once memory is exhausted - swap over NFS then
stalls with its swap-outs dropped in the guest (docs/linux.md). No receive
offloads, no mergeable receive buffers and no control queue, so every
received frame is one chain and a device with no control queue receives
every frame the switch sends it (QEMU's virtio-net starts promiscuous for
the same reason).

Each chain begins with struct virtio_net_hdr: 10 bytes, or 12 (with
num_buffers) once VIRTIO_F_VERSION_1 or MRG_RXBUF is negotiated (spec
5.1.6.1) - however the driver splits header and frame across descriptors.

Transmit: a frame leaves as the eNIC's does (padded to 60 bytes, FCS
appended) through `transmit`, the segment port's send, after its checksum
is completed or it is cut into segments as its header asks. A header
asking for an offload that was not negotiated (or ECN, or UDP
fragmentation), one the frame cannot carry out (not TCP, headers cut
short), or a frame shorter than 14 or longer than 14 + MTU + 4 (a VLAN
tag; a super-frame: 64 KiB) is dropped and counted;
a chain without readable bytes is a broken rule (DEVICE_NEEDS_RESET).
Receive (`receive`, called by the segment's down link): a frame with a bad
FCS is dropped (a corrupting link); a frame that finds no receive chain, or
arrives before DRIVER_OK, waits in a backlog of at most BACKLOG_MAX frames
(QEMU's net queue: virtio_net_can_receive is false, the packet is queued
and flushed when the driver adds buffers or starts the device; beyond the
limit it is dropped and counted), so a guest short of memory loses no
frame to an empty ring; a frame that does not fit the next receive chain
is dropped and the chain stays available (QEMU's virtio_net_receive_rcv2
without mergeable buffers: virtqueue_unpop); a receive chain with no
writable byte is a broken rule.

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable

from emu.devices.virtio import spec
from emu.devices.virtio.device import VirtioDevice
from emu.devices.virtio.queue import VirtqueueError
from emu.net.fcs import append_fcs, strip_fcs
from emu.net.offload import OffloadError, complete_checksum, segment_tcp

# --- feature bits (spec 5.1.3) -------------------------------------------------
F_CSUM = 0
F_GUEST_CSUM = 1
F_MTU = 3
F_MAC = 5
F_GSO = 6                      # legacy
F_GUEST_TSO4 = 7
F_HOST_TSO4 = 11
F_HOST_TSO6 = 12
F_MRG_RXBUF = 15
F_STATUS = 16
F_CTRL_VQ = 17
F_ANY_LAYOUT = 27              # legacy (VERSION_1 implies it)

# --- header (spec 5.1.6) ---------------------------------------------------------
HDR_F_NEEDS_CSUM = 1
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_ECN = 0x80
_HDR = struct.Struct("<BBHHHH")   # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
HDR_LEN_LEGACY = 10            # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
HDR_LEN_MODERN = 12            # ... num_buffers
S_LINK_UP = 1                  # configuration `status`

RX_QUEUE = 0
TX_QUEUE = 1
QUEUE_SIZE = 256               # QEMU's rx_queue_size / tx_queue_size defaults
ETH_HLEN = 14
ETH_ZLEN = 60
VLAN_HLEN = 4
MTU_MIN = 68                   # ETH_MIN_MTU: Linux ignores a smaller config mtu
MTU_MAX = 9000                 # emu's segment carries 9216-byte frames
DEFAULT_MTU = 1500             # without host_mtu the driver assumes Ethernet's
BACKLOG_MAX = 10_000           # QEMU's net queue length (net/queue.c nq_maxlen)
GSO_MAX_FRAME = ETH_HLEN + VLAN_HLEN + 65536   # Linux's GSO_LEGACY_MAX_SIZE of IP

# struct virtio_net_config up to mtu: mac[6], status, max_virtqueue_pairs, mtu
_CONFIG = struct.Struct("<6sHHH")

STAT_NAMES: tuple[str, ...] = (
    "tx_frames",        # frames handed to the segment
    "tx_bytes",         # their bytes, padding included, FCS excluded
    "tx_bad_header",    # dropped: an offload not negotiated, or one the frame cannot take
    "tx_bad_len",       # dropped: shorter than 14 or longer than 14 + MTU + 4
    "tx_csum",          # checksums completed for the driver (CSUM)
    "tx_segmented",     # super-frames cut into segments (HOST_TSO4/6)
    "rx_frames",        # frames written to a receive chain
    "rx_bytes",         # their bytes (header excluded)
    "rx_crc_errors",    # dropped: bad FCS (a corrupting link)
    "rx_waited",        # frames that waited in the backlog (no chain, or not started)
    "rx_backlog_max",   # the longest the backlog has been
    "rx_backlog_full",  # dropped: the backlog held BACKLOG_MAX frames
    "rx_too_small",     # dropped: the next receive chain was too short (left available)
)


def format_mac(mac: bytes) -> str:
    """52:54:00:12:34:56 from six bytes."""
    return ":".join(f"{b:02x}" for b in mac)


class VirtioNet(VirtioDevice):
    """A virtio network device; `transmit(wire)` sends a frame + FCS (the
    machine sets it to the segment port's send), `receive(wire)` takes one.

    `mtu`: the MTU offered with VIRTIO_NET_F_MTU, or None not to offer it
    (QEMU without host_mtu; the driver then uses 1500). `csum`, `tso4`,
    `tso6`: offer CSUM, HOST_TSO4, HOST_TSO6 (TSO only with CSUM).
    """

    name = "virtio-net"
    device_id = spec.DEVICE_ID_NET
    queue_max = (QUEUE_SIZE, QUEUE_SIZE)

    def __init__(self, mac: bytes, mtu: int | None = None, *, csum: bool = True,
                 tso4: bool = True, tso6: bool = True) -> None:
        """Raises ValueError for a MAC that is not 6 bytes or a multicast
        one, or an MTU outside 68..9000."""
        super().__init__()
        if len(mac) != 6 or mac[0] & 1:
            raise ValueError(f"MAC {mac.hex(':')} is not a 6-byte unicast address")
        if mtu is not None and not MTU_MIN <= mtu <= MTU_MAX:
            raise ValueError(f"host_mtu={mtu} is outside {MTU_MIN}..{MTU_MAX}")
        self.mac = bytes(mac)
        self.mtu = mtu
        self.offered = {F_CSUM: csum, F_HOST_TSO4: csum and tso4, F_HOST_TSO6: csum and tso6}
        self.negotiated: set[int] = set()
        self.hdr_len = HDR_LEN_LEGACY
        self.transmit: Callable[[bytes], None] | None = None
        self.backlog: deque[bytes] = deque()
        self._stats = dict.fromkeys(STAT_NAMES, 0)

    def stats(self) -> dict[str, int]:
        """A copy of the counters, keyed by STAT_NAMES."""
        return dict(self._stats)

    @property
    def max_frame(self) -> int:
        """The longest frame (without FCS) sent or received."""
        return ETH_HLEN + (self.mtu or DEFAULT_MTU) + VLAN_HLEN

    # -- what the transport asks ------------------------------------------------
    def features(self, modern: bool) -> int:
        """MAC, STATUS, MTU when configured, the offloads asked for, the ring
        features; ANY_LAYOUT on the legacy interface (QEMU offers it there too)."""
        bits = [F_MAC, F_STATUS, spec.F_RING_INDIRECT_DESC, spec.F_RING_EVENT_IDX]
        bits += [b for b, on in self.offered.items() if on]
        if self.mtu is not None:
            bits.append(F_MTU)
        if not modern:
            bits.append(F_ANY_LAYOUT)
        return sum(spec.bit(b) for b in bits)

    def config(self) -> bytes:
        """struct virtio_net_config: the MAC, link up, one queue pair, the MTU."""
        return _CONFIG.pack(self.mac, S_LINK_UP, 1, self.mtu or 0)

    def activate(self, features: int) -> None:
        """The header grows num_buffers with VERSION_1 or MRG_RXBUF (5.1.6.1).
        Waiting frames go in once the driver notifies its receive queue (the
        transport serves every live queue at DRIVER_OK)."""
        modern = features & (spec.bit(spec.F_VERSION_1) | spec.bit(F_MRG_RXBUF))
        self.hdr_len = HDR_LEN_MODERN if modern else HDR_LEN_LEGACY
        self.negotiated = {b for b in self.offered if features & spec.bit(b)}

    def reset(self) -> None:
        """Status 0: back to the legacy header and no offloads until the next DRIVER_OK."""
        self.hdr_len = HDR_LEN_LEGACY
        self.negotiated = set()

    def queue_notify(self, queue: int) -> None:
        """Transmit queue: send every available frame. Receive queue: new
        buffers, for the frames waiting in the backlog."""
        if queue == TX_QUEUE:
            self._transmit_all()
        elif queue == RX_QUEUE:
            self._flush()

    # -- transmit -----------------------------------------------------------------------
    def _transmit_all(self) -> None:
        t = self.transport
        assert t is not None
        while (chain := t.pop(TX_QUEUE)) is not None:
            total = chain.readable_len
            if total == 0:
                raise VirtqueueError(f"transmit chain {chain.head} has no readable bytes")
            if total < self.hdr_len:
                raise VirtqueueError(f"transmit chain {chain.head}: header shorter than "
                                     f"{self.hdr_len} bytes")
            header = _HDR.unpack(chain.gather(t.mem, 0, HDR_LEN_LEGACY))
            frame = chain.gather(t.mem, self.hdr_len, total - self.hdr_len)
            t.push(TX_QUEUE, chain, 0)
            try:
                frames = self._offload(frame, *header)
            except OffloadError as exc:
                self._stats["tx_bad_header"] += 1
                t.log("guest_errors", f"{self.name}: {exc}: frame dropped")
                continue
            for out in frames:
                if not ETH_HLEN <= len(out) <= self.max_frame:
                    self._stats["tx_bad_len"] += 1
                    continue
                if len(out) < ETH_ZLEN:
                    out += bytes(ETH_ZLEN - len(out))
                self._stats["tx_frames"] += 1
                self._stats["tx_bytes"] += len(out)
                if self.transmit is not None:
                    self.transmit(append_fcs(out))

    def _offload(self, frame: bytes, flags: int, gso_type: int, _hdr_len: int, gso_size: int,
                 csum_start: int, csum_offset: int) -> list[bytes]:
        """The frames the header asks for (spec 5.1.6.2): the frame itself,
        with its checksum completed (NEEDS_CSUM), or its TCP segments (GSO).
        Raises OffloadError for what was not negotiated or cannot be done."""
        kind = gso_type & ~GSO_ECN
        if gso_type & GSO_ECN:
            raise OffloadError("ECN segmentation (HOST_ECN) was not negotiated")
        if kind == GSO_NONE:
            if not flags & HDR_F_NEEDS_CSUM:
                return [frame]
            if F_CSUM not in self.negotiated:
                raise OffloadError("checksum offload (CSUM) was not negotiated")
            self._stats["tx_csum"] += 1
            return [complete_checksum(frame, csum_start, csum_offset)]
        wanted = {GSO_TCPV4: F_HOST_TSO4, GSO_TCPV6: F_HOST_TSO6}.get(kind)
        if wanted is None or wanted not in self.negotiated:
            raise OffloadError(f"segmentation type {gso_type} was not negotiated")
        if len(frame) > GSO_MAX_FRAME:
            raise OffloadError(f"a {len(frame)}-byte super-frame")
        self._stats["tx_segmented"] += 1
        return segment_tcp(frame, gso_size, ipv6=kind == GSO_TCPV6)

    # -- receive --------------------------------------------------------------------------
    def receive(self, wire: bytes) -> None:
        """One frame + FCS from the segment (module docstring: what is dropped)."""
        frame = strip_fcs(wire)
        if frame is None:
            self._stats["rx_crc_errors"] += 1
            return
        if len(self.backlog) >= BACKLOG_MAX:
            self._stats["rx_backlog_full"] += 1
            return
        self.backlog.append(frame)
        t = self.transport
        if t is not None and t.started(RX_QUEUE):
            t.run(self._flush)
        if self.backlog:
            self._stats["rx_waited"] += 1
            self._stats["rx_backlog_max"] = max(self._stats["rx_backlog_max"], len(self.backlog))

    def _flush(self) -> None:
        """Move waiting frames into receive chains, oldest first, while chains last."""
        t = self.transport
        assert t is not None
        while self.backlog:
            chain = t.pop(RX_QUEUE)
            if chain is None:
                return
            frame = self.backlog.popleft()
            room = chain.writable_len
            if room == 0:
                raise VirtqueueError(f"receive chain {chain.head} has no writable bytes")
            if room < self.hdr_len + len(frame):
                t.unpop(RX_QUEUE, chain)
                self._stats["rx_too_small"] += 1
                continue
            header = bytes(HDR_LEN_LEGACY)           # no flags, GSO_NONE
            if self.hdr_len == HDR_LEN_MODERN:
                header += (1).to_bytes(2, "little")  # num_buffers: 1 without MRG_RXBUF
            chain.scatter(t.mem, 0, header + frame)
            t.push(RX_QUEUE, chain, self.hdr_len + len(frame))
            self._stats["rx_frames"] += 1
            self._stats["rx_bytes"] += len(frame)
