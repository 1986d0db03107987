"""virtio-mmio and virtio-blk as a guest driver sees them: empty slots,
identity and features, configuration space, bring-up both ways (legacy v1
as Linux's old driver does it, modern v2 as xv6 does), reads and writes
through chains of 2 and 3 descriptors and indirect tables, flush and
durability, GET_ID, IOERR and UNSUPP, discard and write zeroes, read-only
and snapshot images, feature negotiation, interrupts and their
suppression, and every hostile-guest rule (DEVICE_NEEDS_RESET, never an
exception, recovery by reset)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from emu.devices.virtio import blk as B
from emu.devices.virtio import spec as S
from emu.devices.virtio.image import DiskImage
from emu.devices.virtio.mmio import NOTIFY_DELAY_NS
from emu.devices.virtio.queue import SplitQueue, VirtqueueError
from emu.machine.board import RAM_BASE
from tests.test_nic_support import RAM_SIZE, GuardedMem
from tests.test_virtio_support import (
    DESC,
    HEADER,
    BlkDriver,
    close_all,
    make_image,
    make_slot,
    run_clock,
)

SEGMENT = struct.Struct("<QII")

BOTH = pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "modern"])


def sector(i: int) -> bytes:
    """What sector i of make_image's pattern holds."""
    return bytes([(i + 1) & 0xFF]) * B.SECTOR


@pytest.fixture(autouse=True)
def _close_slots():
    yield
    close_all()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path / "disk.img")


def up(image: Path | None, legacy: bool, **kw: object):
    """A slot with a driver that has brought the device up."""
    t, mem, sink, clock = make_slot(image, legacy=legacy, **kw)
    logs: list[tuple[str, str]] = []
    t.log = lambda topic, msg: logs.append((topic, msg))
    drv = BlkDriver(t, mem, clock)
    drv.logs = logs  # type: ignore[attr-defined]
    if image is not None:
        st = drv.init()
        assert st & S.S_DRIVER_OK and not st & S.S_NEEDS_RESET
    return t, mem, sink, clock, drv


# -- empty slots, identity, features, config ---------------------------------------

@BOTH
def test_empty_slot_answers_as_qemu(legacy: bool) -> None:
    t, mem, sink, clock, drv = up(None, legacy)
    assert drv.r(S.MAGIC_VALUE) == S.MAGIC == int.from_bytes(b"virt", "little")
    assert drv.r(S.VERSION) == (1 if legacy else 2)
    assert drv.r(S.DEVICE_ID) == 0
    assert drv.r(S.VENDOR_ID) == S.VENDOR_QEMU == int.from_bytes(b"QEMU", "little")
    assert t.read(S.MAGIC_VALUE, 1) == 0x76          # QEMU: no size check without a backend
    for off in (S.DEVICE_FEATURES, S.QUEUE_NUM_MAX, S.STATUS, S.INTERRUPT_STATUS, S.CONFIG):
        assert drv.r(off) == 0
    drv.w(S.STATUS, S.S_ACKNOWLEDGE)
    drv.w(S.QUEUE_NOTIFY, 0)
    assert drv.r(S.STATUS) == 0 and run_clock(clock) == 0 and not sink.level
    assert t.stats()["bad_mmio"] == 0 and drv.logs == []


