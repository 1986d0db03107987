"""A minimal AoE initiator endpoint in virtual time, for tests, benchmarks and traces.

Not the guest's driver (that runs in the guest): a host-side client that
exercises targets through the segment the way drivers/block/aoe does in
miniature. Every request waits for the reply carrying its tag; after `rto_ns`
without one it is sent again with a *new* tag (as aoecmd.c does, so a late
reply to an old tag is recognised and dropped as unknown), up to `max_tries`.
Replies with unknown tags, duplicates of answered ones, and frames with a bad
FCS are counted and dropped.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from emu.core.clock import Clock, Event
from emu.net.codec import AoEFrame, FrameError, build_ata, build_config, pad, parse
from emu.net.fcs import append_fcs, strip_fcs
from emu.net.frames import (
    AFLAG_E,
    AFLAG_W,
    ATA_FLUSH,
    ATA_IDENTIFY,
    ATA_READ_EXT,
    ATA_WRITE_EXT,
    BROADCAST,
    CMD_ATA,
    CMD_CONFIG,
    FLAG_R,
    SECTOR,
)

Callback = Callable[[AoEFrame | None], None]  # the reply, or None after max_tries


@dataclass
class InitiatorStats:
    """Counters of the initiator."""

    requests: int = 0
    sent: int = 0
    retransmits: int = 0
    replies: int = 0
    failed: int = 0          # gave up after max_tries
    unknown_tags: int = 0    # late replies to retransmitted tags, duplicates, strangers
    crc_errors: int = 0
    not_aoe: int = 0


@dataclass
class _Pending:
    build: Callable[[int], bytes]
    callback: Callback
    tries: int
    timer: Event | None = None


class Initiator:
    """Sends AoE requests to one target (shelf, slot) and matches replies by tag."""

    def __init__(self, clock: Clock, mac: bytes, *, shelf: int, slot: int,
                 target_mac: bytes = BROADCAST, rto_ns: int = 2_000_000,
                 max_tries: int = 30) -> None:
        """Create an initiator with MAC `mac`; attach it and set `port`."""
        self.clock, self.mac = clock, bytes(mac)
        self.shelf, self.slot = shelf, slot
        self.target_mac = bytes(target_mac)
        self.rto_ns, self.max_tries = rto_ns, max_tries
        self.port: Any = None
        self.stats = InitiatorStats()
        self._next_tag = 1
        self._pending: dict[int, _Pending] = {}

    # -- requests ---------------------------------------------------------------
    def read(self, lba: int, count: int, callback: Callback) -> None:
        """READ SECTORS EXT `count` sectors at `lba`."""
        self._submit(lambda tag: build_ata(self.target_mac, self.mac, self.shelf, self.slot,
                                           tag, aflags=AFLAG_E, scnt=count,
                                           cmdstat=ATA_READ_EXT, lba=lba), callback)

    def write(self, lba: int, data: bytes, callback: Callback) -> None:
        """WRITE SECTORS EXT of `data` (whole sectors) at `lba`."""
        self._submit(lambda tag: build_ata(self.target_mac, self.mac, self.shelf, self.slot,
                                           tag, aflags=AFLAG_E | AFLAG_W,
                                           scnt=len(data) // SECTOR, cmdstat=ATA_WRITE_EXT,
                                           lba=lba, data=data), callback)

    def identify(self, callback: Callback) -> None:
        """IDENTIFY DEVICE."""
        self._submit(lambda tag: build_ata(self.target_mac, self.mac, self.shelf, self.slot,
                                           tag, scnt=1, cmdstat=ATA_IDENTIFY), callback)

    def flush(self, callback: Callback) -> None:
        """FLUSH CACHE."""
        self._submit(lambda tag: build_ata(self.target_mac, self.mac, self.shelf, self.slot,
                                           tag, cmdstat=ATA_FLUSH), callback)

    def config_query(self, callback: Callback) -> None:
        """Config read (also learns the target's MAC from the reply)."""
        self._submit(lambda tag: build_config(self.target_mac, self.mac, self.shelf,
                                              self.slot, tag), callback)

    @property
    def outstanding(self) -> int:
        """Requests waiting for a reply."""
        return len(self._pending)

    def _submit(self, build: Callable[[int], bytes], callback: Callback) -> None:
        self.stats.requests += 1
        self._transmit(_Pending(build, callback, 0))

    def _transmit(self, p: _Pending) -> None:
        tag = self._next_tag
        self._next_tag = (self._next_tag + 1) & 0xFFFFFFFF or 1
        p.tries += 1
        p.timer = self.clock.after(self.rto_ns, self._timeout, tag)
        self._pending[tag] = p
        self.stats.sent += 1
        if self.port is not None:
            self.port.send(append_fcs(pad(p.build(tag))))

    def _timeout(self, tag: int) -> None:
        p = self._pending.pop(tag, None)
        if p is None:
            return
        if p.tries >= self.max_tries:
            self.stats.failed += 1
            p.callback(None)
            return
        self.stats.retransmits += 1
        self._transmit(p)   # a new tag: a late reply to `tag` is now unknown

    # -- replies ----------------------------------------------------------------
    def receive(self, wire: bytes) -> None:
        """Take one frame + FCS; complete the request it answers."""
        frame = strip_fcs(wire)
        if frame is None:
            self.stats.crc_errors += 1
            return
        try:
            reply = parse(frame)
        except FrameError:
            self.stats.not_aoe += 1
            return
        if not reply.flags & FLAG_R or reply.cmd not in (CMD_ATA, CMD_CONFIG):
            self.stats.not_aoe += 1
            return
        p = self._pending.pop(reply.tag, None)
        if p is None:
            self.stats.unknown_tags += 1
            return
        if p.timer is not None:
            self.clock.cancel(p.timer)
        if reply.cmd == CMD_CONFIG and self.target_mac == BROADCAST:
            self.target_mac = reply.src
        self.stats.replies += 1
        p.callback(reply)

    def as_dict(self) -> dict[str, int]:
        """The counters."""
        return asdict(self.stats)
