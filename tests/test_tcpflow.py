"""tcpflow.py on captures written here with scapy: data segments, one
retransmission, acknowledgments at known times - the figures come out as
counted by hand; other traffic is ignored; a 64-byte snap length is enough."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter

from emu.tools import tcpflow

C, S = ("10.0.2.15", 678), ("10.0.2.2", 2049)


def seg(src, dst, seq: int, ack: int, n: int, flags: str = "A") -> bytes:
    return bytes(Ether() / IP(src=src[0], dst=dst[0]) /
                 TCP(sport=src[1], dport=dst[1], seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
                     flags=flags) / (b"d" * n))


def write(path, records: list[tuple[int, bytes]], snaplen: int = 64) -> None:
    with PcapWriter(str(path), nano=True, snaplen=snaplen) as w:
        for t_us, frame in records:
            pkt = Ether(frame)
            pkt.time = t_us / 1e6
            w.write(pkt)


def test_segments_retransmits_round_trips_and_rate(tmp_path) -> None:
    isn = 0xFFFFFF00                     # wraps past 2**32 on the way
    p = tmp_path / "nfs.pcap"
    write(p, [
        (0, seg(C, S, isn, 1, 1000)),                  # 1st segment at 0
        (10, seg(C, S, isn + 1000, 1, 1000)),          # 2nd at 10 us
        (100, seg(S, C, 1, isn + 1000, 0)),            # acks the 1st: 100 us
        (150, seg(S, C, 1, isn + 1000, 200)),          # a reply, 200 bytes (dup ack)
        (300, seg(C, S, isn + 1000, 201, 1000)),       # the 2nd again: a retransmit,
                                                       # acking the reply: 150 us
        (400, seg(S, C, 201, isn + 2000, 0)),          # acks it: no sample (Karn)
        (450, bytes(Ether() / IP(src="10.0.2.15", dst="10.0.2.9") /
                    TCP(sport=5000, dport=80) / (b"x" * 500))),   # another port
        (500, seg(C, S, isn + 2000, 201, 500, "PA")),  # 3rd
        (520, seg(S, C, 201, isn + 2500, 0)),          # acks it: 20 us
    ])
    flow = tcpflow.analyze(str(p))
    assert (flow.segments, flow.retransmits) == (4, 1)      # 3 from the client, 1 reply
    assert flow.bytes_moved == 1000 + 1000 + 200 + 500
    assert (flow.first_ns, flow.last_ns) == (0, 500_000)
    assert flow.rtt_mean_ns == (100_000 + 150_000 + 20_000) / 3
    assert abs(flow.mb_per_s - 2700 / 1e6 / 0.0005) < 1e-9


def test_an_empty_or_foreign_capture_gives_zeros(tmp_path) -> None:
    p = tmp_path / "none.pcap"
    write(p, [(0, bytes(Ether() / IP() / TCP(sport=1, dport=2) / b"x"))])
    flow = tcpflow.analyze(str(p))
    assert (flow.segments, flow.bytes_moved, flow.mb_per_s, flow.rtt_mean_ns) == (0, 0, 0.0, 0.0)