@BOTH
def test_identity_and_offered_features(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(None, legacy)
    t, *_ = make_slot(image, legacy=legacy)
    drv = BlkDriver(t, mem, clock)
    assert (drv.r(S.DEVICE_ID), drv.r(S.VENDOR_ID)) == (S.DEVICE_ID_BLOCK, S.VENDOR_QEMU)
    blk = sum(S.bit(b) for b in (B.F_SEG_MAX, B.F_BLK_SIZE, B.F_FLUSH, B.F_TOPOLOGY,
                                  B.F_CONFIG_WCE, B.F_DISCARD, B.F_WRITE_ZEROES,
                                  S.F_RING_INDIRECT_DESC, S.F_RING_EVENT_IDX))
    extra = S.bit(S.F_NOTIFY_ON_EMPTY) if legacy else S.bit(S.F_VERSION_1)
    assert drv.offered() == blk | extra
    drv.w(S.DEVICE_FEATURES_SEL, 2)
    assert drv.r(S.DEVICE_FEATURES) == 0
    drv.w(S.QUEUE_SEL, 0)
    assert drv.r(S.QUEUE_NUM_MAX) == 1024
    drv.w(S.QUEUE_SEL, 1)
    assert drv.r(S.QUEUE_NUM_MAX) == 0


@BOTH
def test_config_space_as_qemu_reports_it(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy)
    c = S.CONFIG
    assert t.read(c + 0, 4) | (t.read(c + 4, 4) << 32) == 64       # capacity, sectors
    assert t.read(c + 12, 4) == 254                                 # seg_max
    assert t.read(c + 20, 4) == 512                                 # blk_size
    assert t.read(c + 32, 1) == 1                                   # writeback
    assert t.read(c + 34, 2) == 1                                   # num_queues
    assert t.read(c + 36, 4) == t.read(c + 48, 4) == 0x3F_FFFF      # max discard/zeroes sectors
    assert (t.read(c + 40, 4), t.read(c + 44, 4), t.read(c + 52, 4)) == (1, 1, 1)
    assert t.read(c + 56, 1) == 1                                   # write_zeroes_may_unmap
    assert [t.read(c + 20 + i, 1) for i in range(4)] == [0, 2, 0, 0]
    assert t.read(c + 57, 1) == 0xFF and t.read(c + 56, 2) == 0xFFFF   # past config_len
    assert t.read(c + 0xFC, 4) == 0xFFFF_FFFF
    assert drv.r(S.CONFIG_GENERATION) == 0
    assert t.stats()["bad_mmio"] == (1 if legacy else 0)            # legacy has no generation


@BOTH
def test_register_access_rules(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy)
    assert t.read(S.MAGIC_VALUE, 2) == 0 and t.read(S.MAGIC_VALUE, 1) == 0    # 4-byte only
    t.write(S.STATUS, 1, 0)                                     # ignored, not a reset
    assert drv.r(S.STATUS) & S.S_DRIVER_OK
    drv.w(S.MAGIC_VALUE, 0)                                     # read-only
    assert drv.r(S.SHM_LEN_LOW) == drv.r(S.SHM_LEN_HIGH) == 0xFFFF_FFFF
    other = S.QUEUE_READY if legacy else S.QUEUE_PFN            # the other version's register
    drv.w(other, 1)
    assert drv.r(other) == 0
    assert t.stats()["bad_mmio"] == 6
    assert all(topic == "guest_errors" for topic, _ in drv.logs)


def test_spec_registers_qemu_lacks_are_logged_as_unimp(image: Path) -> None:
    t, mem, sink, clock, drv = up(image, False)
    drv.logs.clear()
    drv.w(S.QUEUE_RESET, 1)
    drv.w(S.SHM_SEL, 0)
    assert drv.r(S.SHM_BASE_LOW) == 0 and drv.r(S.QUEUE_RESET) == 0
    assert [topic for topic, _ in drv.logs] == ["unimp"] * 4
    assert "QueueReset" in drv.logs[0][1]
    assert drv.r(S.STATUS) & S.S_DRIVER_OK and not drv.r(S.STATUS) & S.S_NEEDS_RESET


# -- bring-up and I/O ---------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("layout,indirect", [(3, False), (2, False), (3, True)],
                         ids=["3-desc", "2-desc", "indirect"])
def test_read_and_write_sectors(image: Path, legacy: bool, layout: int, indirect: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy)
    status, data, used = drv.request(B.T_IN, 5, nbytes=1024, layout=layout, indirect=indirect)
    assert (status, data, used) == (B.S_OK, sector(5) + sector(6), 1025)
    new = os.urandom(1536)
    status, _, used = drv.request(B.T_OUT, 10, data=new, layout=layout, indirect=indirect)
    assert (status, used) == (B.S_OK, 1)
    assert drv.request(B.T_IN, 10, nbytes=1536, layout=layout, indirect=indirect)[:2] \
        == (B.S_OK, new)
    raw = image.read_bytes()
    assert raw[10 * 512:13 * 512] == new and raw[9 * 512:10 * 512] == sector(9)
    assert raw[13 * 512:14 * 512] == sector(13)
    assert mem.violations == [] and t.stats()["needs_reset"] == 0
    assert t.device.stats()["bytes_written"] == 1536


@BOTH
def test_completion_is_a_clock_event_and_raises_the_line(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy)
    drv.post(B.T_IN, 0, nbytes=512)
    assert drv.used_entries() == [] and not sink.level       # nothing inside the doorbell
    assert clock.next_time() == NOTIFY_DELAY_NS
    run_clock(clock)
    assert clock.now == NOTIFY_DELAY_NS
    assert len(drv.used_entries()) == 1 and sink.level and sink.edges == 1
    assert drv.ack() == S.INT_VRING and not sink.level
    assert drv.r(S.INTERRUPT_STATUS) == 0


@BOTH
def test_several_requests_in_one_notification(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy)
    heads = [drv.post(B.T_IN, i, nbytes=512, kick=False) for i in range(3)]
    drv.w(S.QUEUE_NOTIFY, 0)
    drv.w(S.QUEUE_NOTIFY, 0)                 # coalesced: one service
    assert run_clock(clock) == 1
    assert [u[0] for u in drv.used_entries()] == heads and sink.edges == 1


def test_flush_makes_writes_durable(image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd)))
    t, mem, sink, clock, drv = up(image, False)
    drv.request(B.T_OUT, 3, data=b"D" * 512)
    assert synced == []                                 # writeback: the page cache holds it
    assert drv.request(B.T_FLUSH)[0] == B.S_OK
    assert len(synced) == 1
    with open(image, "rb") as f:                        # another reader sees the data
        f.seek(3 * 512)
        assert f.read(512) == b"D" * 512
    assert t.device.stats()["flushes"] == 1


