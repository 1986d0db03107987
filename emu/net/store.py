"""Backing stores of an AoE target: 512-byte sectors in memory or in a (sparse) file.

A store has `nsectors`, `read(lba, count) -> bytes`, `write(lba, data)` and
`flush()`. Callers (emu/net/aoe_target.py) check ranges first, exactly as
vblade does before its pread/pwrite; the stores check again and raise
ValueError, so a bad range can never touch memory or a file outside the
device.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

import os
from typing import Protocol

SECTOR = 512
CHUNK = 8 * SECTOR             # MemoryStore's unit of allocation: one 4 KiB page
_ZERO_CHUNK = bytes(CHUNK)     # what never-written sectors read


class BlockStore(Protocol):
    """What a target needs from its disk."""

    nsectors: int

    def read(self, lba: int, count: int) -> bytes:
        """Return count sectors from lba."""

    def write(self, lba: int, data: bytes | memoryview) -> None:
        """Write whole sectors of data at lba."""

    def flush(self) -> None:
        """Make written data durable."""


def _check(nsectors: int, lba: int, count: int) -> None:
    if lba < 0 or count < 0 or lba + count > nsectors:
        raise ValueError(f"sectors {lba}..{lba + count} outside a {nsectors}-sector device")


class MemoryStore:
    """A sparse in-memory disk: only 4 KiB chunks that were written take memory.

    A chunk is 8 sectors, one guest page: a page-sized request touches one or
    two dict entries instead of 8 or 16 sector entries.
    """

    def __init__(self, nsectors: int) -> None:
        """Create an all-zero disk of `nsectors` sectors. Raises ValueError if < 1."""
        if nsectors < 1:
            raise ValueError(f"a disk needs at least one sector, not {nsectors}")
        self.nsectors = int(nsectors)
        self._chunks: dict[int, bytearray] = {}
        self._written: dict[int, int] = {}     # chunk -> bit mask of sectors written

    def read(self, lba: int, count: int) -> bytes:
        """Return `count` sectors from `lba` (zeros where never written)."""
        _check(self.nsectors, lba, count)
        start, end = lba * SECTOR, (lba + count) * SECTOR
        get = self._chunks.get
        parts = []
        for k in range(start // CHUNK, -(-end // CHUNK)):
            base = k * CHUNK
            lo, hi = max(start, base) - base, min(end, base + CHUNK) - base
            chunk = get(k)
            parts.append(_ZERO_CHUNK[lo:hi] if chunk is None else memoryview(chunk)[lo:hi])
        return b"".join(parts)

    def write(self, lba: int, data: bytes | memoryview) -> None:
        """Write `data` (a multiple of 512 bytes) at `lba`."""
        if len(data) % SECTOR:
            raise ValueError(f"write of {len(data)} bytes is not whole sectors")
        count = len(data) // SECTOR
        _check(self.nsectors, lba, count)
        start, end = lba * SECTOR, (lba + count) * SECTOR
        mv = memoryview(data).cast("B")
        chunks, written = self._chunks, self._written
        pos = 0
        for k in range(start // CHUNK, -(-end // CHUNK)):
            base = k * CHUNK
            lo, hi = max(start, base) - base, min(end, base + CHUNK) - base
            chunk = chunks.get(k)
            if chunk is None:
                chunk = chunks[k] = bytearray(CHUNK)
            chunk[lo:hi] = mv[pos:pos + hi - lo]
            pos += hi - lo
            mask = ((1 << (hi // SECTOR)) - 1) ^ ((1 << (lo // SECTOR)) - 1)
            written[k] = written.get(k, 0) | mask

    def flush(self) -> None:
        """Nothing to do: memory is as durable as it gets here."""

    @property
    def used_sectors(self) -> int:
        """How many sectors hold data (have been written)."""
        return sum(mask.bit_count() for mask in self._written.values())


class FileStore:
    """A disk backed by a file (or block device), read and written with pread/pwrite."""

    def __init__(self, path: str, *, readonly: bool = False) -> None:
        """Open `path`; its size // 512 is the disk size. Raises OSError if it
        cannot be opened, ValueError if it is smaller than one sector."""
        self.path = path
        self.readonly = readonly
        self.fd = os.open(path, os.O_RDONLY if readonly else os.O_RDWR)
        size = os.lseek(self.fd, 0, os.SEEK_END)
        if size < SECTOR:
            os.close(self.fd)
            raise ValueError(f"{path}: {size} bytes is smaller than one 512-byte sector")
        self.nsectors = size // SECTOR

    @classmethod
    def create(cls, path: str, nbytes: int) -> FileStore:
        """Create (or truncate) a sparse file of `nbytes` and open it."""
        with open(path, "wb") as f:
            f.truncate(nbytes)
        return cls(path)

    def read(self, lba: int, count: int) -> bytes:
        """Return `count` sectors from `lba`."""
        _check(self.nsectors, lba, count)
        data = os.pread(self.fd, count * SECTOR, lba * SECTOR)
        return data if len(data) == count * SECTOR else data.ljust(count * SECTOR, b"\0")

    def write(self, lba: int, data: bytes | memoryview) -> None:
        """Write `data` (whole sectors) at `lba`. Raises OSError if read-only."""
        if len(data) % SECTOR:
            raise ValueError(f"write of {len(data)} bytes is not whole sectors")
        _check(self.nsectors, lba, len(data) // SECTOR)
        os.pwrite(self.fd, data, lba * SECTOR)

    def flush(self) -> None:
        """fsync the file."""
        os.fsync(self.fd)

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
