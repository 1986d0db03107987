"""The embedded AoE target: protocol answers, service time and bufcnt, and a swap-like
workload through a lossy segment that must still read back every byte."""

from __future__ import annotations

import random

import pytest

from emu.core.clock import Clock
from emu.net import frames as F
from emu.net.aoe_target import VBLADE_FWVER, AoETarget
from emu.net.ata import identify_capacity
from emu.net.fcs import append_fcs
from emu.net.initiator import Initiator
from emu.net.segment import Segment
from emu.net.store import FileStore, MemoryStore

ME = bytes.fromhex("525400123456")
NSECT = 1 << 20


def target(mtu: int = 9000, **kw: object) -> AoETarget:
    return AoETarget(MemoryStore(NSECT), shelf=1, slot=2, mtu=mtu, **kw)  # type: ignore[arg-type]


def ata(t: AoETarget, cmd: int, lba: int = 0, n: int = 1, data: bytes = b"",
        aflags: int = 0, **kw: int) -> F.AoEFrame:
    reply = t.handle(F.pad(F.build_ata(t.mac, ME, 1, 2, 77, aflags=aflags, scnt=n,
                                       cmdstat=cmd, lba=lba, data=data, **kw)))
    assert reply is not None
    return F.parse(reply)


@pytest.mark.parametrize("mtu, scnt", [(1500, 2), (9000, 17)])
def test_config_query_reports_mtu_derived_scnt(mtu: int, scnt: int) -> None:
    t = target(mtu)
    r = F.parse(t.handle(F.build_config(F.BROADCAST, ME, 0xFFFF, 0xFF, 5)))
    assert (r.flags, r.major, r.minor, r.tag, r.bufcnt, r.fwver, r.scnt, r.aoever) == (
        F.FLAG_R, 1, 2, 5, 16, VBLADE_FWVER, scnt, 1)
    assert (r.dst, r.src) == (ME, t.mac)


def test_config_string_commands() -> None:
    t = target()

    def cfg(ccmd: int, cs: bytes) -> F.AoEFrame | None:
        r = t.handle(F.build_config(t.mac, ME, 1, 2, 9, ccmd=ccmd, config=cs))
        return None if r is None else F.parse(r)

    assert cfg(F.CCMD_TEST, b"a") is None            # nothing set: no match, no reply
    assert bytes(cfg(F.CCMD_SET, b"swap0").data) == b"swap0"
    assert cfg(F.CCMD_TEST, b"swap0") is not None
    assert cfg(F.CCMD_TEST, b"swap") is None
    assert cfg(F.CCMD_PREFIX, b"swap") is not None
    r = cfg(F.CCMD_SET, b"other")
    assert r.flags & F.FLAG_E and r.error == F.ERR_CONFIG and bytes(r.data) == b"swap0"
    assert bytes(cfg(F.CCMD_FORCE_SET, b"other").data) == b"other"
    r = cfg(9, b"")
    assert r.error == F.ERR_BAD_ARG


def test_identify_capacity() -> None:
    t = target()
    r = ata(t, F.ATA_IDENTIFY)
    assert r.cmdstat == 0x40 and r.scnt == 0 and identify_capacity(bytes(r.data)) == (
        NSECT, NSECT)
    assert ata(t, F.ATA_IDENTIFY, n=2).error == F.ERR_BAD_ARG


def test_read_write_lba28_lba48_and_errors() -> None:
    t = target(1500)
    data = bytes(range(256)) * 4
    r = ata(t, F.ATA_WRITE, 1000, 2, data, F.AFLAG_W)
    assert (r.cmdstat, r.errfeat, r.scnt, r.error) == (0x40, 0, 0, 0)
    assert bytes(ata(t, F.ATA_READ_EXT, 1000, 2, aflags=F.AFLAG_E).data) == data
    # LBA28 commands use 28 bits of the LBA, as vblade: 2**28 + 1000 reads 1000.
    assert bytes(ata(t, F.ATA_READ, (1 << 28) + 1000, 2).data) == data
    r = ata(t, F.ATA_READ_EXT, NSECT - 1, 2, aflags=F.AFLAG_E)
    assert (r.cmdstat, r.errfeat, r.data_len) == (0x41, 0x10, 0)          # IDNF
    assert ata(t, F.ATA_READ_EXT, 0, 3, aflags=F.AFLAG_E).error == F.ERR_BAD_ARG  # > scnt
    assert ata(t, F.ATA_WRITE_EXT, 0, 2, data[:512], F.AFLAG_W).error == F.ERR_BAD_ARG
    r = ata(t, 0x99)
    assert (r.cmdstat, r.errfeat) == (0x41, 0x04)                          # ABRT
    assert ata(t, F.ATA_FLUSH, n=0).flags == F.FLAG_R
    s = t.stats
    assert (s.writes, s.reads, s.sectors_read, s.ata_errors, s.aoe_errors, s.flush) == (
        1, 2, 4, 2, 2, 1)


