"""aoeflow reads an initiator's AoE conversation from a pcap: requests told
apart by what they ask for (Linux gives a retransmission a new tag), the
reply that resolves one, round trips from the last transmission, the window
in flight, data moved; other frames and AoE config commands are ignored."""

from __future__ import annotations

from emu.net.pcap import PcapTap
from emu.tools.aoeflow import analyze

INI = bytes.fromhex("525400123457")
TGT = bytes.fromhex("02ae00000000")


def ata(tag: int, lba: int, scnt: int, write: bool, reply: bool, cmd: int = 0) -> bytes:
    src, dst = (TGT, INI) if reply else (INI, TGT)
    aoe = bytes([0x10 | (0x08 if reply else 0), 0]) + (0).to_bytes(2, "big") + bytes([0, cmd]) \
        + tag.to_bytes(4, "big")
    hdr = bytes([0x01 if write else 0, 0, scnt, 0x34 if write else 0x24]) \
        + lba.to_bytes(6, "little") + bytes(2)
    return dst + src + (0x88A2).to_bytes(2, "big") + aoe + hdr + bytes(64)


def test_requests_retransmits_round_trips_and_window(tmp_path):
    path = str(tmp_path / "flow.pcap")
    tap = PcapTap(path)
    us = 1000
    tap(0, ata(1, 0, 8, True, False))                  # write 4 KiB
    tap(10 * us, ata(2, 8, 8, False, False))           # read 4 KiB
    tap(20 * us, b"\xff" * 6 + INI + b"\x08\x00" + bytes(50))        # not AoE
    tap(30 * us, ata(9, 0, 0, False, False, cmd=1))    # a config query: not ATA
    tap(100 * us, ata(1, 0, 8, True, True))            # write answered: 100 us
    tap(500 * us, ata(3, 8, 8, False, False))          # the read again, a new tag
    tap(600 * us, ata(2, 8, 8, False, True))           # the first read's answer
    tap(610 * us, ata(3, 8, 8, False, True))           # the resend's: a duplicate now
    tap(700 * us, ata(4, 16, 8, True, False))          # never answered
    tap.close()
    f = analyze(path)
    assert (f.requests, f.retransmits, f.replies, f.unanswered) == (3, 1, 2, 1)
    assert (f.bytes_written, f.bytes_read) == (8192, 4096)
    assert f.rtt_mean_ns == 100_000                    # 100 us each, from the last send
    assert f.window_max == 2
    assert (f.first_ns, f.last_ns) == (0, 700 * us)
    assert abs(f.mb_per_s - 12288 / 1e6 / 700e-6) < 1e-6
