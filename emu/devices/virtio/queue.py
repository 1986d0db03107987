"""The split virtqueue (virtio 1.2, 2.7) as the device side sees it: reading
available heads, walking descriptor chains (direct, and indirect tables when
VIRTIO_RING_F_INDIRECT_DESC was negotiated), writing used entries, and the
interrupt-suppression rules (VRING_AVAIL_F_NO_INTERRUPT, or used_event with
VIRTIO_RING_F_EVENT_IDX; NOTIFY_ON_EMPTY for legacy drivers).

Hostile guest (docs/virtio.md, "Hostile-guest rules"): the ring layout is
checked to lie inside RAM (and aligned) before the queue is used; every
index the guest writes is bounds-checked (an available index may move by at
most the queue size, a head and a `next` must be below the table size);
each descriptor is fetched once per chain into a local copy (a revisited
index is a loop, reported at once); every buffer must lie inside RAM and
have a non-zero length; writable buffers may not be followed by readable
ones; an indirect table must be a non-empty multiple of 16 bytes inside RAM,
of at most MAX_INDIRECT entries, and may not itself hold an indirect
descriptor. A broken rule raises VirtqueueError, which the transport turns
into DEVICE_NEEDS_RESET; all DMA goes through the PhysMem accessor after
those checks, so DmaError is never expected.

Layer: devices (imports emu.core).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from emu.core.memory import PhysMem
from emu.devices.virtio import spec

_DESC = struct.Struct("<QIHH")         # addr, len, flags, next
_USED_ELEM = struct.Struct("<II")      # id, len
MAX_INDIRECT = 1024                    # entries of one indirect table (QEMU: VIRTQUEUE_MAX_SIZE)


class VirtqueueError(Exception):
    """The guest broke a virtqueue rule (the message says which); the
    transport sets DEVICE_NEEDS_RESET and stops the device."""


@dataclass(frozen=True)
class Chain:
    """One descriptor chain, fetched: its head index and its buffers as
    (physical address, length) pairs, device-readable ones first."""

    head: int
    readable: tuple[tuple[int, int], ...]
    writable: tuple[tuple[int, int], ...]

    @property
    def readable_len(self) -> int:
        """Total bytes the device may read."""
        return sum(n for _, n in self.readable)

    @property
    def writable_len(self) -> int:
        """Total bytes the device may write."""
        return sum(n for _, n in self.writable)

    def pieces(self, writable: bool, start: int, length: int) -> Iterator[tuple[int, int]]:
        """The (address, length) pieces of bytes [start, start+length) of
        the readable (or writable) side, in order; stops where the side ends."""
        end = start + length
        pos = 0
        for addr, n in (self.writable if writable else self.readable):
            lo, hi = max(start, pos), min(end, pos + n)
            if lo < hi:
                yield addr + lo - pos, hi - lo
            pos += n
            if pos >= end:
                return

    def gather(self, mem: PhysMem, start: int, length: int) -> bytes:
        """Read bytes [start, start+length) of the readable side (fewer if
        it is shorter). Buffers were checked to lie in RAM."""
        return b"".join(mem.read(a, n) for a, n in self.pieces(False, start, length))

    def scatter(self, mem: PhysMem, start: int, data: bytes) -> None:
        """Write `data` into the writable side from byte `start` on; bytes
        past its end are dropped (callers size their data)."""
        pos = 0
        for addr, n in self.pieces(True, start, len(data)):
            mem.write(addr, data[pos:pos + n])
            pos += n


class SplitQueue:
    """One live split virtqueue: its layout (latched when the driver made it
    ready) and the device's indices into it.

    `pop` hands out chains, `push` returns them; `should_interrupt` applies
    the driver's suppression rules once per batch of pushes.
    """

    def __init__(self, mem: PhysMem, num: int, desc: int, avail: int, used: int, *,
                 indirect: bool = False, event_idx: bool = False,
                 notify_on_empty: bool = False) -> None:
        """Latch a queue of `num` entries at the three physical addresses.

        Raises VirtqueueError if `num` is not a power of two in
        [1, QUEUE_SIZE_LIMIT] or a part is misaligned or not inside RAM.
        The flags are the negotiated ring features.
        """
        if not 1 <= num <= spec.QUEUE_SIZE_LIMIT or num & (num - 1):
            raise VirtqueueError(f"queue size {num} is not a power of two in "
                                 f"1..{spec.QUEUE_SIZE_LIMIT}")
        for what, addr, size, align in (
                ("descriptor table", desc, spec.DESC_SIZE * num, spec.DESC_ALIGN),
                ("available ring", avail, spec.avail_size(num), spec.AVAIL_ALIGN),
                ("used ring", used, spec.used_size(num), spec.USED_ALIGN)):
            if addr % align:
                raise VirtqueueError(f"{what} at 0x{addr:x} is not {align}-byte aligned")
            if not mem.contains(addr, size):
                raise VirtqueueError(f"{what} 0x{addr:x}+{size} is not inside RAM")
        self.mem = mem
        self.num = num
        self.desc, self.avail, self.used = desc, avail, used
        self.indirect = indirect
        self.event_idx = event_idx
        self.notify_on_empty = notify_on_empty
        self.last_avail = 0          # next available entry the device will take
        self.shadow_avail = 0        # the driver's avail idx as last read
        self.used_idx = 0
        self.in_flight: set[int] = set()    # heads popped and not yet pushed
        self.signalled_used = 0
        self.signalled_valid = False

    def adopt(self, old: SplitQueue) -> None:
        """Carry the indices and chains in use of `old` (the same queue
        before the driver moved it) over to this layout."""
        self.last_avail = self.shadow_avail = old.last_avail
        self.used_idx = old.used_idx
        self.in_flight = set(old.in_flight)
        self.signalled_used, self.signalled_valid = old.signalled_used, old.signalled_valid

    # -- available side ---------------------------------------------------------
    def pending(self) -> int:
        """Read the driver's available index and return how many chains wait.

        Raises VirtqueueError if the index moved by more than the queue size
        (QEMU: "Guest moved used index").
        """
        idx = int.from_bytes(self.mem.read(self.avail + 2, 2), "little")
        n = (idx - self.last_avail) & 0xFFFF
        if n > self.num:
            raise VirtqueueError(f"available index moved from {self.last_avail} to {idx}: "
                                 f"more than the queue size {self.num}")
        self.shadow_avail = idx
        return n

    def pop(self) -> Chain | None:
        """Take the next available chain, or None if there is none.

        The available index is re-read only once the entries seen last time
        are used up. Raises VirtqueueError on any broken rule.
        """
        if self.last_avail == self.shadow_avail and not self.pending():
            return None
        slot = self.avail + 4 + 2 * (self.last_avail % self.num)
        head = int.from_bytes(self.mem.read(slot, 2), "little")
        if head >= self.num:
            raise VirtqueueError(f"available entry {self.last_avail} names descriptor {head}, "
                                 f"past the table of {self.num}")
        if head in self.in_flight:
            raise VirtqueueError(f"descriptor {head} made available while still in use")
        chain = self._walk(head)
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        self.in_flight.add(head)
        return chain

    def unpop(self, chain: Chain) -> None:
        """Undo the last pop (of `chain`): its entry is available again."""
        self.in_flight.discard(chain.head)
        self.last_avail = (self.last_avail - 1) & 0xFFFF

    def _fetch(self, index: int) -> tuple[int, int, int, int]:
        """Fetch direct descriptor `index` (checked < num by the caller)."""
        return _DESC.unpack(self.mem.read(self.desc + spec.DESC_SIZE * index, spec.DESC_SIZE))

    def _walk(self, head: int) -> Chain:
        """Fetch the chain starting at `head`, each descriptor once."""
        readable: list[tuple[int, int]] = []
        writable: list[tuple[int, int]] = []
        seen: set[int] = set()
        index = head
        while True:
            if index in seen:
                raise VirtqueueError(f"descriptor chain from {head} loops at {index}")
            seen.add(index)
            addr, length, flags, nxt = self._fetch(index)
            if flags & spec.DESC_F_INDIRECT:
                if flags & spec.DESC_F_NEXT:
                    raise VirtqueueError(f"descriptor {index} is indirect and has NEXT")
                self._walk_indirect(index, addr, length, readable, writable)
                break
            self._add(readable, writable, addr, length, flags, f"descriptor {index}")
            if not flags & spec.DESC_F_NEXT:
                break
            if nxt >= self.num:
                raise VirtqueueError(f"descriptor {index} chains to {nxt}, "
                                     f"past the table of {self.num}")
            index = nxt
        return Chain(head, tuple(readable), tuple(writable))

    def _walk_indirect(self, index: int, addr: int, length: int,
                       readable: list[tuple[int, int]], writable: list[tuple[int, int]]) -> None:
        """Walk the indirect table of descriptor `index`, fetched in one read."""
        if not self.indirect:
            raise VirtqueueError(f"descriptor {index} is indirect but "
                                 "VIRTIO_RING_F_INDIRECT_DESC was not negotiated")
        if length == 0 or length % spec.DESC_SIZE or length > spec.DESC_SIZE * MAX_INDIRECT:
            raise VirtqueueError(f"indirect table of descriptor {index} has length {length}: "
                                 f"not a multiple of 16 in 16..{spec.DESC_SIZE * MAX_INDIRECT}")
        if not self.mem.contains(addr, length):
            raise VirtqueueError(f"indirect table 0x{addr:x}+{length} is not inside RAM")
        table = self.mem.read(addr, length)
        count = length // spec.DESC_SIZE
        seen: set[int] = set()
        i = 0
        while True:
            if i in seen:
                raise VirtqueueError(f"indirect table of descriptor {index} loops at {i}")
            seen.add(i)
            daddr, dlen, flags, nxt = _DESC.unpack_from(table, spec.DESC_SIZE * i)
            if flags & spec.DESC_F_INDIRECT:
                raise VirtqueueError(f"indirect table of descriptor {index} nests an "
                                     f"indirect descriptor at {i}")
            self._add(readable, writable, daddr, dlen, flags, f"indirect descriptor {i}")
            if not flags & spec.DESC_F_NEXT:
                return
            if nxt >= count:
                raise VirtqueueError(f"indirect descriptor {i} chains to {nxt}, "
                                     f"past the table of {count}")
            i = nxt

    def _add(self, readable: list[tuple[int, int]], writable: list[tuple[int, int]],
             addr: int, length: int, flags: int, what: str) -> None:
        """Check one buffer and append it to its side of the chain."""
        if length == 0:
            raise VirtqueueError(f"{what} has length 0")
        if not self.mem.contains(addr, length):
            raise VirtqueueError(f"{what}: buffer 0x{addr:x}+{length} is not inside RAM")
        if flags & spec.DESC_F_WRITE:
            writable.append((addr, length))
        elif writable:
            raise VirtqueueError(f"{what} is device-readable after a device-writable one")
        else:
            readable.append((addr, length))

    # -- used side -----------------------------------------------------------------
    def push(self, chain: Chain, written: int) -> None:
        """Return `chain` to the driver, `written` bytes written into it."""
        self.in_flight.discard(chain.head)
        slot = self.used + 4 + spec.USED_ELEM_SIZE * (self.used_idx % self.num)
        self.mem.write(slot, _USED_ELEM.pack(chain.head, written & 0xFFFF_FFFF))
        old = self.used_idx
        self.used_idx = (old + 1) & 0xFFFF
        self.mem.write(self.used + 2, self.used_idx.to_bytes(2, "little"))
        # QEMU's virtqueue_split_flush: once the used index has run past the
        # last signalled one (as a signed 16-bit distance), that one is stale.
        since = (self.used_idx - self.signalled_used) & 0xFFFF
        if since >= 0x8000 or since < 1:
            self.signalled_valid = False

    def publish_avail_event(self) -> None:
        """With EVENT_IDX: ask to be notified when the next entry is made
        available (avail_event = the index the device will read next)."""
        if self.event_idx:
            self.mem.write(self.used + 4 + spec.USED_ELEM_SIZE * self.num,
                           self.last_avail.to_bytes(2, "little"))

    def should_interrupt(self) -> bool:
        """After pushes: does the driver want a used-buffer notification?
        (virtio 1.2, 2.7.7 and 2.7.10; NOTIFY_ON_EMPTY as QEMU applies it.)"""
        if self.notify_on_empty and not self.in_flight and not self.pending():
            return True
        if not self.event_idx:
            flags = int.from_bytes(self.mem.read(self.avail, 2), "little")
            return not flags & spec.AVAIL_F_NO_INTERRUPT
        event = int.from_bytes(self.mem.read(self.avail + 4 + 2 * self.num, 2), "little")
        valid, old = self.signalled_valid, self.signalled_used
        self.signalled_valid, self.signalled_used = True, self.used_idx
        return not valid or spec.need_event(event, self.used_idx, old)