def test_filters_and_bad_commands() -> None:
    t = target()
    req = F.build_ata(t.mac, ME, 1, 2, 1, scnt=1, cmdstat=F.ATA_READ)
    assert t.handle(F.build_ata(t.mac, ME, 9, 2, 1, scnt=1, cmdstat=F.ATA_READ)) is None
    assert t.handle(F.build_ata(t.mac, ME, 1, 9, 1, scnt=1, cmdstat=F.ATA_READ)) is None
    assert t.handle(F.build_ata(t.mac, ME, 1, 2, 1, flags=F.FLAG_R, scnt=1)) is None
    assert t.handle(b"\x02" * 6 + ME + req[12:]) is None      # another unicast MAC
    assert t.handle(req[:30]) is None                         # truncated ATA argument
    assert target(promiscuous=True).handle(b"\x02" * 6 + ME + req[12:]) is not None
    r = F.parse(t.handle(F.build_aoe(t.mac, ME, 1, 2, 7, 3, payload=b"xy")))
    assert r.error == F.ERR_BAD_CMD and r.flags == F.FLAG_R | F.FLAG_E
    assert t.stats.ignored == 4 and t.stats.truncated == 1


def test_handle_never_raises_on_garbage() -> None:
    rng = random.Random(5)
    t = target(1500)
    good = [F.build_ata(t.mac, ME, 1, 2, 1, aflags=F.AFLAG_W, scnt=2, cmdstat=F.ATA_WRITE_EXT,
                        data=bytes(1024)),
            F.build_config(t.mac, ME, 1, 2, 1, ccmd=3, config=b"abc"),
            F.build_aoe(t.mac, ME, 1, 2, F.CMD_MASK, 1, payload=b"\x00\x01\x00\x02" + bytes(16)),
            F.build_aoe(t.mac, ME, 1, 2, F.CMD_RESERVE, 1, payload=b"\x02\x03" + bytes(18))]
    for _ in range(10_000):
        b = bytearray(rng.choice(good))
        for _ in range(rng.randrange(1, 6)):
            if rng.random() < 0.2 and b:
                del b[rng.randrange(len(b)):]
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        b = b.ljust(rng.choice([24, 30, 36]), b"\0")
        b[0:6] = t.mac                        # keep it addressed to the target ...
        b[12:14] = b"\x88\xa2"
        b[14] &= ~F.FLAG_R & 0xFF             # ... as a request ...
        b[16:19] = b"\x00\x01\x02"            # ... for e1.2
        t.handle(bytes(b))  # must not raise
    assert t.stats.requests > 5_000


def test_service_time_and_bufcnt() -> None:
    clock = Clock()
    seg = Segment(clock)
    t = AoETarget(MemoryStore(1024), shelf=1, slot=2, clock=clock, service_ns=100_000,
                  bufcnt=16)
    t.attach(seg, "target")
    got: list[int] = []

    class Sink:
        def receive(self, wire: bytes) -> None:
            got.append(clock.now)

    port = seg.attach(Sink(), "guest")
    for i in range(40):
        port.send(append_fcs(F.pad(F.build_ata(t.mac, ME, 1, 2, i, scnt=1,
                                               cmdstat=F.ATA_READ))))
    while (nt := clock.next_time()) is not None:
        clock.advance(nt)
        clock.run_due()
    assert t.stats.dropped_busy == 24 and len(got) == 16
    assert got == [100_000 * (i + 1) for i in range(16)]  # one at a time, in order