@BOTH
def test_driver_without_flush_gets_writethrough(image: Path, legacy: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd))
    t, mem, sink, clock, drv = up(None, legacy)
    t, mem, sink, clock = make_slot(image, legacy=legacy)
    drv = BlkDriver(t, mem, clock)
    drv.init(drop=S.bit(B.F_FLUSH) | S.bit(B.F_CONFIG_WCE))
    assert t.read(S.CONFIG + 32, 1) == 0                # writeback off
    drv.request(B.T_OUT, 1, data=b"W" * 512)
    assert len(synced) == 1                             # durable before completion
    t.write(S.CONFIG + 32, 1, 1)                        # the driver turns writeback on
    assert t.read(S.CONFIG + 32, 1) == 1
    drv.request(B.T_OUT, 1, data=b"X" * 512)
    assert len(synced) == 1


@BOTH
def test_get_id(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy, serial="EMU-DISK-0")
    assert drv.request(B.T_GET_ID, nbytes=20)[:2] == (B.S_OK, b"EMU-DISK-0\0" + bytes(9))
    t, mem, sink, clock, drv = up(image, legacy, serial="S" * 25)
    assert drv.request(B.T_GET_ID, nbytes=20)[1] == b"S" * 20        # no NUL when full
    assert drv.request(B.T_GET_ID, nbytes=4)[1] == b"SSSS"             # a short buffer
    t, mem, sink, clock, drv = up(image, legacy)
    assert drv.request(B.T_GET_ID, nbytes=20)[1][:1] == b"\0"          # QEMU's default: empty


@BOTH
def test_out_of_range_and_odd_lengths_are_ioerr(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy)
    before = image.read_bytes()
    assert drv.request(B.T_IN, 64, nbytes=512)[0] == B.S_IOERR        # one past the end
    assert drv.request(B.T_IN, 63, nbytes=1024)[0] == B.S_IOERR       # runs past the end
    assert drv.request(B.T_IN, 1 << 63, nbytes=512)[0] == B.S_IOERR
    assert drv.request(B.T_OUT, 63, data=b"x" * 1024)[0] == B.S_IOERR
    assert drv.request(B.T_OUT, 2, data=b"x" * 100)[0] == B.S_IOERR   # not whole sectors
    assert drv.request(B.T_IN, 2, nbytes=100)[0] == B.S_IOERR
    assert drv.request(B.T_IN, 63, nbytes=512)[:2] == (B.S_OK, sector(63))
    assert image.read_bytes() == before
    assert t.device.stats()["ioerr"] == 6 and t.stats()["needs_reset"] == 0


@BOTH
def test_unsupported_types_are_unsupp(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy)
    for rtype in (B.T_GET_LIFETIME, 0x1234, 16):
        assert drv.request(rtype, nbytes=512)[0] == B.S_UNSUPP
    assert drv.request(B.T_SCSI_CMD, nbytes=512)[0] == B.S_IOERR      # as QEMU: not SCSI-shaped
    assert drv.request(B.T_SCSI_CMD | B.T_OUT, nbytes=512)[0] == B.S_IOERR
    assert drv.request(B.T_OUT | B.T_BARRIER, 1, data=b"b" * 512)[0] == B.S_OK   # flag ignored
    assert drv.request(B.T_FLUSH | B.T_OUT)[0] == B.S_OK                       # as QEMU


def _segment(drv: BlkDriver, rtype: int, sec: int, count: int, flags: int = 0,
             extra: bytes = b"") -> int:
    data = SEGMENT.pack(sec, count, flags) + extra
    return drv.request(rtype, 0, data=data)[0]


@BOTH
def test_discard_and_write_zeroes(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy)
    assert _segment(drv, B.T_WRITE_ZEROES, 4, 3) == B.S_OK
    raw = image.read_bytes()
    assert raw[4 * 512:7 * 512] == bytes(1536) and raw[7 * 512:8 * 512] == sector(7)
    assert _segment(drv, B.T_WRITE_ZEROES, 8, 1, B.WRITE_ZEROES_F_UNMAP) == B.S_OK
    assert _segment(drv, B.T_DISCARD, 9, 2) == B.S_OK                 # a hint: data kept
    assert image.read_bytes()[9 * 512:10 * 512] == sector(9)
    assert _segment(drv, B.T_DISCARD, 9, 2, B.WRITE_ZEROES_F_UNMAP) == B.S_UNSUPP
    assert _segment(drv, B.T_WRITE_ZEROES, 9, 2, 0x2) == B.S_UNSUPP
    assert _segment(drv, B.T_WRITE_ZEROES, 9, 1, extra=bytes(16)) == B.S_UNSUPP   # 2 segments
    assert _segment(drv, B.T_WRITE_ZEROES, 63, 2) == B.S_IOERR
    assert _segment(drv, B.T_WRITE_ZEROES, 0, 0x40_0000) == B.S_IOERR           # over the max
    assert t.device.stats()["write_zeroes"] == 2 and t.device.stats()["discards"] == 1


