"""A raw disk image file seen as 512-byte sectors: the backing store of
virtio-blk, and the snapshot overlay that keeps the file unchanged (QEMU's
`-snapshot`: writes go to memory and are gone when the run ends).

Writes go to the file at once (os.pwrite: the host's page cache is the
write cache, as with QEMU's default cache=writeback); flush() makes them
durable (fdatasync) and close() flushes and releases the file. Callers
check sector ranges first; every I/O failure is an OSError, which the
device reports to the guest as VIRTIO_BLK_S_IOERR.

Layer: devices (imports nothing from emu).
"""

from __future__ import annotations

import errno
import os
import stat

SECTOR = 512
CHUNK = 64 << 10            # overlay granule: copy-on-write 64 KiB at a time
_ZERO_CHUNK = bytes(CHUNK)  # one shared all-zero overlay chunk
_ZEROS = bytes(1 << 20)     # for writing zeros to the file a megabyte at a time


class DiskImage:
    """A raw image of `size` bytes (`sectors` 512-byte sectors).

    With `snapshot` the file is opened read-only and writes land in an
    in-memory overlay of CHUNK-sized copies; with `read_only` writes fail
    (EROFS).
    """

    def __init__(self, path: str | os.PathLike[str], *, snapshot: bool = False,
                 read_only: bool = False) -> None:
        """Open `path`. Raises OSError if it cannot be opened (missing,
        no permission) and ValueError if it is not a regular file or its
        size is not a multiple of 512; both carry a one-line message."""
        self.path = os.fspath(path)
        self.snapshot = snapshot
        self.read_only = read_only
        if not stat.S_ISREG(os.stat(self.path).st_mode):     # before open: a FIFO would block
            raise ValueError(f"disk image {self.path}: not a regular file")
        flags = os.O_RDONLY if (snapshot or read_only) else os.O_RDWR
        fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"disk image {self.path}: not a regular file")
            if st.st_size % SECTOR:
                raise ValueError(f"disk image {self.path}: size {st.st_size} is not a "
                                 f"multiple of {SECTOR} bytes")
        except BaseException:
            os.close(fd)
            raise
        self.fd: int | None = fd
        self.size = st.st_size
        self.sectors = st.st_size // SECTOR
        self.overlay: dict[int, bytes | bytearray] = {}

    def _fd(self) -> int:
        if self.fd is None:
            raise OSError(errno.EBADF, f"disk image {self.path} is closed")
        return self.fd

    def _pread(self, offset: int, n: int) -> bytes:
        data = os.pread(self._fd(), n, offset)
        if len(data) != n:                 # the file shrank under us
            raise OSError(errno.EIO, f"short read of {self.path} at {offset}")
        return data

    def read(self, start: int, n: int) -> bytes:
        """Return bytes [start, start+n) of the disk, overlay first."""
        end = start + n
        if not self.overlay:
            return self._pread(start, end - start)
        out = bytearray()
        pos = start
        while pos < end:
            ci, off = divmod(pos, CHUNK)
            take = min(end - pos, CHUNK - off)
            chunk = self.overlay.get(ci)
            out += chunk[off:off + take] if chunk is not None else self._pread(pos, take)
            pos += take
        return bytes(out)

    def write(self, start: int, data: bytes) -> None:
        """Store `data` at byte `start` of the disk."""
        if self.read_only:
            raise OSError(errno.EROFS, f"disk image {self.path} is read-only")
        if not self.snapshot:
            self._pwrite(start, data)
            return
        pos = 0
        while pos < len(data):
            ci, off = divmod(start + pos, CHUNK)
            take = min(len(data) - pos, CHUNK - off)
            chunk = self.overlay.get(ci)
            if not isinstance(chunk, bytearray):       # first write, or a shared zero chunk
                chunk = bytearray(chunk if chunk is not None else self._chunk_from_file(ci))
                self.overlay[ci] = chunk
            chunk[off:off + take] = data[pos:pos + take]
            pos += take

    def write_zeroes(self, start: int, n: int) -> None:
        """Zero bytes [start, start+n) without building them in memory."""
        if self.read_only:
            raise OSError(errno.EROFS, f"disk image {self.path} is read-only")
        end = start + n
        pos = start
        while pos < end:
            if self.snapshot:
                ci, off = divmod(pos, CHUNK)
                clen = min(CHUNK, self.size - ci * CHUNK)
                take = min(end - pos, clen - off)
                if take == clen:             # a whole chunk: shared, copied on a later write
                    self.overlay[ci] = _ZERO_CHUNK if clen == CHUNK else bytes(clen)
                else:
                    self.write(pos, bytes(take))
            else:
                take = min(end - pos, len(_ZEROS))
                self._pwrite(pos, _ZEROS[:take])
            pos += take

    def _chunk_from_file(self, ci: int) -> bytes:
        start = ci * CHUNK
        return self._pread(start, min(CHUNK, self.size - start))

    def _pwrite(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd(), view, offset)
            view, offset = view[n:], offset + n

    def flush(self) -> None:
        """Make every completed write durable in the file (no-op for a
        snapshot or a read-only image)."""
        if not (self.snapshot or self.read_only):
            fdatasync = getattr(os, "fdatasync", os.fsync)
            fdatasync(self._fd())

    def close(self) -> None:
        """Flush and release the file; drop a snapshot's overlay. Idempotent."""
        if self.fd is None:
            return
        try:
            self.flush()
        finally:
            os.close(self.fd)
            self.fd = None
            self.overlay.clear()
