"""virtio-net as a guest driver sees it: identity, features and the
configuration space (MAC, link, MTU), frames out and in with the legacy
10-byte and the modern 12-byte header however the driver lays the chain
out, the receive backlog (frames wait for buffers as in QEMU's net queue),
what is dropped and counted, every hostile-guest rule (DEVICE_NEEDS_RESET,
never an exception), and a frame round trip through emu's segment to the
embedded AoE target."""

from __future__ import annotations

import struct

import pytest

from emu.core.clock import Clock
from emu.devices.bus import IrqLine
from emu.devices.virtio import net as N
from emu.devices.virtio import spec as S
from emu.devices.virtio.mmio import VirtioMmio
from emu.guestview.netview import info_net
from emu.machine.board import RAM_BASE
from emu.machine.config import MachineConfig, NicSpec
from emu.machine.machine import Machine
from emu.net.aoe_target import AoETarget
from emu.net.fcs import append_fcs, strip_fcs
from emu.net.network import NetConfig
from emu.net.segment import Segment
from emu.net.store import MemoryStore
from emu.tools.report import virtio_figures
from tests.test_nic_support import GuardedMem
from tests.test_virtio_support import DESC, PAGE, BlkDriver, Sink, run_clock, write_features

BOTH = pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "modern"])
MAC = bytes.fromhex("525400123457")
PEER = bytes.fromhex("020000000001")
BCAST = b"\xff" * 6


def frame(dst: bytes = MAC, src: bytes = PEER, kind: int = 0x88A2,
          body: bytes = b"x" * 50) -> bytes:
    return dst + src + kind.to_bytes(2, "big") + body


