"""What an AoE initiator did on the wire, read from a pcap (emu's --pcap, or
any capture of Ethernet frames): requests and their replies, retransmits,
round trips, the window of requests in flight, and the data moved - the
same figures for our kernel's initiator and Linux's aoe driver, which keep
different counters (or none) of their own.

Only ATA commands (AoE command 0) count; the AoE and ATA headers are the
first 34 bytes of a frame (AoE r10, sections 3.1 and 3.2), so the capture
may be cut at emu's default snap length of 64 bytes:

    14 ver/flags  15 error  16 major (2)  18 minor  19 command  20 tag (4)
    24 aflags (0x01 write)  25 err/feature  26 sector count  27 cmd/status
    28 LBA (6, least significant byte first)

A request is identified by what it asks for - initiator MAC, target, read
or write, LBA, sector count - not by its tag, since Linux's driver gives a
retransmission a new tag: sending a request again while it is unanswered
is a retransmit. A reply resolves the request its tag names (any tag the
request was sent with). A round trip is measured from the last
transmission to the reply (so a retransmitted request's sample may be
short: Karn's ambiguity, reported as is). Times are the capture's
(virtual time in emu's captures).

Layer: tools.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from emu.net.pcap import read_frames

ETH_P_AOE = 0x88A2
F_RESPONSE = 0x08
AFL_WRITE = 0x01
HEADERS = 34                  # Ethernet + AoE + ATA headers


@dataclass(frozen=True)
class Flow:
    """The initiator's conversation with its targets, in one capture."""

    requests: int             # distinct requests (first transmissions)
    retransmits: int          # transmissions of a request already in flight
    replies: int              # replies that resolved a request
    unanswered: int           # requests still in flight at the end
    bytes_written: int        # data sectors of write requests x 512
    bytes_read: int           # data sectors of answered read requests x 512
    first_ns: int             # the first request
    last_ns: int              # the last request or reply
    rtt_mean_ns: float
    rtt_p95_ns: float
    window_max: int           # the most requests in flight at once
    window_mean: float        # requests in flight, averaged over transmissions

    @property
    def span_ns(self) -> int:
        """From the first request to the last request or reply."""
        return max(0, self.last_ns - self.first_ns)

    @property
    def mb_per_s(self) -> float:
        """MB (10^6 bytes) moved per second of the capture's time."""
        moved = self.bytes_written + self.bytes_read
        return moved / 1e6 / (self.span_ns / 1e9) if self.span_ns else 0.0


def analyze(path: str) -> Flow:
    """Read the capture at `path` (see the module docstring). Raises
    OSError for a file that cannot be read, scapy's Scapy_Exception for one
    that is not a pcap."""
    in_flight: dict[tuple, int] = {}      # request -> time of its last transmission
    by_tag: dict[tuple, tuple] = {}       # (target, tag) -> request
    requests = retransmits = replies = written = read = 0
    rtts: list[int] = []
    windows: list[int] = []
    first = last = None
    for t, f in read_frames(path):
        if len(f) < HEADERS or int.from_bytes(f[12:14], "big") != ETH_P_AOE or f[19] != 0:
            continue
        target = (f[16:18], f[18])
        tag = (target, f[20:24])
        if not f[14] & F_RESPONSE:
            req = (f[6:12], target, f[24] & AFL_WRITE, f[28:34], f[26])
            if req in in_flight:
                retransmits += 1
            else:
                requests += 1
                if f[24] & AFL_WRITE:
                    written += 512 * f[26]
            in_flight[req] = t
            by_tag[tag] = req
            windows.append(len(in_flight))
            first = t if first is None else first
            last = t if last is None else max(last, t)
            continue
        req = by_tag.pop(tag, None)
        if req is None or req not in in_flight:
            continue                      # a duplicate, or the answer to a resend
        rtts.append(t - in_flight.pop(req))
        replies += 1
        if not req[2]:
            read += 512 * req[4]
        last = t if last is None else max(last, t)
    rtts.sort()
    return Flow(requests, retransmits, replies, len(in_flight), written, read,
                first or 0, last or 0,
                statistics.fmean(rtts) if rtts else 0.0,
                float(rtts[min(len(rtts) - 1, int(0.95 * len(rtts)))]) if rtts else 0.0,
                max(windows, default=0), statistics.fmean(windows) if windows else 0.0)
