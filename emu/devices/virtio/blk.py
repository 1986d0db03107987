"""virtio-blk (virtio 1.2, 5.2) backed by a raw image file: one request
queue; requests IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES; status
bytes OK/IOERR/UNSUPP; the configuration space QEMU 7.2 reports, and a
snapshot mode that keeps the file unchanged (image.py).

A request is a chain: a 16-byte header (type, reserved, sector) in the
device-readable part, data after it (OUT) or in the device-writable part
(IN, GET_ID), and the status in the last writable byte - however the
driver splits that across descriptors (any layout, as QEMU reads it). Data
moves piece by piece between guest buffers and the image, so a request
needs no host memory beyond its largest buffer. A chain with no writable
byte or a header under 16 bytes is a broken rule (QEMU's "missing headers"
and "outhdr too short": DEVICE_NEEDS_RESET); a sector range past the disk,
or a length that is not a multiple of 512, is IOERR (QEMU's
virtio_blk_sect_range_ok); a request type it does not serve is UNSUPP (a
SCSI command as QEMU answers it without passthrough: IOERR unless the chain
has a SCSI request's shape).

Layer: devices (imports emu.core).
"""

from __future__ import annotations

import os
import struct

from emu.devices.virtio import spec
from emu.devices.virtio.device import VirtioDevice
from emu.devices.virtio.image import SECTOR, DiskImage
from emu.devices.virtio.queue import Chain, VirtqueueError

# --- feature bits (spec 5.2.3) ---------------------------------------------------
F_SIZE_MAX = 1
F_SEG_MAX = 2
F_GEOMETRY = 4
F_RO = 5
F_BLK_SIZE = 6
F_FLUSH = 9
F_TOPOLOGY = 10
F_CONFIG_WCE = 11
F_MQ = 12
F_DISCARD = 13
F_WRITE_ZEROES = 14

# --- request types and status (spec 5.2.6) ------------------------------------------
T_IN = 0
T_OUT = 1
T_SCSI_CMD = 2
T_FLUSH = 4
T_GET_ID = 8
T_GET_LIFETIME = 10
T_DISCARD = 11
T_WRITE_ZEROES = 13
T_BARRIER = 0x8000_0000         # legacy flag, ignored (as QEMU does)
S_OK = 0
S_IOERR = 1
S_UNSUPP = 2
WRITE_ZEROES_F_UNMAP = 0x1

ID_BYTES = 20                   # VIRTIO_BLK_ID_BYTES
QUEUE_SIZE = 256                # QEMU's queue-size default: seg_max = QUEUE_SIZE - 2
MAX_DISCARD_SECTORS = 0x3F_FFFF  # QEMU 7.2's defaults (BDRV_REQUEST_MAX_SECTORS)
MAX_WRITE_ZEROES_SECTORS = 0x3F_FFFF

_HEADER = struct.Struct("<IIQ")          # type, reserved, sector
_SEGMENT = struct.Struct("<QII")         # discard/write zeroes: sector, num_sectors, flags
# struct virtio_blk_config up to write_zeroes_may_unmap (57 bytes, QEMU 7.2's config_len)
_CONFIG = struct.Struct("<QIIHBBIBBHIBBHIIIIIB")

STAT_NAMES: tuple[str, ...] = (
    "reads", "writes", "flushes", "get_ids", "discards", "write_zeroes",
    "bytes_read", "bytes_written", "ioerr", "unsupp",
)


