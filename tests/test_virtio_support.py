"""Shared helpers for the virtio tests: a virtio-mmio slot with a block
device over guarded guest RAM, and a block driver written the way guests
write theirs - legacy (version 1, as Linux's virtio_mmio does against
QEMU's default) and modern (version 2, the sequence xv6's virtio_disk.c
uses) - with rings in RAM, doorbells through MMIO and completion through
virtual time.

No tests live here; tests/test_virtio*.py import it.
"""

from __future__ import annotations

import struct
from pathlib import Path

from emu.core.clock import Clock
from emu.devices.bus import IrqLine
from emu.devices.virtio import blk as B
from emu.devices.virtio import spec as S
from emu.devices.virtio.mmio import VirtioMmio
from emu.machine.board import RAM_BASE
from tests.test_nic_support import GuardedMem

IRQ = 1
DESC = struct.Struct("<QIHH")
HEADER = struct.Struct("<IIQ")
PAGE = 4096


class Sink:
    """PLIC stand-in: the line's level and its rising edges."""

    def __init__(self) -> None:
        self.level = False
        self.edges = 0

    def set_level(self, source: int, level: bool) -> None:
        assert source == IRQ
        if level and not self.level:
            self.edges += 1
        self.level = level


def make_image(path: Path, sectors: int = 64, pattern: bool = True) -> Path:
    """A raw image of `sectors` sectors; sector i filled with byte i+1 when
    `pattern` (so every sector reads differently), else zeros."""
    data = b"".join(bytes([(i + 1) & 0xFF]) * B.SECTOR for i in range(sectors)) \
        if pattern else bytes(sectors * B.SECTOR)
    path.write_bytes(data)
    return path


OPEN: list[VirtioMmio] = []      # slots make_slot built, for close_all


def make_slot(image: Path | None, *, legacy: bool = False, mem: GuardedMem | None = None,
              **blk_kw: object) -> tuple[VirtioMmio, GuardedMem, Sink, Clock]:
    """A slot serving a VirtioBlk on `image` (None: an empty slot).
    Returns (transport, mem, irq sink, clock)."""
    mem = mem if mem is not None else GuardedMem()
    sink, clock = Sink(), Clock()
    dev = B.VirtioBlk(image, **blk_kw) if image is not None else None  # type: ignore[arg-type]
    t = VirtioMmio(mem, IrqLine(sink, IRQ), clock, dev, legacy=legacy)
    OPEN.append(t)
    return t, mem, sink, clock


def close_all() -> None:
    """Close every slot make_slot built (their image files), as a machine
    does at the end of a run."""
    while OPEN:
        OPEN.pop().close()


def run_clock(clock: Clock, limit: int = 10_000) -> int:
    """Fire every pending event in time order; return how many fired."""
    fired = 0
    while (at := clock.next_time()) is not None and fired < limit:
        clock.advance(at)
        fired += clock.run_due()
    return fired


def write_features(t: VirtioMmio, features: int, page: int = PAGE) -> None:
    """The driver's half of negotiation: legacy, GuestPageSize and feature
    word 0; modern, both feature words (FEATURES_OK is the caller's)."""
    if t.legacy:
        t.write(S.GUEST_PAGE_SIZE, 4, page)
        t.write(S.DRIVER_FEATURES_SEL, 4, 0)
        t.write(S.DRIVER_FEATURES, 4, features & 0xFFFF_FFFF)
        return
    for sel in (0, 1):
        t.write(S.DRIVER_FEATURES_SEL, 4, sel)
        t.write(S.DRIVER_FEATURES, 4, (features >> (32 * sel)) & 0xFFFF_FFFF)


