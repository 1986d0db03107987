"""What a NIC does for a driver that hands it unfinished frames: complete a
partial checksum (virtio's NEEDS_CSUM, Linux's CHECKSUM_PARTIAL) and cut a
TCP super-frame into MSS-sized segments (virtio's GSO_TCPV4/TCPV6, TSO) -
what QEMU's virtio-net leaves to a tap peer's vnet header and the host
kernel does (net/core/gso.c, tcp_gso_segment), here done on the way to
emu's segment.

Checksums: the Internet checksum (RFC 1071), the ones' complement of the
ones' complement sum of 16-bit words. The driver has already put the
pseudo-header sum in the checksum field (virtio 1.2, 5.1.6.2: "the device
MUST ... compute the checksum from csum_start to the end and store it at
csum_start + csum_offset").

Segmentation keeps the headers (Ethernet, IP, TCP: parsed here, since a
driver's `hdr_len` is only a hint - Linux writes skb_headlen() there) on
each segment and `gso_size` payload bytes after them; per segment:
IPv4 total length, ID (+1 each) and header checksum; IPv6 payload length;
TCP sequence number (+ bytes before it); FIN and PSH only on the last
segment, CWR only on the first (RFC 3168, as tcp_gso_segment); a fresh TCP
checksum over the pseudo-header (RFC 793 / RFC 8200 8.1).

Errors are OffloadError (one line): the caller drops the frame and counts.

Layer: net (pure functions, no imports above the standard library).
"""

from __future__ import annotations

import struct

ETH_HLEN = 14
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_TCP = 6
TCP_FIN, TCP_PSH, TCP_CWR = 0x01, 0x08, 0x80
MAX_SEGMENTS = 64 * 1024        # a 64 KiB frame cut into 1-byte segments at worst


class OffloadError(ValueError):
    """A frame whose offload request cannot be carried out (one line)."""


def ones_sum(data: bytes, start: int = 0) -> int:
    """The 16-bit ones' complement sum of `data` (odd length: padded with a
    zero byte) plus `start`. A big integer modulo 0xFFFF is that sum, since
    2**16 = 1 (mod 0xFFFF) - computed in C, not word by word."""
    if len(data) & 1:
        data += b"\0"
    total = int.from_bytes(data, "big") % 0xFFFF + start
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    # the modulus maps a sum of 0xFFFF to 0: the same number in ones' complement
    return total


def checksum(data: bytes, start: int = 0) -> int:
    """The Internet checksum of `data` seeded with `start` (RFC 1071)."""
    return ~ones_sum(data, start) & 0xFFFF


def complete_checksum(frame: bytes, csum_start: int, csum_offset: int) -> bytes:
    """The frame with the checksum over frame[csum_start:] stored at
    csum_start + csum_offset (the field holds the pseudo-header sum).
    Raises OffloadError if the field is not inside the frame."""
    at = csum_start + csum_offset
    if csum_start >= len(frame) or at + 2 > len(frame):
        raise OffloadError(f"checksum at {csum_start}+{csum_offset} is outside the "
                           f"{len(frame)}-byte frame")
    value = checksum(frame[csum_start:])
    return frame[:at] + struct.pack(">H", value) + frame[at + 2:]


def _pseudo_v4(ip: bytes, tcp_len: int) -> int:
    return ones_sum(ip[12:20] + struct.pack(">HH", IPPROTO_TCP, tcp_len))


def _pseudo_v6(ip: bytes, tcp_len: int) -> int:
    return ones_sum(ip[8:40] + struct.pack(">IxxxB", tcp_len, IPPROTO_TCP))


def segment_tcp(frame: bytes, gso_size: int, ipv6: bool) -> list[bytes]:
    """Cut the TCP super-frame `frame` into segments of `gso_size` payload
    bytes, each a complete frame with its checksums. Raises OffloadError
    for a frame that is not Ethernet + IPv4 (`ipv6` False) or IPv6 + TCP
    with whole headers, or a zero gso_size."""
    if gso_size <= 0:
        raise OffloadError("segmentation with gso_size 0")
    if len(frame) < ETH_HLEN + 40:
        raise OffloadError(f"a {len(frame)}-byte frame has no room for IP and TCP headers")
    ethertype = int.from_bytes(frame[12:14], "big")
    l3 = ETH_HLEN
    if ipv6:
        if ethertype != ETH_P_IPV6 or frame[l3] >> 4 != 6 or frame[l3 + 6] != IPPROTO_TCP:
            raise OffloadError("TCPV6 segmentation of a frame that is not IPv6 + TCP")
        l4 = l3 + 40
    else:
        ihl = (frame[l3] & 0x0F) * 4
        if ethertype != ETH_P_IP or frame[l3] >> 4 != 4 or ihl < 20 \
                or frame[l3 + 9] != IPPROTO_TCP:
            raise OffloadError("TCPV4 segmentation of a frame that is not IPv4 + TCP")
        l4 = l3 + ihl
    doff = (frame[l4 + 12] >> 4) * 4 if l4 + 20 <= len(frame) else 0
    hdr_len = l4 + doff
    if doff < 20 or hdr_len > len(frame):
        raise OffloadError(f"TCP header of {doff} bytes at {l4} in a {len(frame)}-byte frame")
    payload = frame[hdr_len:]
    count = max(1, -(-len(payload) // gso_size))
    if count > MAX_SEGMENTS:
        raise OffloadError(f"{count} segments")
    seq0 = int.from_bytes(frame[l4 + 4:l4 + 8], "big")
    ip_id0 = int.from_bytes(frame[l3 + 4:l3 + 6], "big")
    flags0 = frame[l4 + 13]
    out = []
    for i in range(count):
        chunk = payload[i * gso_size:(i + 1) * gso_size]
        head = bytearray(frame[:hdr_len])
        flags = flags0
        if i < count - 1:
            flags &= ~(TCP_FIN | TCP_PSH)
        if i > 0:
            flags &= ~TCP_CWR
        head[l4 + 13] = flags
        struct.pack_into(">I", head, l4 + 4, (seq0 + i * gso_size) & 0xFFFFFFFF)
        tcp_len = hdr_len - l4 + len(chunk)
        if ipv6:
            struct.pack_into(">H", head, l3 + 4, tcp_len)
            pseudo = _pseudo_v6(bytes(head[l3:l4]), tcp_len)
        else:
            struct.pack_into(">HH", head, l3 + 2, l4 - l3 + tcp_len, (ip_id0 + i) & 0xFFFF)
            struct.pack_into(">H", head, l3 + 10, 0)
            struct.pack_into(">H", head, l3 + 10, checksum(bytes(head[l3:l4])))
            pseudo = _pseudo_v4(bytes(head[l3:l4]), tcp_len)
        struct.pack_into(">H", head, l4 + 16, 0)
        struct.pack_into(">H", head, l4 + 16, checksum(bytes(head[l4:]) + chunk, pseudo))
        out.append(bytes(head) + chunk)
    return out