class VirtioBlk(VirtioDevice):
    """A virtio block device over a DiskImage.

    `serial` is what GET_ID returns (QEMU's `serial=`; empty by default, as
    QEMU's); `read_only` offers VIRTIO_BLK_F_RO and fails writes with
    IOERR; `snapshot` keeps the file unchanged.
    """

    name = "virtio-blk"
    device_id = spec.DEVICE_ID_BLOCK
    queue_max = (1024,)                 # QEMU's QueueNumMax for every queue

    def __init__(self, path: str | os.PathLike[str], *, snapshot: bool = False,
                 read_only: bool = False, serial: str = "") -> None:
        """Open the image (see DiskImage for the errors it raises)."""
        super().__init__()
        self.image = DiskImage(path, snapshot=snapshot, read_only=read_only)
        self.serial = serial.encode()
        self.writeback = True            # QEMU's cache=writeback: config `writeback` 1
        self._stats = dict.fromkeys(STAT_NAMES, 0)

    def stats(self) -> dict[str, int]:
        """A copy of the request counters, keyed by STAT_NAMES."""
        return dict(self._stats)

    # -- what the transport asks ------------------------------------------------
    def features(self, modern: bool) -> int:
        """QEMU 7.2's virtio-blk features less GEOMETRY (and legacy's SCSI):
        the same set on both versions; RO for a read-only image."""
        bits = (F_SEG_MAX, F_BLK_SIZE, F_FLUSH, F_TOPOLOGY, F_CONFIG_WCE, F_DISCARD,
                F_WRITE_ZEROES, spec.F_RING_INDIRECT_DESC, spec.F_RING_EVENT_IDX)
        offered = sum(spec.bit(b) for b in bits)
        if self.image.read_only:
            offered |= spec.bit(F_RO)
        return offered

    def config(self) -> bytes:
        """struct virtio_blk_config with QEMU 7.2's values (docs/virtio.md)."""
        return _CONFIG.pack(
            self.image.sectors,          # capacity, in 512-byte sectors
            0, QUEUE_SIZE - 2,           # size_max (not offered), seg_max
            0, 0, 0,                     # geometry (not offered)
            SECTOR,                      # blk_size
            0, 0, 0, 0,                  # topology: exp, alignment, min_io, opt_io
            int(self.writeback), 0,      # writeback, unused
            1,                           # num_queues
            MAX_DISCARD_SECTORS, 1, 1,   # max_discard_sectors, max_discard_seg, alignment
            MAX_WRITE_ZEROES_SECTORS, 1, 1)  # max_write_zeroes_sectors, seg, may_unmap

    def config_write(self, offset: int, data: bytes) -> None:
        """Only `writeback` (offset 32) is writable: 0 = writethrough."""
        wce = 32 - offset
        if 0 <= wce < len(data):
            self.writeback = data[wce] != 0

    def activate(self, features: int) -> None:
        """A driver without CONFIG_WCE gets writeback only if it can flush
        (spec 5.2.5.1; QEMU's virtio_blk_set_status)."""
        if not features & spec.bit(F_CONFIG_WCE):
            self.writeback = bool(features & spec.bit(F_FLUSH))

    def close(self) -> None:
        """Flush and close the image (idempotent)."""
        self.image.close()

    def queue_notify(self, queue: int) -> None:
        """Serve every available request of the one queue."""
        t = self.transport
        assert t is not None
        while (chain := t.pop(0)) is not None:
            t.push(0, chain, self._request(chain))

    # -- requests ---------------------------------------------------------------------
    def _request(self, chain: Chain) -> int:
        """Serve one request; return the used length (all writable bytes,
        as QEMU reports). Raises VirtqueueError for a malformed chain."""
        t = self.transport
        assert t is not None
        wlen = chain.writable_len
        if wlen == 0:
            raise VirtqueueError(f"block request {chain.head} has no writable status byte")
        if chain.readable_len < _HEADER.size:
            raise VirtqueueError(f"block request {chain.head}: header shorter than 16 bytes")
        rtype, _, sector = _HEADER.unpack(chain.gather(t.mem, 0, _HEADER.size))
        status = self._dispatch(chain, rtype, sector, chain.readable_len - _HEADER.size, wlen - 1)
        if status == S_IOERR:
            self._stats["ioerr"] += 1
        elif status == S_UNSUPP:
            self._stats["unsupp"] += 1
        chain.scatter(t.mem, wlen - 1, bytes([status]))
        return wlen

    def _dispatch(self, chain: Chain, rtype: int, sector: int, out_len: int, in_len: int) -> int:
        """Serve a request of type `rtype`; return its status byte.
        `out_len`: readable bytes after the header; `in_len`: writable
        bytes before the status."""
        kind = rtype & ~(T_OUT | T_BARRIER)        # QEMU's dispatch
        try:
            if kind == T_IN:
                if rtype & T_OUT:
                    return self._write(chain, sector, out_len)
                return self._read(chain, sector, in_len)
            if kind == T_FLUSH:
                self._stats["flushes"] += 1
                self.image.flush()
                return S_OK
            if kind == T_GET_ID:
                self._stats["get_ids"] += 1
                ident = self.serial + b"\0"
                assert self.transport is not None
                chain.scatter(self.transport.mem, 0, ident[:min(len(ident), in_len, ID_BYTES)])
                return S_OK
            if kind in (T_DISCARD & ~T_OUT, T_WRITE_ZEROES & ~T_OUT):
                return self._discard_or_zero(chain, rtype, out_len)
            if kind == T_SCSI_CMD:      # QEMU: IOERR unless the chain has SCSI's shape
                return S_UNSUPP if len(chain.readable) >= 2 and len(chain.writable) >= 3 \
                    else S_IOERR
        except OSError as e:
            t = self.transport
            assert t is not None
            t.log("guest_errors", f"{self.name}: I/O error on {self.image.path}: {e}")
            return S_IOERR
        return S_UNSUPP

    def _range_ok(self, sector: int, nbytes: int) -> bool:
        """QEMU's virtio_blk_sect_range_ok for 512-byte logical blocks."""
        total = self.image.sectors
        n = nbytes // SECTOR
        return nbytes % SECTOR == 0 and sector <= total and n <= total - sector

    def _read(self, chain: Chain, sector: int, n: int) -> int:
        if not self._range_ok(sector, n):
            return S_IOERR
        t = self.transport
        assert t is not None
        pos = sector * SECTOR
        for addr, k in chain.pieces(True, 0, n):
            t.mem.write(addr, self.image.read(pos, k))
            pos += k
        self._stats["reads"] += 1
        self._stats["bytes_read"] += n
        return S_OK

    def _write(self, chain: Chain, sector: int, n: int) -> int:
        if not self._range_ok(sector, n):
            return S_IOERR
        t = self.transport
        assert t is not None
        pos = sector * SECTOR
        for addr, k in chain.pieces(False, _HEADER.size, n):
            self.image.write(pos, t.mem.read(addr, k))
            pos += k
        if not self.writeback:
            self.image.flush()
        self._stats["writes"] += 1
        self._stats["bytes_written"] += n
        return S_OK

    def _discard_or_zero(self, chain: Chain, rtype: int, out_len: int) -> int:
        """DISCARD / WRITE_ZEROES with one segment, as QEMU 7.2 serves them
        (discard is a no-op: QEMU's default -drive discard=ignore)."""
        if not rtype & T_OUT or out_len > _SEGMENT.size:
            return S_UNSUPP
        if out_len < _SEGMENT.size:
            raise VirtqueueError(f"block request {chain.head}: discard/write zeroes "
                                 "segment shorter than 16 bytes")
        t = self.transport
        assert t is not None
        sector, count, flags = _SEGMENT.unpack(chain.gather(t.mem, _HEADER.size, _SEGMENT.size))
        zeroes = rtype & ~T_BARRIER == T_WRITE_ZEROES
        limit = MAX_WRITE_ZEROES_SECTORS if zeroes else MAX_DISCARD_SECTORS
        if count > limit or not self._range_ok(sector, count * SECTOR):
            return S_IOERR
        if flags & ~WRITE_ZEROES_F_UNMAP or (not zeroes and flags):
            return S_UNSUPP
        if zeroes:
            self._stats["write_zeroes"] += 1
            self.image.write_zeroes(sector * SECTOR, count * SECTOR)
            if not self.writeback:
                self.image.flush()
        else:
            self._stats["discards"] += 1
        return S_OK