@BOTH
def test_read_only_image(image: Path, legacy: bool) -> None:
    t, mem, sink, clock, drv = up(image, legacy, read_only=True)
    assert drv.offered() & S.bit(B.F_RO)
    before = image.read_bytes()
    assert drv.request(B.T_OUT, 1, data=b"n" * 512)[0] == B.S_IOERR
    assert _segment(drv, B.T_WRITE_ZEROES, 1, 1) == B.S_IOERR
    assert drv.request(B.T_IN, 1, nbytes=512)[:2] == (B.S_OK, sector(1))
    assert image.read_bytes() == before


@BOTH
def test_snapshot_leaves_the_file_untouched(image: Path, legacy: bool) -> None:
    before = image.read_bytes()
    t, mem, sink, clock, drv = up(image, legacy, snapshot=True)
    new = os.urandom(2048)
    assert drv.request(B.T_OUT, 62, data=b"e" * 1024)[0] == B.S_OK      # the last chunk
    assert drv.request(B.T_OUT, 1, data=new)[0] == B.S_OK
    assert _segment(drv, B.T_WRITE_ZEROES, 0, 64) == B.S_OK
    assert drv.request(B.T_OUT, 2, data=b"z" * 512)[0] == B.S_OK       # over the zeroes
    assert drv.request(B.T_FLUSH)[0] == B.S_OK
    assert drv.request(B.T_IN, 1, nbytes=1536)[1] == bytes(512) + b"z" * 512 + bytes(512)
    t.close()
    t.close()
    assert image.read_bytes() == before


def test_snapshot_overlay_reads_through_to_the_file(image: Path) -> None:
    img = DiskImage(image, snapshot=True)
    img.write(512 * 3 + 512, b"q" * 512)
    assert img.read(0, 512 * 6) == sector(0) + sector(1) + sector(2) + sector(3) \
        + b"q" * 512 + sector(5)
    img.close()


def test_close_flushes_and_releases(image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd))
    t, mem, sink, clock, drv = up(image, False)
    fd = t.device.image.fd
    t.close()
    t.close()
    assert synced == [fd]
    with pytest.raises(OSError):
        os.fstat(fd)


def test_bad_images_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(OSError) as e:
        B.VirtioBlk(tmp_path / "missing.img")
    assert e.value.filename == str(tmp_path / "missing.img")
    with pytest.raises(ValueError, match="not a regular file") as v:
        B.VirtioBlk(tmp_path)
    odd = tmp_path / "odd.img"
    odd.write_bytes(bytes(1000))
    with pytest.raises(ValueError, match="size 1000 is not a multiple of 512") as w:
        B.VirtioBlk(odd)
    assert "\n" not in str(v.value) + str(w.value)


# -- feature negotiation ---------------------------------------------------------------------

def test_modern_refuses_features_not_offered(image: Path) -> None:
    t, mem, sink, clock, drv = up(None, False)
    t, mem, sink, clock = make_slot(image)
    drv = BlkDriver(t, mem, clock)
    st = drv.init(accept=drv.offered() | S.bit(B.F_MQ))
    assert not st & S.S_FEATURES_OK and t.stats()["features_refused"] == 1
    assert drv.init() & S.S_FEATURES_OK                 # a valid subset after reset


def test_version_1_not_accepted_qemu_way_and_strict_way(image: Path) -> None:
    xv6_drops = sum(S.bit(b) for b in (B.F_RO, 7, B.F_CONFIG_WCE, B.F_MQ, S.F_ANY_LAYOUT,
                                       S.F_RING_EVENT_IDX, S.F_RING_INDIRECT_DESC))
    t, mem, sink, clock = make_slot(image)
    drv = BlkDriver(t, mem, clock)
    offered_lo = drv.offered() & 0xFFFF_FFFF            # xv6 reads and writes word 0 only
    assert drv.init(accept=offered_lo & ~xv6_drops) & S.S_FEATURES_OK
    assert drv.request(B.T_IN, 2, nbytes=1024)[:2] == (B.S_OK, sector(2) + sector(3))
    t, mem, sink, clock = make_slot(image)
    t.require_version_1 = True
    drv = BlkDriver(t, mem, clock)
    st = drv.init(accept=offered_lo)
    assert not st & S.S_FEATURES_OK and t.stats()["features_refused"] == 1
    assert drv.init() & S.S_FEATURES_OK


def test_features_are_latched_at_features_ok(image: Path) -> None:
    t, mem, sink, clock, drv = up(image, False)
    assert t.features == drv.features
    drv.w(S.DRIVER_FEATURES_SEL, 0)
    drv.w(S.DRIVER_FEATURES, 0)                          # too late: ignored
    assert t.features == drv.features


