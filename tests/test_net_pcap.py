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
from emu.net.pcap import DEFAULT_SNAPLEN, PcapTap

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


def mixed_run(path: str, seed: int = 1, snaplen: int = DEFAULT_SNAPLEN,
              frames: list[bytes] | None = None) -> tuple[Network, list[int]]:
    """Swap-like traffic over a lossy link with noise, captured with
    `snaplen`; returns the network and the virtual times at which the tap
    saw frames (and appends the whole frames to `frames` if given)."""
    clock = Clock()
    net = Network(clock, NetConfig(
        net="loss 5% delay 200us 50us duplicate 1% reorder 10% corrupt 0.5%", noise="5kpps",
        pcap=path, pcap_snaplen=snaplen, targets=("mem:64M", "mem:1M@1.1"), seed=seed,
        mtu=9000))
    times: list[int] = []

    def seen(t: int, frame: bytes) -> None:
        times.append(t)
        if frames is not None:
            frames.append(frame)
    net.segment.add_tap(seen)
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


@pytest.mark.parametrize("snaplen", [DEFAULT_SNAPLEN, 0, 200])
def test_snap_length_cuts_frames_and_the_file_size_is_reported(tmp_path, snaplen):
    """Each record keeps the first snaplen bytes (0: all) and the frame's
    length on the wire; stats() names the file's size on disk exactly."""
    path = os.path.join(str(tmp_path), "run.pcap")
    whole: list[bytes] = []
    net, _ = mixed_run(path, frames=whole, snaplen=snaplen)
    st = net.stats()["pcap"]
    reader = RawPcapReader(path)
    assert reader.snaplen == (snaplen or 262144)
    records = list(reader)
    assert len(records) == len(whole) == st["frames"]
    for (data, meta), frame in zip(records, whole, strict=True):
        assert data == (frame[:snaplen] if snaplen else frame)
        assert meta.wirelen == len(frame) and meta.caplen == len(data)
    assert st["snaplen"] == snaplen and st["bytes"] == sum(map(len, whole))
    assert st["file_bytes"] == os.path.getsize(path)
    if snaplen == DEFAULT_SNAPLEN:       # sector data is cut: a fraction of the size
        assert st["file_bytes"] < (24 + 16 * st["frames"] + st["bytes"]) / 4
    if snaplen == 0:
        assert st["file_bytes"] == 24 + 16 * st["frames"] + st["bytes"]


def test_a_bad_snap_length_is_one_line():
    from emu.core.units import ConfigError
    for bad in (-1, 262145):
        with pytest.raises(ConfigError, match="--pcap-snaplen"):
            NetConfig(pcap="x.pcap", pcap_snaplen=bad).validate()


def test_tshark_dissects_every_aoe_frame(tmp_path: object) -> None:
    """With the default snap length every header tshark dissects is kept:
    nothing malformed, nothing cut short (`_ws.short`: "Packet size limited
    during capture")."""
    need_tshark()
    path = os.path.join(str(tmp_path), "run.pcap")
    net, _ = mixed_run(path, seed=2)
    st = net.stats()["pcap"]
    assert st["snaplen"] == DEFAULT_SNAPLEN
    assert len(tshark("-r", path)) == st["frames"]
    assert len(tshark("-r", path, "-Y", "aoe")) == st["aoe_frames"]
    assert tshark("-r", path, "-Y", "_ws.malformed") == []
    assert tshark("-r", path, "-Y", "_ws.short") == []
    assert not any("Packet size limited" in ln for ln in tshark("-r", path, "-Y", "aoe", "-V"))
    # The check can fail: a snap length inside the ATA header is flagged.
    short = os.path.join(str(tmp_path), "short.pcap")
    mixed_run(short, seed=2, snaplen=30)
    assert len(tshark("-r", short, "-Y", "_ws.short")) > 0
    kinds = set(tshark("-r", path, "-Y", "aoe", "-T", "fields", "-e", "aoe.cmd"))
    assert {"0", "1", "2", "3", "9"} <= kinds
    # The check can fail: tshark does flag a cut-short ATA frame as malformed.
    bad = os.path.join(str(tmp_path), "bad.pcap")
    with PcapTap(bad) as tap:
        tap(0, F.build_ata(F.BROADCAST, GUEST, 1, 1, 1, scnt=1, cmdstat=F.ATA_IDENTIFY)[:30])
    assert len(tshark("-r", bad, "-Y", "_ws.malformed")) == 1