class BlkDriver:
    """A virtio-blk driver in Python, rings and buffers at fixed places.

    Layout (from RAM base): the queue at 0x10000 (legacy: one contiguous
    region; modern: table, available and used ring a page apart), request
    headers at 0x20000 (16 bytes per descriptor index), status bytes at
    0x28000, indirect tables at 0x2c000 (64 bytes per descriptor index),
    data buffers from 0x30000 (`buf` bytes per descriptor index).
    """

    QMEM = RAM_BASE + 0x1_0000
    HEADERS = RAM_BASE + 0x2_0000
    STATUS = RAM_BASE + 0x2_8000
    TABLES = RAM_BASE + 0x2_C000
    BUFS = RAM_BASE + 0x3_0000

    def __init__(self, t: VirtioMmio, mem: GuardedMem, clock: Clock, qsize: int = 16,
                 buf: int = 4096) -> None:
        self.t, self.mem, self.clock = t, mem, clock
        self.qsize, self.buf = qsize, buf
        self.avail_idx = 0
        self.used_seen = 0
        self.next_desc = 0
        self.features = 0
        self.page = self.align = PAGE          # legacy GuestPageSize and QueueAlign
        if t.legacy:
            self.desc = self.QMEM
            self.avail = self.desc + 16 * qsize
            self.used = -(-(self.avail + 2 * (3 + qsize)) // PAGE) * PAGE
        else:
            self.desc, self.avail, self.used = self.QMEM, self.QMEM + PAGE, self.QMEM + 2 * PAGE

    def r(self, off: int) -> int:
        return self.t.read(off, 4)

    def w(self, off: int, value: int) -> None:
        self.t.write(off, 4, value)

    def offered(self) -> int:
        self.w(S.DEVICE_FEATURES_SEL, 0)
        lo = self.r(S.DEVICE_FEATURES)
        self.w(S.DEVICE_FEATURES_SEL, 1)
        return lo | (self.r(S.DEVICE_FEATURES) << 32)

    def init(self, accept: int | None = None, drop: int = 0) -> int:
        """Bring the device up (reset, ACK, DRIVER, features, queue 0,
        DRIVER_OK). Accepts `accept` (default: everything offered) minus
        `drop`. Returns the status register after FEATURES_OK (modern) or
        after DRIVER_OK (legacy)."""
        self.w(S.STATUS, 0)
        self.w(S.STATUS, S.S_ACKNOWLEDGE)
        self.w(S.STATUS, S.S_ACKNOWLEDGE | S.S_DRIVER)
        offered = self.offered()
        self.features = (offered if accept is None else accept) & ~drop
        st = S.S_ACKNOWLEDGE | S.S_DRIVER
        write_features(self.t, self.features, self.page)
        if not self.t.legacy:
            self.w(S.STATUS, st | S.S_FEATURES_OK)
            got = self.r(S.STATUS)
            if not got & S.S_FEATURES_OK:
                return got
            st |= S.S_FEATURES_OK
        self.mem.poke(self.QMEM, bytes(3 * PAGE))
        self.w(S.QUEUE_SEL, 0)
        self.w(S.QUEUE_NUM, self.qsize)
        if self.t.legacy:
            self.w(S.QUEUE_ALIGN, self.align)
            self.w(S.QUEUE_PFN, self.desc // self.page)
        else:
            assert self.r(S.QUEUE_READY) == 0
            for off, addr in ((S.QUEUE_DESC_LOW, self.desc), (S.QUEUE_DRIVER_LOW, self.avail),
                              (S.QUEUE_DEVICE_LOW, self.used)):
                self.w(off, addr & 0xFFFF_FFFF)
                self.w(off + 4, addr >> 32)
            self.w(S.QUEUE_READY, 1)
        self.w(S.STATUS, st | S.S_DRIVER_OK)
        return self.r(S.STATUS)

    # -- rings ---------------------------------------------------------------------
    def put_desc(self, i: int, addr: int, length: int, flags: int, nxt: int = 0) -> None:
        self.mem.poke(self.desc + 16 * i, DESC.pack(addr, length, flags, nxt))

    def make_available(self, head: int, kick: bool = True) -> None:
        self.mem.poke(self.avail + 4 + 2 * (self.avail_idx % self.qsize),
                      head.to_bytes(2, "little"))
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.mem.poke(self.avail + 2, self.avail_idx.to_bytes(2, "little"))
        if kick:
            self.w(S.QUEUE_NOTIFY, 0)

    def used_entries(self) -> list[tuple[int, int]]:
        """New (id, len) used entries since the last call."""
        idx = int.from_bytes(self.mem.peek(self.used + 2, 2), "little")
        out = []
        while self.used_seen != idx:
            slot = self.used + 4 + 8 * (self.used_seen % self.qsize)
            out.append(struct.unpack("<II", self.mem.peek(slot, 8)))
            self.used_seen = (self.used_seen + 1) & 0xFFFF
        return out

    def alloc(self, n: int) -> list[int]:
        """`n` descriptor indices (round robin: tests complete each request)."""
        out = [(self.next_desc + k) % self.qsize for k in range(n)]
        self.next_desc = (self.next_desc + n) % self.qsize
        return out

    # -- requests ------------------------------------------------------------------
    def post(self, rtype: int, sector: int = 0, data: bytes = b"", nbytes: int = 0,
             layout: int = 3, indirect: bool = False, kick: bool = True) -> int:
        """Post one request; return its head. `data` for OUT, `nbytes` to
        read for IN/GET_ID. layout 3: header | data | status; layout 2:
        header+data in one readable buffer (OUT), or data+status in one
        writable buffer (IN). With `indirect`, the chain sits in an
        indirect table named by one descriptor."""
        head_i = self.alloc(1)[0]
        hdr_addr = self.HEADERS + 16 * head_i
        st_addr = self.STATUS + head_i
        buf_addr = self.BUFS + self.buf * head_i
        self.mem.poke(st_addr, b"\xff")
        descs: list[tuple[int, int, int]] = []        # addr, len, flags
        writing = bool(data)
        if layout == 2 and writing:
            self.mem.poke(hdr_addr, HEADER.pack(rtype, 0, sector))
            self.mem.poke(buf_addr, HEADER.pack(rtype, 0, sector) + data)
            descs += [(buf_addr, 16 + len(data), 0), (st_addr, 1, S.DESC_F_WRITE)]
        elif layout == 2:
            self.mem.poke(hdr_addr, HEADER.pack(rtype, 0, sector))
            st_addr = buf_addr + nbytes
            self.mem.poke(st_addr, b"\xff")
            descs += [(hdr_addr, 16, 0), (buf_addr, nbytes + 1, S.DESC_F_WRITE)]
        else:
            self.mem.poke(hdr_addr, HEADER.pack(rtype, 0, sector))
            descs.append((hdr_addr, 16, 0))
            if writing:
                self.mem.poke(buf_addr, data)
                descs.append((buf_addr, len(data), 0))
            elif nbytes:
                descs.append((buf_addr, nbytes, S.DESC_F_WRITE))
            descs.append((st_addr, 1, S.DESC_F_WRITE))
        self.status_addr, self.data_addr = st_addr, buf_addr
        if indirect:
            table = self.TABLES + 64 * head_i
            for k, (a, n, f) in enumerate(descs):
                nxt = k + 1 if k + 1 < len(descs) else 0
                fl = f | (S.DESC_F_NEXT if k + 1 < len(descs) else 0)
                self.mem.poke(table + 16 * k, DESC.pack(a, n, fl, nxt))
            self.put_desc(head_i, table, 16 * len(descs), S.DESC_F_INDIRECT)
        else:
            idx = [head_i] + self.alloc(len(descs) - 1)
            for k, (a, n, f) in enumerate(descs):
                last = k + 1 == len(descs)
                self.put_desc(idx[k], a, n, f | (0 if last else S.DESC_F_NEXT),
                              0 if last else idx[k + 1])
        self.make_available(head_i, kick)
        return head_i

    def request(self, rtype: int, sector: int = 0, data: bytes = b"", nbytes: int = 0,
                **kw: object) -> tuple[int, bytes, int]:
        """Post one request, run virtual time, and return (status, data read,
        used length). Fails if the device did not complete exactly it."""
        head = self.post(rtype, sector, data, nbytes, **kw)  # type: ignore[arg-type]
        st_addr, buf_addr = self.status_addr, self.data_addr
        run_clock(self.clock)
        used = self.used_entries()
        assert [u[0] for u in used] == [head], (used, head)
        return self.mem.peek(st_addr, 1)[0], self.mem.peek(buf_addr, nbytes), used[0][1]

    def ack(self) -> int:
        """Read and acknowledge InterruptStatus; return what it was."""
        isr = self.r(S.INTERRUPT_STATUS)
        self.w(S.INTERRUPT_ACK, isr)
        return isr