class NetDriver:
    """A virtio-net driver in Python: queue 0 (receive) and queue 1
    (transmit), QSIZE entries each, rings a page apart from QMEM, buffers
    from BUFS (one 16 KiB area per descriptor of each queue)."""

    QSIZE = 16
    QMEM = RAM_BASE + 0x1_0000
    BUFS = RAM_BASE + 0x2_0000

    def __init__(self, t: VirtioMmio, mem: GuardedMem) -> None:
        self.t, self.mem = t, mem
        self.avail_idx = [0, 0]
        self.used_seen = [0, 0]
        self.features = 0

    def ring(self, q: int) -> tuple[int, int, int]:
        """desc, avail, used of queue q (legacy: one contiguous region)."""
        base = self.QMEM + q * 4 * PAGE
        if self.t.legacy:
            avail = base + 16 * self.QSIZE
            return base, avail, base + PAGE
        return base, base + PAGE, base + 2 * PAGE

    def buf(self, q: int, i: int) -> int:
        return self.BUFS + (q * self.QSIZE + i) * 0x4000

    # register access as the block driver does it
    w = BlkDriver.w
    r = BlkDriver.r
    offered = BlkDriver.offered

    def init(self, drop: int = 0) -> int:
        """Bring the device up with both queues; returns Status."""
        self.w(S.STATUS, 0)
        self.w(S.STATUS, S.S_ACKNOWLEDGE | S.S_DRIVER)
        self.features = self.offered() & ~drop
        st = S.S_ACKNOWLEDGE | S.S_DRIVER
        write_features(self.t, self.features)
        if not self.t.legacy:
            st |= S.S_FEATURES_OK
            self.w(S.STATUS, st)
        self.mem.poke(self.QMEM, bytes(8 * PAGE))
        for q in (0, 1):
            desc, avail, used = self.ring(q)
            self.w(S.QUEUE_SEL, q)
            self.w(S.QUEUE_NUM, self.QSIZE)
            if self.t.legacy:
                self.w(S.QUEUE_ALIGN, PAGE)
                self.w(S.QUEUE_PFN, desc // PAGE)
            else:
                for off, addr in ((S.QUEUE_DESC_LOW, desc), (S.QUEUE_DRIVER_LOW, avail),
                                  (S.QUEUE_DEVICE_LOW, used)):
                    self.w(off, addr & 0xFFFF_FFFF)
                    self.w(off + 4, addr >> 32)
                self.w(S.QUEUE_READY, 1)
        self.w(S.STATUS, st | S.S_DRIVER_OK)
        return self.r(S.STATUS)

    @property
    def hdr_len(self) -> int:
        return 10 if self.t.legacy else 12

    def put(self, q: int, head: int, pieces: list[tuple[int, int, int]], kick: bool = True) -> None:
        """Chain `pieces` (addr, len, flags) from descriptor `head` on, make it available."""
        desc, avail, _ = self.ring(q)
        for k, (addr, length, flags) in enumerate(pieces):
            nxt = head + k + 1
            more = S.DESC_F_NEXT if k + 1 < len(pieces) else 0
            self.mem.poke(desc + 16 * (head + k), DESC.pack(addr, length, flags | more, nxt))
        self.mem.poke(avail + 4 + 2 * (self.avail_idx[q] % self.QSIZE), head.to_bytes(2, "little"))
        self.avail_idx[q] = (self.avail_idx[q] + 1) & 0xFFFF
        self.mem.poke(avail + 2, self.avail_idx[q].to_bytes(2, "little"))
        if kick:
            self.w(S.QUEUE_NOTIFY, q)

    def send(self, data: bytes, header: bytes | None = None, split: bool = True,
             head: int = 0) -> None:
        """Post one frame on the transmit queue: header then frame, in two
        descriptors (`split`) or one."""
        hdr = header if header is not None else bytes(self.hdr_len)
        addr = self.buf(1, head)
        self.mem.poke(addr, hdr + data)
        if split:
            pieces = [(addr, len(hdr), 0), (addr + len(hdr), len(data), 0)]
        else:
            pieces = [(addr, len(hdr) + len(data), 0)]
        self.put(1, head, pieces)

    def post_rx(self, head: int, size: int = 1600, split: bool = False) -> None:
        """Post one receive buffer of `size` bytes (header included)."""
        addr = self.buf(0, head)
        if split:
            self.put(0, head, [(addr, self.hdr_len, S.DESC_F_WRITE),
                               (addr + self.hdr_len, size - self.hdr_len, S.DESC_F_WRITE)])
        else:
            self.put(0, head, [(addr, size, S.DESC_F_WRITE)])

    def used(self, q: int) -> list[tuple[int, int]]:
        _, _, used = self.ring(q)
        idx = int.from_bytes(self.mem.peek(used + 2, 2), "little")
        out = []
        while self.used_seen[q] != idx:
            slot = used + 4 + 8 * (self.used_seen[q] % self.QSIZE)
            out.append(struct.unpack("<II", self.mem.peek(slot, 8)))
            self.used_seen[q] = (self.used_seen[q] + 1) & 0xFFFF
        return out

    def received(self, head: int, length: int) -> tuple[bytes, bytes]:
        """(header, frame) of a used receive entry."""
        data = self.mem.peek(self.buf(0, head), length)
        return data[:self.hdr_len], data[self.hdr_len:]


OFFLOADS = S.bit(N.F_CSUM) | S.bit(N.F_HOST_TSO4) | S.bit(N.F_HOST_TSO6)


def up(legacy: bool, mtu: int | None = None, drop: int = 0, **offer: bool):
    mem, sink, clock = GuardedMem(), Sink(), Clock()
    dev = N.VirtioNet(MAC, mtu, **offer)
    t = VirtioMmio(mem, IrqLine(sink, 1), clock, dev, legacy=legacy)
    logs: list[tuple[str, str]] = []
    t.log = lambda topic, msg: logs.append((topic, msg))
    sent: list[bytes] = []
    dev.transmit = sent.append
    drv = NetDriver(t, mem)
    st = drv.init(drop)
    assert st & S.S_DRIVER_OK and not st & S.S_NEEDS_RESET
    return t, dev, drv, clock, sink, sent, logs


# -- identity, features, configuration ------------------------------------------------

@BOTH
def test_identity_features_and_config(legacy: bool) -> None:
    t, dev, drv, *_ = up(legacy)
    assert drv.r(S.DEVICE_ID) == S.DEVICE_ID_NET
    offered = drv.offered()
    for f in (N.F_MAC, N.F_STATUS, S.F_RING_EVENT_IDX, S.F_RING_INDIRECT_DESC, N.F_CSUM,
              N.F_HOST_TSO4, N.F_HOST_TSO6):
        assert offered & S.bit(f)
    for f in (N.F_GUEST_CSUM, N.F_MRG_RXBUF, N.F_CTRL_VQ, N.F_MTU, N.F_GSO, N.F_GUEST_TSO4):
        assert not offered & S.bit(f)
    assert bool(offered & S.bit(N.F_ANY_LAYOUT)) == legacy
    assert bool(offered & S.bit(S.F_VERSION_1)) != legacy
    cfg = bytes(t.read(0x100 + i, 1) for i in range(12))
    assert cfg[:6] == MAC and int.from_bytes(cfg[6:8], "little") == N.S_LINK_UP
    assert int.from_bytes(cfg[8:10], "little") == 1


def test_host_mtu_is_offered_and_in_config() -> None:
    t, dev, drv, *_ = up(False, mtu=9000)
    assert drv.offered() & S.bit(N.F_MTU)
    assert t.read(0x10A, 2) == 9000
    with pytest.raises(ValueError, match="host_mtu"):
        N.VirtioNet(MAC, 67)
    with pytest.raises(ValueError, match="unicast"):
        N.VirtioNet(BCAST, None)


# -- transmit ----------------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("split", [True, False], ids=["two-descs", "one-desc"])
def test_transmit_strips_the_header_pads_and_appends_the_fcs(legacy: bool, split: bool) -> None:
    t, dev, drv, clock, sink, sent, _ = up(legacy)
    data = frame(dst=PEER, src=MAC, body=b"hello")      # 19 bytes: padded to 60
    drv.send(data, split=split)
    assert sent == []                                   # a doorbell only schedules
    run_clock(clock)
    assert len(sent) == 1
    assert strip_fcs(sent[0]) == data + bytes(60 - len(data))
    assert drv.used(1) == [(0, 0)]
    assert sink.edges == 1
    assert dev.stats()["tx_frames"] == 1 and dev.stats()["tx_bytes"] == 60


def test_offloads_are_offered_as_qemus_properties_say() -> None:
    """csum=off takes TSO with it (spec 5.1.3.1: HOST_TSO4 needs CSUM)."""
    for offer, want in (({"csum": False}, 0),
                        ({"tso4": False}, S.bit(N.F_CSUM) | S.bit(N.F_HOST_TSO6)),
                        ({"tso6": False}, S.bit(N.F_CSUM) | S.bit(N.F_HOST_TSO4)),
                        ({}, OFFLOADS)):
        _, _, drv, *_ = up(False, **offer)
        assert drv.offered() & OFFLOADS == want, offer


def test_offload_headers_not_negotiated_and_bad_lengths_are_dropped_and_counted() -> None:
    t, dev, drv, clock, _, sent, logs = up(True, drop=OFFLOADS)
    drv.send(frame(), header=bytes([N.HDR_F_NEEDS_CSUM]) + bytes(9))
    run_clock(clock)
    drv.send(frame(), header=bytes([0, 1]) + bytes(8), head=2)        # GSO_TCPV4
    run_clock(clock)
    drv.send(b"\x01" * 10, head=4)                                    # shorter than 14
    run_clock(clock)
    drv.send(frame(body=bytes(1600)), head=6)                          # over 1500 + 18
    run_clock(clock)
    assert sent == []
    st = dev.stats()
    assert (st["tx_bad_header"], st["tx_bad_len"]) == (2, 2)
    assert len(drv.used(1)) == 4                     # every chain is given back
    assert any("checksum offload (CSUM) was not negotiated" in m for _, m in logs)
    assert any("segmentation type 1 was not negotiated" in m for _, m in logs)
    assert not t.broken


# -- receive -------------------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("split", [False, True], ids=["one-desc", "two-descs"])
def test_receive_writes_header_and_frame(legacy: bool, split: bool) -> None:
    t, dev, drv, clock, sink, _, _ = up(legacy)
    drv.post_rx(0, split=split)
    run_clock(clock)
    data = frame(body=bytes(range(200)))
    dev.receive(append_fcs(data))
    ((head, length),) = drv.used(0)
    hdr, got = drv.received(head, length)
    assert head == 0 and length == drv.hdr_len + len(data) and got == data
    assert hdr == (bytes(10) if legacy else bytes(10) + b"\x01\x00")   # num_buffers 1
    assert sink.edges == 1


def test_frames_wait_for_buffers_in_order_as_in_qemus_net_queue() -> None:
    t, dev, drv, clock, _, _, _ = up(False)
    frames = [frame(body=bytes([i]) * 60) for i in range(3)]
    for f in frames:
        dev.receive(append_fcs(f))
    assert drv.used(0) == [] and len(dev.backlog) == 3
    drv.post_rx(0)
    drv.post_rx(2)
    run_clock(clock)
    got = [drv.received(h, n)[1] for h, n in drv.used(0)]
    assert got == frames[:2] and len(dev.backlog) == 1
    drv.post_rx(4)
    run_clock(clock)
    assert [drv.received(h, n)[1] for h, n in drv.used(0)] == frames[2:]
    st = dev.stats()
    assert st["rx_waited"] == 3 and st["rx_backlog_max"] == 3 and st["rx_frames"] == 3


def test_frames_before_driver_ok_wait_and_a_full_backlog_drops(monkeypatch) -> None:
    mem, sink, clock = GuardedMem(), Sink(), Clock()
    dev = N.VirtioNet(MAC)
    t = VirtioMmio(mem, IrqLine(sink, 1), clock, dev, legacy=True)
    monkeypatch.setattr(N, "BACKLOG_MAX", 2)
    for i in range(3):
        dev.receive(append_fcs(frame(body=bytes([i]) * 60)))
    assert len(dev.backlog) == 2 and dev.stats()["rx_backlog_full"] == 1
    drv = NetDriver(t, mem)
    drv.init()
    drv.post_rx(0)
    run_clock(clock)
    assert [drv.received(h, n)[1][14] for h, n in drv.used(0)] == [0]


def test_bad_fcs_and_too_small_buffers() -> None:
    t, dev, drv, clock, _, _, _ = up(True)
    bad = bytearray(append_fcs(frame()))
    bad[20] ^= 1
    dev.receive(bytes(bad))
    assert dev.stats()["rx_crc_errors"] == 1 and not dev.backlog
    drv.post_rx(0, size=40)                      # too small for a 64-byte frame
    run_clock(clock)
    dev.receive(append_fcs(frame()))
    assert drv.used(0) == [] and dev.stats()["rx_too_small"] == 1
    small = frame(body=b"")[:14] + bytes(10)     # 24 bytes + 10 header fit in 40
    dev.receive(append_fcs(small))
    ((head, length),) = drv.used(0)              # the chain stayed available
    assert drv.received(head, length)[1] == small


# -- hostile guest ------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["rx-readable-only", "tx-writable-only", "tx-short-header"])
def test_broken_chains_set_needs_reset(case: str) -> None:
    t, dev, drv, clock, sink, sent, logs = up(False)
    if case == "rx-readable-only":
        drv.put(0, 0, [(drv.buf(0, 0), 100, 0)])
        run_clock(clock)
        dev.receive(append_fcs(frame()))
    elif case == "tx-writable-only":
        drv.put(1, 0, [(drv.buf(1, 0), 100, S.DESC_F_WRITE)])
        run_clock(clock)
    else:
        drv.put(1, 0, [(drv.buf(1, 0), 8, 0)])
        run_clock(clock)
    assert t.broken and drv.r(S.STATUS) & S.S_NEEDS_RESET
    assert sent == [] and dev.stats()["rx_frames"] == 0
    assert any("needs reset" in m for _, m in logs)
    drv.init()                                   # a reset recovers
    assert not t.broken


# -- on the segment -------------------------------------------------------------------------

def test_an_aoe_query_crosses_the_segment_and_the_answer_comes_back() -> None:
    """The device on a segment port talks to the embedded AoE target."""
    mem, sink, clock = GuardedMem(), Sink(), Clock()
    dev = N.VirtioNet(MAC)
    t = VirtioMmio(mem, IrqLine(sink, 1), clock, dev, legacy=True)
    seg = Segment(clock, seed=1)
    dev.transmit = seg.attach(dev, "n0").send
    target = AoETarget(MemoryStore(2048), shelf=0, slot=0, mtu=1500, clock=clock)
    target.attach(seg, "e0.0")
    drv = NetDriver(t, mem)
    drv.init()
    for i in range(4):
        drv.post_rx(2 * i)
    # AoE config query to the broadcast address: ver 1, shelf 0xffff, slot 0xff, cmd 1
    query = BCAST + MAC + (0x88A2).to_bytes(2, "big") + bytes([0x10, 0]) + \
        (0xFFFF).to_bytes(2, "big") + bytes([0xFF, 1]) + (7).to_bytes(4, "big") + bytes(8)
    drv.send(query)
    run_clock(clock)
    replies = [drv.received(h, n)[1] for h, n in drv.used(0)]
    assert len(replies) == 1
    reply = replies[0]
    assert reply[:6] == MAC and reply[12:14] == b"\x88\xa2"
    assert reply[14] & 0x08                           # the response flag
    # shelf 0, slot 0 answered the config command with the query's tag
    assert (reply[16:18], reply[18], reply[19], reply[20:24]) == \
        (b"\0\0", 0, 1, (7).to_bytes(4, "big"))
    assert seg.stats()["ports"]["n0"]["rx_frames"] == 1


def test_the_machine_puts_each_nic_in_a_slot_and_on_its_own_port() -> None:
    """Slots as QEMU places them; each NIC its own segment port, behind its
    netdev's netem or else --net's; the report lists the devices."""
    other = bytes.fromhex("020000000009")
    m = Machine(MachineConfig(nics=(NicSpec("n0"), NicSpec("n1", mac=other, slot=0,
                                                           netem="loss 50%")),
                              net=NetConfig(net="delay 1ms")))
    assert isinstance(m.virtio[7].device, N.VirtioNet) and m.virtio[7].device.mac == MAC
    assert isinstance(m.virtio[0].device, N.VirtioNet) and m.virtio[0].device.mac == other
    ports = m.network.segment.ports
    assert ports["n0"].up.spec.delay_ns == 1_000_000 and ports["n0"].up.spec.loss == 0
    assert ports["n1"].down.spec.loss == 0.5 and ports["n1"].down.spec.delay_ns == 0
    assert set(virtio_figures(m)) == {"virtio0", "virtio7"}
    assert virtio_figures(m)["virtio7"]["device"] == "virtio-net"
    text = info_net(m)                                    # the debugger's `info net`
    assert "virtio-net virtio7 52:54:00:12:34:57 mtu 1500" in text
    assert "virtio-net virtio0 02:00:00:00:00:09" in text and "queues not set up" in text
    assert "port n0:" in text and "port n1:" in text