def test_legacy_driver_features_are_masked(image: Path) -> None:
    t, mem, sink, clock = make_slot(image, legacy=True)
    drv = BlkDriver(t, mem, clock)
    drv.init(accept=0xFFFF_FFFF)
    assert t.features == drv.offered() & 0xFFFF_FFFF
    drv.w(S.DRIVER_FEATURES_SEL, 1)
    drv.w(S.DRIVER_FEATURES, 1)
    assert t.features >> 32 == 0 and t.stats()["bad_mmio"] == 1


def test_legacy_registers(image: Path) -> None:
    t, mem, sink, clock, drv = up(image, True)
    drv.w(S.QUEUE_SEL, 0)
    assert drv.r(S.QUEUE_PFN) == drv.desc // 4096
    drv.w(S.STATUS, 0)                                   # reset keeps GuestPageSize (QEMU)
    assert t.page_shift == 12
    t.host_reset()
    assert t.page_shift == 0
    assert drv.init() & S.S_DRIVER_OK
    drv.w(S.QUEUE_PFN, 0)                                # the queue is released
    drv.post(B.T_IN, 0, nbytes=512)
    run_clock(clock)
    assert drv.used_entries() == [] and t.stats()["needs_reset"] == 0


def test_notifications_before_driver_ok_are_served_at_driver_ok(image: Path) -> None:
    t2, mem2, sink2, clock2 = make_slot(image)
    d2 = BlkDriver(t2, mem2, clock2)
    d2.w(S.STATUS, S.S_ACKNOWLEDGE | S.S_DRIVER)
    for sel in (0, 1):
        d2.w(S.DRIVER_FEATURES_SEL, sel)
        d2.w(S.DRIVER_FEATURES, (d2.offered() >> (32 * sel)) & 0xFFFF_FFFF)
    d2.w(S.STATUS, S.S_ACKNOWLEDGE | S.S_DRIVER | S.S_FEATURES_OK)
    d2.w(S.QUEUE_SEL, 0)
    d2.w(S.QUEUE_NUM, d2.qsize)
    for off, addr in ((S.QUEUE_DESC_LOW, d2.desc), (S.QUEUE_DRIVER_LOW, d2.avail),
                      (S.QUEUE_DEVICE_LOW, d2.used)):
        d2.w(off, addr)
    d2.w(S.QUEUE_READY, 1)
    d2.post(B.T_IN, 4, nbytes=512)
    run_clock(clock2)
    assert d2.used_entries() == []                       # not before DRIVER_OK
    d2.w(S.STATUS, S.S_ACKNOWLEDGE | S.S_DRIVER | S.S_FEATURES_OK | S.S_DRIVER_OK)
    run_clock(clock2)
    assert len(d2.used_entries()) == 1 and mem2.peek(d2.data_addr, 512) == sector(4)


# -- interrupt suppression -------------------------------------------------------------------

@BOTH
def test_no_interrupt_flag_suppresses_the_line(image: Path, legacy: bool) -> None:
    t, mem, sink, clock = make_slot(image, legacy=legacy)
    drv = BlkDriver(t, mem, clock)
    drv.init(drop=S.bit(S.F_RING_EVENT_IDX) | S.bit(S.F_NOTIFY_ON_EMPTY))
    mem.poke(drv.avail, S.AVAIL_F_NO_INTERRUPT.to_bytes(2, "little"))
    drv.request(B.T_IN, 0, nbytes=512)
    assert not sink.level and t.stats()["chains"] == 1
    mem.poke(drv.avail, bytes(2))
    drv.request(B.T_IN, 0, nbytes=512)
    assert sink.level


def test_notify_on_empty_overrides_no_interrupt_for_legacy(image: Path) -> None:
    t, mem, sink, clock, drv = up(image, True)
    assert t.features & S.bit(S.F_NOTIFY_ON_EMPTY)
    mem.poke(drv.avail, S.AVAIL_F_NO_INTERRUPT.to_bytes(2, "little"))
    drv.request(B.T_IN, 0, nbytes=512)
    assert sink.level


@BOTH
def test_event_idx(image: Path, legacy: bool) -> None:
    t, mem, sink, clock = make_slot(image, legacy=legacy)
    drv = BlkDriver(t, mem, clock)
    drv.init(drop=S.bit(S.F_NOTIFY_ON_EMPTY))
    assert t.live[0].event_idx
    used_event = drv.avail + 4 + 2 * drv.qsize
    avail_event = drv.used + 4 + 8 * drv.qsize
    drv.request(B.T_IN, 0, nbytes=512)                   # the first one always interrupts
    assert sink.edges == 1 and mem.peek(avail_event, 2) == (1).to_bytes(2, "little")
    drv.ack()
    mem.poke(used_event, (5).to_bytes(2, "little"))      # "interrupt me after entry 5"
    for i in range(4):
        drv.request(B.T_IN, i, nbytes=512)
    assert sink.edges == 1 and not sink.level
    drv.request(B.T_IN, 0, nbytes=512)                   # used idx 5 -> 6 passes 5
    assert sink.edges == 2
    assert mem.peek(avail_event, 2) == (6).to_bytes(2, "little")


