"""Transmit offloads (emu/net/offload.py, used by virtio-net's CSUM and
HOST_TSO4/6) checked against scapy, which builds and checksums the same
packets its own way: a completed partial checksum is the one scapy
computes; a TCP super-frame cut into segments gives segments scapy finds
valid (IP length, ID, header checksum; TCP sequence numbers, flags and
checksum) whose payloads add up to the original; bad requests are one-line
OffloadErrors, never other exceptions; and the device path end to end:
what a Linux driver hands over (NEEDS_CSUM, GSO_TCPV4) leaves the device
as wire-ready frames."""

from __future__ import annotations

import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from emu.devices.virtio import net as N
from emu.net.fcs import strip_fcs
from emu.net.offload import (
    OffloadError,
    checksum,
    complete_checksum,
    ones_sum,
    segment_tcp,
)
from tests.test_virtio_net import up
from tests.test_virtio_support import run_clock

MAC_A, MAC_B = "52:54:00:12:34:57", "1a:84:b8:2d:82:0d"


def tcp_frame(payload: bytes, *, v6: bool = False, flags: str = "PA", seq: int = 1000,
              ip_id: int = 7, options: list | None = None) -> bytes:
    ip = IPv6(src="fd00::15", dst="fd00::2") if v6 else IP(src="10.0.2.15", dst="10.0.2.2",
                                                            id=ip_id)
    pkt = Ether(src=MAC_A, dst=MAC_B) / ip / TCP(sport=678, dport=2049, seq=seq, ack=5,
                                                 flags=flags, options=options or [])
    return bytes(pkt / payload)


def partial(frame: bytes, v6: bool = False) -> tuple[bytes, int, int]:
    """The frame as Linux hands it over with CHECKSUM_PARTIAL: the TCP
    checksum field holds the (uncomplemented) pseudo-header sum."""
    l4 = 14 + (40 if v6 else 20)
    tcp_len = len(frame) - l4
    if v6:
        pseudo = frame[22:54] + struct.pack(">IxxxB", tcp_len, 6)
    else:
        pseudo = frame[26:34] + struct.pack(">HH", 6, tcp_len)
    seed = ones_sum(pseudo)
    out = frame[:l4 + 16] + struct.pack(">H", seed) + frame[l4 + 18:]
    return out, l4, 16


