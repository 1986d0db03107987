"""How long an embedded AoE target's disk takes to serve one request, in
virtual time: a RAM disk (no cost: the default), a flash device (fixed
latency plus transfer), or a rotating disk whose head position makes the
order of requests matter - Hugh Dickins' objection to a swapoff that reads
swap in page-table order rather than slot order.

The rotating model (`hdd`, a 7,200 rpm desktop disk as datasheets give it):

    service = seek(distance) + rotational wait + transfer
    seek(d) = 0 for d = 0, else track + (full - track) * sqrt(d / capacity)
              (the square-root law of arm acceleration; track-to-track
              1 ms, full stroke 14 ms, which averages about 8 ms over
              random pairs: E[sqrt|x - y|] = 8/15 of the full stroke)
    rotational wait: the platter turns once in 8.33 ms (7,200 rpm); the head
              waits until the request's first sector comes round (the
              sector's angle is its place on a track of 1,600 sectors,
              the platter's angle is virtual time modulo one turn): 4.17 ms
              on average
    transfer: one track per turn, 5,208 ns a sector (98 MB/s)
    streaming: a request that starts where the previous one ended, within
              a turn of its end, neither seeks nor waits - the drive's
              read-ahead and write cache keep a sequential stream at the
              media rate

Everything is a function of the head position, the request and the virtual
clock, so a run is deterministic without a random draw. `flash`: 80 us a
request plus 500 MB/s, whatever the order. A model is chosen with the
target spec's `disk=` option (emu/net/network.py).

Layer: net (imports only emu.core).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SECTOR = 512
MODELS = ("ram", "flash", "hdd")


@dataclass(frozen=True)
class DiskModel:
    """Service-time parameters (all times in ns, rates in bytes per second);
    `seek_full_ns == 0` means no arm (flash, RAM)."""

    name: str
    fixed_ns: int = 0              # per request (flash's latency)
    seek_track_ns: int = 0         # the shortest seek
    seek_full_ns: int = 0          # a full stroke
    sector_ns: int = 0             # media time of one sector (0: transfer is free)
    sectors_per_track: int = 0     # 0: no platter (no rotational wait, no streaming)

    @property
    def rotation_ns(self) -> int:
        """One turn of the platter (a whole number of sector times)."""
        return self.sector_ns * self.sectors_per_track

    def transfer_ns(self, sectors: int) -> int:
        return sectors * self.sector_ns

    def seek_ns(self, distance: int, capacity: int) -> int:
        """Arm travel over `distance` sectors of a disk of `capacity` sectors."""
        if not self.seek_full_ns or distance == 0:
            return 0
        span = self.seek_full_ns - self.seek_track_ns
        return self.seek_track_ns + int(span * math.sqrt(min(distance, capacity) / capacity))

    def rotation_wait_ns(self, at_ns: int, lba: int) -> int:
        """How long, from virtual time `at_ns`, until sector `lba` is under
        the head (0 without a platter)."""
        if not self.sectors_per_track:
            return 0
        want = (lba % self.sectors_per_track) * self.sector_ns
        return (want - at_ns) % self.rotation_ns


HDD = DiskModel("hdd", seek_track_ns=1_000_000, seek_full_ns=14_000_000, sector_ns=5_208,
                sectors_per_track=1_600)
FLASH = DiskModel("flash", fixed_ns=80_000, sector_ns=1_024)      # 500 MB/s
RAM = DiskModel("ram")


def model(name: str) -> DiskModel:
    """The model called `name` (one of MODELS). Raises ValueError."""
    try:
        return {"ram": RAM, "flash": FLASH, "hdd": HDD}[name]
    except KeyError:
        raise ValueError(f"disk={name!r}: expected one of {', '.join(MODELS)}") from None


class Disk:
    """One target's disk: the model plus where its head is. `serve` returns
    the service time of a request starting at virtual time `now_ns` and
    moves the head past it."""

    def __init__(self, disk_model: DiskModel, capacity: int) -> None:
        self.model = disk_model
        self.capacity = max(1, capacity)
        self.head = 0                  # the sector after the last one served
        self.done_ns = -(1 << 62)      # when the last request ended
        self.seeks = self.streamed = 0
        self.seek_ns = self.rotation_ns = self.transfer_ns = 0

    def serve(self, now_ns: int, lba: int, sectors: int) -> int:
        """Service time in ns of `sectors` sectors from `lba` at `now_ns`
        (the caller serves one request at a time: `now_ns` is never before
        the previous request's end)."""
        m = self.model
        xfer = m.transfer_ns(sectors)
        if m.sectors_per_track and lba == self.head and now_ns - self.done_ns <= m.rotation_ns:
            seek = wait = 0
            self.streamed += 1
        else:
            seek = m.seek_ns(abs(lba - self.head), self.capacity)
            wait = m.rotation_wait_ns(now_ns + m.fixed_ns + seek, lba)
        if seek:
            self.seeks += 1
        self.seek_ns += seek
        self.rotation_ns += wait
        self.transfer_ns += xfer
        self.head = lba + sectors
        total = m.fixed_ns + seek + wait + xfer
        self.done_ns = now_ns + total
        return total

    def stats(self) -> dict[str, int | str]:
        return {"model": self.model.name, "seeks": self.seeks, "streamed": self.streamed,
                "seek_ns": self.seek_ns, "rotation_ns": self.rotation_ns,
                "transfer_ns": self.transfer_ns}
