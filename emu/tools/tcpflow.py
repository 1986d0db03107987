"""What a TCP conversation (NFS's, on port 2049) did on the wire, read from
a pcap: data moved, retransmitted segments, round trips - the figures
`emu experiment linux-vs-emu` puts beside aoeflow.py's for AoE, so that
swap over NFS and over AoE are read off the same kind of capture.

Only the headers are needed (emu's default snap length of 64 bytes keeps
Ethernet, IPv4 and the first 20 bytes of TCP): a segment's payload length
comes from the IP total length (RFC 791) minus the IP and TCP header
lengths (RFC 793's data offset). Per direction, sequence numbers are
taken relative to the first segment seen (mod 2**32):

- a segment whose data ends at or below the highest end already sent is
  a retransmission (in part or whole);
- a round trip runs from a segment's (first) transmission to the first
  acknowledgment from the other side that covers it; segments that were
  retransmitted give no sample (Karn's rule);
- data moved counts each byte once, both directions; the span runs from
  the first to the last data segment.

Times are the capture's (virtual time in emu's captures).

Layer: tools.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from emu.net.pcap import read_frames

ETH_P_IP = 0x0800
IPPROTO_TCP = 6
NFS_PORT = 2049


@dataclass(frozen=True)
class TcpFlow:
    """The conversations with `port` in one capture, both directions."""

    segments: int             # data segments, first transmissions
    retransmits: int          # data segments that resent bytes already sent
    bytes_moved: int          # payload bytes, each counted once
    first_ns: int
    last_ns: int
    rtt_mean_ns: float
    rtt_p95_ns: float

    @property
    def span_ns(self) -> int:
        """From the first data segment to the last."""
        return max(0, self.last_ns - self.first_ns)

    @property
    def mb_per_s(self) -> float:
        """MB (10^6 bytes) moved per second of the capture's time."""
        return self.bytes_moved / 1e6 / (self.span_ns / 1e9) if self.span_ns else 0.0


class _Direction:
    """One direction of one connection: what was sent and is unacknowledged."""

    def __init__(self, isn: int) -> None:
        self.isn = isn
        self.high = 0                                   # highest relative end sent
        self.pending: list[tuple[int, int, bool]] = []  # (end, first sent ns, resent)


def analyze(path: str, port: int = NFS_PORT) -> TcpFlow:
    """Read the capture at `path` (module docstring). Raises OSError for a
    file that cannot be read, scapy's Scapy_Exception for one that is not a pcap."""
    dirs: dict[tuple, _Direction] = {}
    segments = retransmits = moved = 0
    rtts: list[int] = []
    first = last = None
    for t, f in read_frames(path):
        if len(f) < 54 or int.from_bytes(f[12:14], "big") != ETH_P_IP or f[23] != IPPROTO_TCP:
            continue
        ihl = (f[14] & 0x0F) * 4
        l4 = 14 + ihl
        if len(f) < l4 + 14:
            continue
        sport, dport = int.from_bytes(f[l4:l4 + 2], "big"), int.from_bytes(f[l4 + 2:l4 + 4], "big")
        if port not in (sport, dport):
            continue
        key = (f[26:30], sport, f[30:34], dport)
        back = (f[30:34], dport, f[26:30], sport)
        seq = int.from_bytes(f[l4 + 4:l4 + 8], "big")
        ack = int.from_bytes(f[l4 + 8:l4 + 12], "big")
        length = int.from_bytes(f[16:18], "big") - ihl - (f[l4 + 12] >> 4) * 4
        other = dirs.get(back)
        if other is not None and f[l4 + 13] & 0x10:      # ACK: what the other side sent
            acked = (ack - other.isn) & 0xFFFFFFFF
            keep = []
            for end, sent, resent in other.pending:
                if end <= acked:
                    if not resent:
                        rtts.append(t - sent)
                else:
                    keep.append((end, sent, resent))
            other.pending = keep
        if length <= 0:
            continue
        d = dirs.get(key)
        if d is None:
            d = dirs[key] = _Direction(seq)
        start = (seq - d.isn) & 0xFFFFFFFF
        end = start + length
        first = t if first is None else first
        last = t
        if end <= d.high or start < d.high:
            retransmits += 1
            moved += max(0, end - d.high)
            d.pending = [(e, s, r or (start < e)) for e, s, r in d.pending]
        else:
            segments += 1
            moved += length
            d.pending.append((end, t, False))
        d.high = max(d.high, end)
    rtts.sort()
    return TcpFlow(segments, retransmits, moved, first or 0, last or 0,
                   statistics.fmean(rtts) if rtts else 0.0,
                   float(rtts[min(len(rtts) - 1, int(0.95 * len(rtts)))]) if rtts else 0.0)
