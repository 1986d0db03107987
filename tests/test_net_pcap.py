"""Captures: a mixed run (AoE through a lossy link, noise, odd commands) written with
--pcap must be read by tshark with every AoE frame dissected, 0 malformed, and the
frame counts equal to our statistics; timestamps are the virtual times."""

from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest
from scapy.utils import RawPcapReader

from emu.core.clock import Clock
from emu.net import frames as F
from emu.net.fcs import append_fcs
from emu.net.initiator import Initiator
from emu.net.network import NetConfig, Network
from emu.net.pcap import PcapTap

GUEST = bytes.fromhex("525400123456")


def tshark(*args: str) -> list[str]:
    """Run tshark; return its output lines (no root warning)."""
    out = subprocess.run(["tshark", *args], capture_output=True, text=True, check=True)
    return [ln for ln in out.stdout.splitlines() if ln.strip()]


def need_tshark() -> None:
    if shutil.which("tshark") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tshark missing: CI must install it (apt-get install tshark)")
        pytest.skip("needs tshark; not in CI, so skipping")


def mixed_run(path: str, seed: int = 1) -> tuple[Network, list[int]]:
    """Swap-like traffic over a lossy link with noise; returns the network and the
    virtual times at which the tap saw frames."""
    clock = Clock()
    net = Network(clock, NetConfig(
        net="loss 5% delay 200us 50us duplicate 1% reorder 10% corrupt 0.5%", noise="5kpps",
        pcap=path, targets=("mem:64M", "mem:1M@1.1"), seed=seed, mtu=9000))
    times: list[int] = []
    net.segment.add_tap(lambda t, f: times.append(t))
    ini = Initiator(clock, GUEST, shelf=0, slot=0)
    ini.port = net.attach_guest(ini, GUEST)
    ini.config_query(lambda r: None)
    ini.identify(lambda r: None)
    rng = random.Random(seed)
    for i in range(60):
        ini.write(i * 8, rng.randbytes(4096), lambda r: None)
        ini.read(i * 8, 8, lambda r: None)
    ini.flush(lambda r: None)
    odd = [F.build_aoe(F.BROADCAST, GUEST, 0, 0, F.CMD_MASK, 9001, payload=b"\0\0\0\0"),
           F.build_aoe(F.BROADCAST, GUEST, 0, 0, F.CMD_RESERVE, 9002, payload=b"\0\0"),
           F.build_aoe(F.BROADCAST, GUEST, 0, 0, 9, 9003, payload=b"zz"),
           F.build_ata(F.BROADCAST, GUEST, 0, 0, 9004, scnt=1, cmdstat=F.ATA_READ_EXT,
                       aflags=F.AFLAG_E, lba=1 << 40),
           F.build_config(F.BROADCAST, GUEST, 1, 1, 9005, ccmd=F.CCMD_SET, config=b"swap")]
    for f in odd:
        ini.port.send(append_fcs(F.pad(f)))
    while (t := clock.next_time()) is not None and t <= 300_000_000:
        clock.advance(t)
        clock.run_due()
    assert ini.stats.failed == 0 and ini.outstanding == 0
    net.close()
    return net, times


def test_pcap_file_and_virtual_timestamps(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "run.pcap")
    net, times = mixed_run(path)
    st = net.stats()
    frames = list(RawPcapReader(path))
    accepted = sum(p["rx_frames"] for p in st["segment"]["ports"].values())
    assert len(frames) == st["pcap"]["frames"] == accepted == len(times)
    stamps = [meta.sec * 1_000_000_000 + meta.usec for _, meta in frames]  # nanosecond pcap
    assert stamps == times and stamps == sorted(stamps)
    aoe = sum(1 for data, _ in frames if data[12:14] == b"\x88\xa2")
    assert aoe == st["pcap"]["aoe_frames"] and 0 < aoe < len(frames)   # noise is there too
    with open(path, "rb") as f:
        assert f.read(4) == bytes.fromhex("4d3cb2a1")   # little-endian nanosecond magic
    # Same seed, same capture, byte for byte.
    path2 = os.path.join(str(tmp_path), "again.pcap")
    mixed_run(path2)
    with open(path, "rb") as a, open(path2, "rb") as b:
        assert a.read() == b.read()


def test_tshark_dissects_every_aoe_frame(tmp_path: object) -> None:
    need_tshark()
    path = os.path.join(str(tmp_path), "run.pcap")
    net, _ = mixed_run(path, seed=2)
    st = net.stats()["pcap"]
    assert len(tshark("-r", path)) == st["frames"]
    assert len(tshark("-r", path, "-Y", "aoe")) == st["aoe_frames"]
    assert tshark("-r", path, "-Y", "_ws.malformed") == []
    kinds = set(tshark("-r", path, "-Y", "aoe", "-T", "fields", "-e", "aoe.cmd"))
    assert {"0", "1", "2", "3", "9"} <= kinds
    # The check can fail: tshark does flag a cut-short ATA frame as malformed.
    bad = os.path.join(str(tmp_path), "bad.pcap")
    with PcapTap(bad) as tap:
        tap(0, F.build_ata(F.BROADCAST, GUEST, 1, 1, 1, scnt=1, cmdstat=F.ATA_IDENTIFY)[:30])
    assert len(tshark("-r", bad, "-Y", "_ws.malformed")) == 1