# -- the hostile guest ------------------------------------------------------------------------

def broken(t, mem, sink, drv, why: str) -> None:
    """The device must be in DEVICE_NEEDS_RESET for `why`, having told the
    driver through a configuration interrupt, and must recover by reset."""
    assert drv.r(S.STATUS) & S.S_NEEDS_RESET
    assert t.stats()["needs_reset"] == 1 and t.stats()["dma_errors"] == 0
    assert drv.r(S.INTERRUPT_STATUS) == S.INT_CONFIG | S.INT_VRING and sink.level
    assert any(why in msg for _, msg in drv.logs), drv.logs
    assert mem.violations == []
    drv.w(S.QUEUE_NOTIFY, 0)                             # halted: ignored
    assert run_clock(drv.clock) == 0
    drv.avail_idx = drv.used_seen = drv.next_desc = 0
    assert drv.init() & S.S_DRIVER_OK and not drv.r(S.STATUS) & S.S_NEEDS_RESET
    assert not sink.level
    assert drv.request(B.T_IN, 7, nbytes=512)[:2] == (B.S_OK, sector(7))


def hostile(image: Path, legacy: bool, build, why: str) -> None:
    t, mem, sink, clock, drv = up(image, legacy)
    build(drv)
    run_clock(clock)
    broken(t, mem, sink, drv, why)


def _hdr(drv: BlkDriver, rtype: int = B.T_IN, sec: int = 0) -> int:
    drv.mem.poke(drv.HEADERS, HEADER.pack(rtype, 0, sec))
    return drv.HEADERS


CASES = {
    "loop": (lambda d: (d.put_desc(0, _hdr(d), 16, S.DESC_F_NEXT, 1),
                        d.put_desc(1, d.BUFS, 512, S.DESC_F_WRITE | S.DESC_F_NEXT, 0),
                        d.make_available(0)), "loops"),
    "next-out-of-bounds": (lambda d: (d.put_desc(0, _hdr(d), 16, S.DESC_F_NEXT, 16),
                                      d.make_available(0)), "past the table"),
    "head-past-the-ring": (lambda d: d.make_available(16), "past the table"),
    "avail-index-jump": (lambda d: (d.mem.poke(d.avail + 2, (17).to_bytes(2, "little")),
                                    d.w(S.QUEUE_NOTIFY, 0)), "more than the queue size"),
    "no-writable-status": (lambda d: (d.put_desc(0, _hdr(d), 16, 0), d.make_available(0)),
                           "no writable status"),
    "short-header": (lambda d: (d.put_desc(0, _hdr(d), 8, S.DESC_F_NEXT, 1),
                                d.put_desc(1, d.STATUS, 1, S.DESC_F_WRITE),
                                d.make_available(0)), "shorter than 16"),
    "buffer-outside-ram": (lambda d: (d.put_desc(0, _hdr(d), 16, S.DESC_F_NEXT, 1),
                                      d.put_desc(1, RAM_BASE + RAM_SIZE - 256, 512,
                                                 S.DESC_F_WRITE), d.make_available(0)),
                           "not inside RAM"),
    "buffer-in-mmio": (lambda d: (d.put_desc(0, 0x1000_1000, 16, S.DESC_F_NEXT, 1),
                                  d.put_desc(1, d.STATUS, 1, S.DESC_F_WRITE),
                                  d.make_available(0)), "not inside RAM"),
    "zero-length": (lambda d: (d.put_desc(0, _hdr(d), 16, S.DESC_F_NEXT, 1),
                               d.put_desc(1, d.BUFS, 0, S.DESC_F_WRITE), d.make_available(0)),
                    "length 0"),
    "readable-after-writable": (lambda d: (d.put_desc(0, d.STATUS, 1, S.DESC_F_WRITE | 1, 1),
                                           d.put_desc(1, _hdr(d), 16, 0), d.make_available(0)),
                                "readable after"),
    "indirect-loop": (lambda d: (d.mem.poke(d.TABLES, _desc(_hdr(d), 16, 1, 1)
                                            + _desc(d.STATUS, 1, 3, 0)),
                                 d.put_desc(0, d.TABLES, 32, S.DESC_F_INDIRECT),
                                 d.make_available(0)), "loops"),
    "indirect-next-out-of-bounds": (lambda d: (d.mem.poke(d.TABLES, _desc(_hdr(d), 16, 1, 2)
                                                          + _desc(d.STATUS, 1, 2, 0)),
                                               d.put_desc(0, d.TABLES, 32, S.DESC_F_INDIRECT),
                                               d.make_available(0)), "past the table of 2"),
    "indirect-bad-length": (lambda d: (d.put_desc(0, d.TABLES, 24, S.DESC_F_INDIRECT),
                                       d.make_available(0)), "not a multiple of 16"),
    "indirect-nested": (lambda d: (d.mem.poke(d.TABLES, _desc(d.TABLES, 16, 4, 0)),
                                   d.put_desc(0, d.TABLES, 16, S.DESC_F_INDIRECT),
                                   d.make_available(0)), "nests"),
    "indirect-with-next": (lambda d: (d.put_desc(0, d.TABLES, 16, S.DESC_F_INDIRECT | 1, 1),
                                      d.make_available(0)), "indirect and has NEXT"),
    "indirect-outside-ram": (lambda d: (d.put_desc(0, RAM_BASE + RAM_SIZE, 32,
                                                   S.DESC_F_INDIRECT),
                                        d.make_available(0)), "not inside RAM"),
}