def run_workload(spec: str, seed: int, pages: int = 200, mtu: int = 9000) -> dict[str, object]:
    """Write `pages` random 4 KiB pages through a lossy guest link, read them back."""
    clock = Clock()
    seg = Segment(clock, seed=seed)
    t = AoETarget(MemoryStore(NSECT), shelf=0, slot=0, mtu=mtu)
    t.attach(seg, "e0.0")
    ini = Initiator(clock, ME, shelf=0, slot=0, rto_ns=3_000_000)
    ini.port = seg.attach(ini, "guest", net=spec)
    rng = random.Random(seed)
    written = {i * 8: rng.randbytes(4096) for i in range(pages)}
    per = min(8, (mtu - 36) // 512)
    read_back: dict[int, bytes] = {}
    ini.config_query(lambda r: None)
    for lba, page in written.items():
        for k in range(0, 8, per):
            ini.write(lba + k, page[k * 512:(k + per) * 512], lambda r: None)
    while (nt := clock.next_time()) is not None:
        clock.advance(nt)
        clock.run_due()
    for lba in written:
        for k in range(0, 8, per):
            def done(r: F.AoEFrame | None, key: int = lba + k) -> None:
                assert r is not None and r.cmdstat == 0x40
                read_back[key] = bytes(r.data)[:per * 512]
            ini.read(lba + k, per, done)
    while (nt := clock.next_time()) is not None:
        clock.advance(nt)
        clock.run_due()
    for lba, page in written.items():
        assert b"".join(read_back[lba + k] for k in range(0, 8, per)) == page
    return {"initiator": ini.as_dict(), "target": t.stats_dict(), "segment": seg.stats(),
            "now": clock.now}


@pytest.mark.parametrize("mtu", [1500, 9000])
def test_pages_survive_a_lossy_link(mtu: int) -> None:
    spec = "loss 5% delay 200us 50us duplicate 1% reorder 10% corrupt 0.1%"
    out = run_workload(spec, seed=11, mtu=mtu)
    ini, tgt = out["initiator"], out["target"]
    assert ini["failed"] == 0 and ini["retransmits"] > 0     # loss was real, and overcome
    assert tgt["repeated_tags"] > 0 or ini["unknown_tags"] > 0  # duplicates were real
    guest = out["segment"]["ports"]["guest"]
    assert guest["up"]["dropped_loss"] > 0 and guest["down"]["dropped_loss"] > 0


def test_whole_run_is_deterministic() -> None:
    spec = "loss 5% delay 200us 50us duplicate 1% reorder 10% corrupt 1%"
    a = run_workload(spec, seed=3, pages=60)
    b = run_workload(spec, seed=3, pages=60)
    c = run_workload(spec, seed=4, pages=60)
    assert a == b and a != c


def test_file_store_target(tmp_path: object) -> None:
    path = f"{tmp_path}/disk.img"
    store = FileStore.create(path, 1 << 20)
    t = AoETarget(store, shelf=0, slot=1, mtu=1500)
    r = t.handle(F.build_ata(t.mac, ME, 0, 1, 1, aflags=F.AFLAG_W, scnt=1,
                             cmdstat=F.ATA_WRITE_EXT, lba=2047, data=b"\xab" * 512))
    assert F.parse(r).cmdstat == 0x40
    store.close()
    with open(path, "rb") as f:
        f.seek(2047 * 512)
        assert f.read(512) == b"\xab" * 512
    ro = FileStore(path, readonly=True)
    t = AoETarget(ro, shelf=0, slot=1, mtu=1500)
    r = F.parse(t.handle(F.build_ata(t.mac, ME, 0, 1, 1, aflags=F.AFLAG_W, scnt=1,
                                     cmdstat=F.ATA_WRITE_EXT, lba=0, data=bytes(512))))
    assert (r.cmdstat, r.errfeat) == (0x41, 0x04)   # read-only: ABRT, as vblade
    ro.close()


def test_bad_target_parameters() -> None:
    with pytest.raises(ValueError, match="out of range"):
        AoETarget(MemoryStore(8), shelf=0xFFFF, slot=0)
    with pytest.raises(ValueError, match="cannot carry"):
        AoETarget(MemoryStore(8), shelf=0, slot=0, mtu=500)
    with pytest.raises(ValueError, match="needs the clock"):
        AoETarget(MemoryStore(8), shelf=0, slot=0, service_ns=5)
    with pytest.raises(ValueError, match="at least one sector"):
        MemoryStore(0)