def scapy_valid(frame: bytes) -> bool:
    """scapy recomputes every checksum of the packet: are they the ones it carries?"""
    pkt = Ether(frame)
    fresh = pkt.copy()
    for layer in (IP, TCP):
        if layer in fresh:
            del fresh[layer].chksum
    if IP in fresh:
        del fresh[IP].len
    if IPv6 in fresh:
        del fresh[IPv6].plen
    return bytes(Ether(bytes(fresh))) == frame


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("size", [0, 1, 2, 1459, 8948])
def test_a_partial_checksum_is_completed_as_scapy_computes_it(v6: bool, size: int) -> None:
    whole = tcp_frame(bytes(range(256)) * (size // 256) + bytes(size % 256), v6=v6)
    half, start, offset = partial(whole, v6)
    assert complete_checksum(half, start, offset) == whole


def test_ones_sum_agrees_with_word_by_word() -> None:
    data = bytes(range(255)) * 3
    words = sum(int.from_bytes((data + b"\0")[i:i + 2], "big") for i in range(0, len(data), 2))
    while words >> 16:
        words = (words & 0xFFFF) + (words >> 16)
    assert ones_sum(data) % 0xFFFF == words % 0xFFFF
    assert checksum(b"\x45\x00\x00\x73\x00\x00\x40\x00\x40\x11\x00\x00\xc0\xa8\x00\x01"
                    b"\xc0\xa8\x00\xc7") == 0xB861          # RFC 1071's usual example


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("size,mss", [(20000, 8948), (17896, 8948), (5, 1448), (1448 * 45, 1448)])
def test_a_super_frame_becomes_valid_segments(v6: bool, size: int, mss: int) -> None:
    payload = bytes((i * 7) & 0xFF for i in range(size))
    big = tcp_frame(payload, v6=v6, flags="FPAC", seq=0xFFFFF000,
                    options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
    segs = segment_tcp(big, mss, ipv6=v6)
    assert len(segs) == -(-size // mss)
    got = b""
    for i, seg in enumerate(segs):
        assert scapy_valid(seg), i
        pkt = Ether(seg)
        tcp = pkt[TCP]
        assert tcp.seq == (0xFFFFF000 + i * mss) & 0xFFFFFFFF
        last, first = i == len(segs) - 1, i == 0
        assert bool(tcp.flags.F) == last and bool(tcp.flags.P) == last
        assert bool(tcp.flags.C) == first and tcp.flags.A
        if not v6:
            assert pkt[IP].id == 7 + i
        got += bytes(tcp.payload)
        assert len(bytes(tcp.payload)) <= mss
    assert got == payload


@pytest.mark.parametrize("make,why", [
    (lambda: bytes(Ether() / IP() / UDP() / (b"x" * 100)), "not IPv4 + TCP"),
    (lambda: tcp_frame(b"x" * 100, v6=True), "not IPv4 + TCP"),
    (lambda: tcp_frame(b"x" * 100)[:40], "no room"),
    (lambda: tcp_frame(b"")[:60], "TCP header of"),
])
def test_frames_that_cannot_be_segmented_are_refused(make, why: str) -> None:
    frame = make()
    if why == "TCP header of":       # a TCP data offset past the frame's end
        frame = frame[:46] + bytes([0xF0]) + frame[47:]
    with pytest.raises(OffloadError, match=re.escape(why)):
        segment_tcp(frame, 1448, ipv6=False)
    with pytest.raises(OffloadError, match="gso_size 0"):
        segment_tcp(tcp_frame(b"x"), 0, ipv6=False)
    with pytest.raises(OffloadError, match="outside"):
        complete_checksum(b"x" * 40, 30, 16)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 2000), st.booleans(), st.integers(0, 300),
       st.integers(0, 300))
def test_any_bytes_give_frames_or_offload_errors(junk: bytes, mss: int, v6: bool,
                                                 start: int, offset: int) -> None:
    for frame in (junk, tcp_frame(b"y" * 50, v6=v6)[:14 + len(junk) % 80] + junk):
        try:
            segs = segment_tcp(frame, mss, ipv6=v6)
            assert all(len(s) <= len(frame) for s in segs)
        except OffloadError:
            pass
        try:
            assert len(complete_checksum(frame, start, offset)) == len(frame)
        except OffloadError:
            pass


# -- the device: what Linux's virtio_net hands over leaves ready for the wire ----------

def header(flags: int, gso: int, hdr_len: int, gso_size: int, start: int, offset: int,
           legacy: bool) -> bytes:
    h = struct.pack("<BBHHHH", flags, gso, hdr_len, gso_size, start, offset)
    return h if legacy else h + b"\0\0"


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "modern"])
def test_the_device_completes_checksums_and_cuts_super_frames(legacy: bool) -> None:
    t, dev, drv, clock, _, sent, _ = up(legacy, mtu=9000)
    whole = tcp_frame(b"z" * 3000)
    half, start, offset = partial(whole)
    drv.send(half, header=header(N.HDR_F_NEEDS_CSUM, N.GSO_NONE, 0, 0, start, offset, legacy))
    run_clock(clock)
    big = tcp_frame(bytes(range(256)) * 50, flags="PA")           # 12,800 bytes of payload
    bhalf, start, offset = partial(big)
    # Linux writes skb_headlen() as hdr_len: a hint, larger than the headers
    drv.send(bhalf, header=header(N.HDR_F_NEEDS_CSUM, N.GSO_TCPV4, 200, 4000, start, offset,
                                  legacy), head=2)
    run_clock(clock)
    frames = [strip_fcs(w) for w in sent]
    assert frames[0] == whole
    assert len(frames) == 1 + 4 and all(scapy_valid(f) for f in frames[1:])
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in frames[1:]) == bytes(range(256)) * 50
    st = dev.stats()
    assert (st["tx_csum"], st["tx_segmented"], st["tx_frames"]) == (1, 1, 5)
    assert st["tx_bad_header"] == 0 and not t.broken


def test_ecn_udp_and_non_tcp_super_frames_are_dropped_and_counted() -> None:
    t, dev, drv, clock, _, sent, logs = up(True, mtu=9000)
    for k, (gso, frame) in enumerate(((N.GSO_TCPV4 | N.GSO_ECN, tcp_frame(b"e" * 5000)),
                                      (N.GSO_UDP, bytes(Ether() / IP() / UDP() / (b"u" * 5000))),
                                      (N.GSO_TCPV4, bytes(Ether() / IP() / UDP() / (b"u" * 50))),
                                      (N.GSO_TCPV6, tcp_frame(b"4" * 5000)))):
        drv.send(frame, header=header(N.HDR_F_NEEDS_CSUM, gso, 0, 1448, 34, 16, True),
                 head=2 * k)
        run_clock(clock)
    assert sent == [] and dev.stats()["tx_bad_header"] == 4 and not t.broken
    assert any("ECN" in m for _, m in logs) and any("type 3" in m for _, m in logs)