def _desc(addr: int, length: int, flags: int, nxt: int) -> bytes:
    return DESC.pack(addr, length, flags, nxt)


@BOTH
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_chain_sets_needs_reset(image: Path, legacy: bool, case: str) -> None:
    build, why = CASES[case]
    hostile(image, legacy, build, why)


def test_indirect_without_the_feature(image: Path) -> None:
    t, mem, sink, clock = make_slot(image)
    drv = BlkDriver(t, mem, clock)
    t.log = lambda topic, msg: drv.logs.append((topic, msg))
    drv.logs = []  # type: ignore[attr-defined]
    drv.init(drop=S.bit(S.F_RING_INDIRECT_DESC))
    drv.post(B.T_IN, 0, nbytes=512, indirect=True)
    run_clock(clock)
    broken(t, mem, sink, drv, "was not negotiated")


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "modern"])
@pytest.mark.parametrize("what", ["size", "outside-ram", "misaligned"])
def test_bad_queue_layout_sets_needs_reset(image: Path, legacy: bool, what: str) -> None:
    t, mem, sink, clock = make_slot(image, legacy=legacy)
    drv = BlkDriver(t, mem, clock)
    t.log = lambda topic, msg: drv.logs.append((topic, msg))
    drv.logs = []  # type: ignore[attr-defined]
    if what == "size":
        drv.qsize = 12
    elif legacy:
        drv.desc = RAM_BASE + RAM_SIZE - 4096 if what == "outside-ram" else drv.desc + 8
        drv.page = 1 if what == "misaligned" else drv.page    # PFN in bytes: desc + 8
    else:
        drv.used = RAM_BASE + RAM_SIZE - 8 if what == "outside-ram" else drv.used + 2
    st = drv.init()
    assert st & S.S_NEEDS_RESET
    why = {"size": "not a power of two", "outside-ram": "not inside RAM",
           "misaligned": "aligned"}[what]
    assert any(why in m for _, m in drv.logs) and t.stats()["needs_reset"] == 1
    assert mem.violations == []
    drv.qsize = 16
    drv.__init__(t, mem, clock)  # type: ignore[misc]
    drv.logs = []  # type: ignore[attr-defined]
    assert drv.init() & S.S_DRIVER_OK and not drv.r(S.STATUS) & S.S_NEEDS_RESET
    assert drv.request(B.T_IN, 7, nbytes=512)[:2] == (B.S_OK, sector(7))


def test_legacy_queue_align_must_be_a_power_of_two(image: Path) -> None:
    t, mem, sink, clock = make_slot(image, legacy=True)
    drv = BlkDriver(t, mem, clock)
    drv.align = 3000
    assert drv.init() & S.S_NEEDS_RESET and t.stats()["needs_reset"] == 1


def test_needs_reset_before_driver_ok_sends_no_interrupt(image: Path) -> None:
    t, mem, sink, clock = make_slot(image)
    drv = BlkDriver(t, mem, clock)
    drv.qsize = 3
    drv.init()
    assert drv.r(S.STATUS) & S.S_NEEDS_RESET and drv.r(S.INTERRUPT_STATUS) == 0
    assert not sink.level


def test_each_descriptor_is_fetched_once_per_chain(image: Path) -> None:
    t, mem, sink, clock, drv = up(image, False)
    mem.reads.clear()
    drv.request(B.T_IN, 1, nbytes=1024)
    for i in range(3):
        assert mem.reads[drv.desc + 16 * i] == 1
    assert mem.reads[drv.HEADERS] == 1
    mem.reads.clear()
    drv.request(B.T_OUT, 1, data=b"o" * 512, indirect=True)
    table = drv.TABLES + 64 * 3
    assert mem.reads[table] == 1 and mem.reads[drv.desc + 16 * 3] == 1


def test_a_head_in_flight_cannot_be_made_available_again() -> None:
    mem = GuardedMem()
    q = SplitQueue(mem, 4, RAM_BASE, RAM_BASE + 0x100, RAM_BASE + 0x200)
    mem.poke(RAM_BASE, _desc(RAM_BASE + 0x1000, 16, 0, 0))
    mem.poke(RAM_BASE + 0x100, (0).to_bytes(2, "little") + (2).to_bytes(2, "little")
             + bytes(4))                                  # entries 0 and 1 both name head 0
    chain = q.pop()
    assert chain is not None and chain.head == 0
    with pytest.raises(VirtqueueError, match="while still in use"):
        q.pop()
    q.last_avail = 1
    q.push(chain, 0)
    assert q.pop() is not None                            # once returned, it may come back


class RacingMem(GuardedMem):
    """Guest RAM with a racing CPU: right after the device first reads a
    descriptor or the request header, the guest rewrites it into something
    hostile. A device that read it twice would fail or misbehave."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: dict[int, bytes] = {}

    def read(self, addr: int, size: int) -> bytes:
        data = super().read(addr, size)
        evil = self.targets.pop(addr, None)
        if evil is not None:
            self.poke(addr, evil)
        return data


@BOTH
def test_no_double_fetch_against_a_racing_guest(image: Path, legacy: bool) -> None:
    mem = RacingMem()
    t, _, sink, clock = make_slot(image, legacy=legacy, mem=mem)
    drv = BlkDriver(t, mem, clock)
    drv.init()
    evil_desc = DESC.pack(RAM_BASE + RAM_SIZE - 8, 4096, S.DESC_F_WRITE | S.DESC_F_NEXT, 999)
    head = drv.next_desc
    for i in range(3):
        mem.targets[drv.desc + 16 * (head + i)] = evil_desc
    mem.targets[drv.HEADERS + 16 * head] = HEADER.pack(B.T_OUT, 0, 1 << 50)
    assert drv.request(B.T_IN, 9, nbytes=512)[:2] == (B.S_OK, sector(9))
    assert mem.targets == {} and t.stats()["needs_reset"] == 0 and mem.violations == []


def test_a_scsi_shaped_request_is_unsupp(image: Path) -> None:
    t, mem, sink, clock, drv = up(image, False)
    hdr = drv.HEADERS
    mem.poke(hdr, HEADER.pack(B.T_SCSI_CMD, 0, 0) + bytes(16))
    chain = [(hdr, 16, 0), (hdr + 16, 16, 0), (drv.BUFS, 96, S.DESC_F_WRITE),
             (drv.BUFS + 96, 16, S.DESC_F_WRITE), (drv.STATUS, 1, S.DESC_F_WRITE)]
    for i, (addr, n, flags) in enumerate(chain):
        last = i + 1 == len(chain)
        drv.put_desc(i, addr, n, flags | (0 if last else S.DESC_F_NEXT), 0 if last else i + 1)
    drv.make_available(0)
    run_clock(clock)
    assert drv.used_entries() == [(0, 96 + 16 + 1)]
    assert mem.peek(drv.STATUS, 1)[0] == B.S_UNSUPP


def test_a_guest_racing_the_available_index_gets_one_queue_per_event(image: Path) -> None:
    """Each time the device reads the available index the guest has made one
    more request available: one service event still handles at most the
    queue's size of chains, and leaves the rest to another event."""

    class RacingIndex(GuardedMem):
        def read(self, addr: int, size: int) -> bytes:
            if addr == self.avail_idx_at:
                idx = int.from_bytes(self.peek(addr, 2), "little")
                self.poke(self.ring + 2 * (idx % 16), (0).to_bytes(2, "little"))
                self.poke(addr, ((idx + 1) & 0xFFFF).to_bytes(2, "little"))
            return super().read(addr, size)

    mem = RacingIndex()
    mem.avail_idx_at = -1
    t, _, sink, clock = make_slot(image, mem=mem)
    drv = BlkDriver(t, mem, clock)
    drv.init()
    drv.post(B.T_IN, 0, nbytes=512)
    mem.avail_idx_at, mem.ring = drv.avail + 2, drv.avail + 4
    clock.advance(clock.next_time())
    assert clock.run_due() == 1
    assert t.stats()["chains"] == 16 and clock.next_time() is not None
    assert t.stats()["needs_reset"] == 0


def test_a_legacy_relayout_keeps_the_queue_going(image: Path) -> None:
    t, mem, sink, clock, drv = up(image, True)
    for i in range(3):
        drv.request(B.T_IN, i, nbytes=512)
    drv.w(S.QUEUE_SEL, 0)
    drv.w(S.QUEUE_ALIGN, 4096)                # QEMU recomputes the rings: same place here
    drv.w(S.QUEUE_NOTIFY, 0)
    run_clock(clock)
    assert drv.used_entries() == []           # nothing new was made available
    assert drv.request(B.T_IN, 4, nbytes=512)[:2] == (B.S_OK, sector(4))
