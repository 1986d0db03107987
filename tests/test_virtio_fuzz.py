"""Hostile-guest fuzz of virtio-mmio + virtio-blk: thousands of random
bring-ups, ring contents, register writes and notifications a run (seeded;
VIRTIO_FUZZ_SEED and VIRTIO_FUZZ_CONFIGS override), on four slots: legacy
and modern, over a file and over a snapshot.

Checked after every step: no host exception, no DMA attempt outside guest
RAM (GuardedMem records any) and none refused by PhysMem (dma_errors), the
interrupt line equals InterruptStatus != 0, DEVICE_NEEDS_RESET is set
exactly when the device has halted, no descriptor fetched more than once
per chain, and the image never written outside the sectors write requests
named (the fuzz aims every write at a window; a snapshot's file never
changes at all). After every configuration the slot is reset and must
serve a clean read and write. At the end every hostile-guest rule must
have fired at least once, and every status byte have been returned.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pytest

from emu.devices.virtio import blk as B
from emu.devices.virtio import spec as S
from emu.devices.virtio.mmio import VirtioMmio
from emu.machine.board import RAM_BASE
from tests.test_nic_support import GuardedMem
from tests.test_virtio_support import DESC, HEADER, BlkDriver, close_all, make_slot, run_clock

SEED = int(os.environ.get("VIRTIO_FUZZ_SEED", "1212"))
CONFIGS = int(os.environ.get("VIRTIO_FUZZ_CONFIGS", "10000"))
FUZZ_RAM = 1 << 20
RAM_END = RAM_BASE + FUZZ_RAM
SECTORS = 256
WINDOW = (64, 192)            # every write request aims inside these sectors
MAX_PAYLOAD = 64              # sectors one fuzz chain can carry at most
SEGMENT_LEN = 16

# The rules the fuzz must have seen broken (substrings of the log line).
RULES = ("loops", "past the table", "more than the queue size", "no writable status",
         "shorter than 16", "not inside RAM", "has length 0", "readable after",
         "not a multiple of 16", "nests", "indirect and has NEXT", "was not negotiated",
         "not a power of two", "aligned", "segment shorter")


class LoggingMem(GuardedMem):
    """GuardedMem that also logs (addr, size) of every device read."""

    def __init__(self) -> None:
        super().__init__(RAM_BASE, FUZZ_RAM)
        self.log: list[tuple[int, int]] = []

    def read(self, addr: int, size: int) -> bytes:
        self.log.append((addr, size))
        return super().read(addr, size)

    # The fuzz's driver may place rings and buffers anywhere; the guest CPU's
    # stores outside RAM would fault, here they are dropped.
    def poke(self, addr: int, data: bytes) -> None:
        if self.contains(addr, len(data)):
            super().poke(addr, data)

    def peek(self, addr: int, size: int) -> bytes:
        return super().peek(addr, size) if self.contains(addr, size) else bytes(size)


class Slot:
    """One fuzzed slot, its image and what its file must keep."""

    def __init__(self, tmp: Path, legacy: bool, snapshot: bool, mem: LoggingMem) -> None:
        self.path = tmp / f"{'legacy' if legacy else 'modern'}-{int(snapshot)}.img"
        self.path.write_bytes(os.urandom(SECTORS * B.SECTOR))
        self.snapshot = snapshot
        self.t, _, self.sink, self.clock = make_slot(self.path, legacy=legacy, mem=mem,
                                                     snapshot=snapshot)
        self.logs: list[str] = []
        self.t.log = lambda topic, msg: self.logs.append(msg)
        self.original = self.path.read_bytes()

    def check_file(self, where: str) -> None:
        raw = self.path.read_bytes()
        if self.snapshot:
            assert raw == self.original, f"{where}: a snapshot changed its file"
            return
        lo, hi = (w * B.SECTOR for w in WINDOW)
        assert raw[:lo] == self.original[:lo], f"{where}: written below the window"
        assert raw[hi:] == self.original[hi:], f"{where}: written above the window"


def pick_qsize(rng: random.Random) -> int:
    if rng.random() < 0.93:
        return 1 << rng.randint(1, 6)
    return rng.choice([0, 3, 12, 100, 2048, 1 << 16, 0xFFFF_FFFF])


def pick_place(rng: random.Random, good: int) -> int:
    if rng.random() < 0.96:
        return good
    return rng.choice([good + 2, good + 8, RAM_END - 64, RAM_END, 0, 0x1000_1000,
                       RAM_BASE - 4096, rng.getrandbits(64), rng.getrandbits(32)])


TABLES = RAM_BASE + 0xF_0000   # indirect tables, 0x400 bytes per head


class Buffers:
    """Buffer addresses for one configuration's chains: never overlapping
    (so that no chain's header is another's data, even when a chain waits
    a step for its notification), mostly in RAM, sometimes not."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next = RAM_BASE + 0x4_0000

    def take(self, n: int) -> int:
        if self.rng.random() < 0.99 and self.next + n <= TABLES:
            addr, self.next = self.next, self.next + n
            return addr
        return self.rng.choice([RAM_END - max(n // 2, 1), RAM_END, 0, 0x1000_1000,
                                self.rng.getrandbits(64)])


def make_header(rng: random.Random) -> tuple[bytes, int]:
    """A request header and how many payload bytes (after it) to send.
    Writes aim inside WINDOW, or past the disk's end (IOERR)."""
    r = rng.random()
    win_sector = rng.randrange(WINDOW[0], WINDOW[1] - MAX_PAYLOAD)
    far = rng.choice([SECTORS, SECTORS + 1, 1 << 40, (1 << 64) - 1])    # all fail
    sector = win_sector if rng.random() < 0.9 else far
    if r < 0.3:
        return HEADER.pack(B.T_IN, 0, rng.randrange(0, SECTORS + 8)), 0
    if r < 0.6:
        rtype = rng.choice([B.T_OUT, B.T_OUT | B.T_BARRIER])
        return HEADER.pack(rtype, 0, sector), B.SECTOR * rng.choice([1, 2, 4, 8])
    if r < 0.67:
        return HEADER.pack(B.T_FLUSH, 0, 0), 0
    if r < 0.72:
        return HEADER.pack(B.T_GET_ID, 0, 0), 0
    if r < 0.85:
        rtype = rng.choice([B.T_WRITE_ZEROES, B.T_DISCARD, B.T_WRITE_ZEROES & ~B.T_OUT])
        count = rng.choice([1, 2, 8, MAX_PAYLOAD, 0x40_0000])
        flags = rng.choice([0, 0, 1, 2])
        seg = (sector.to_bytes(8, "little") + count.to_bytes(4, "little")
               + flags.to_bytes(4, "little"))
        extra = rng.choice([0, 0, 0, 16, -8])
        return HEADER.pack(rtype, 0, 0) + seg[:SEGMENT_LEN + min(extra, 0)], max(extra, 0)
    rtype = rng.getrandbits(32) & ~(B.T_OUT | B.T_BARRIER) | rng.choice([0, B.T_BARRIER])
    return HEADER.pack(rtype, 0, rng.getrandbits(64)), rng.choice([0, 512])


def split(rng: random.Random, total: int) -> list[int]:
    """Cut `total` bytes into 1-4 positive lengths (a hostile 0 sometimes)."""
    if total <= 0:
        return []
    cuts = sorted(rng.sample(range(1, total), min(rng.randint(0, 3), total - 1)))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    if rng.random() < 0.005:
        parts.append(0)
    return parts


def build_chain(rng: random.Random, d: BlkDriver, free: list[int], indirect_ok: bool,
                bufs_at: Buffers) -> int | None:
    """Write one random request chain; return its head (None if out of descriptors)."""
    header, payload = make_header(rng)
    stream = header + os.urandom(payload)
    if rng.random() < 0.01:
        stream = stream[:rng.randrange(0, 16)]                     # a short header
    readable = [(n, 0) for n in split(rng, len(stream))]
    in_len = rng.choice([1, 1, 21, 513, 1025, 4097]) if rng.random() < 0.99 else 0
    writable = [(n, S.DESC_F_WRITE) for n in split(rng, in_len)]
    bufs = readable + writable
    if rng.random() < 0.01:
        rng.shuffle(bufs)                                          # readable after writable
    descs = []
    pos = 0
    for n, flags in bufs:
        addr = bufs_at.take(n)
        if flags == 0 and 0 < n and d.mem.contains(addr, n):
            d.mem.poke(addr, stream[pos:pos + n])
        pos += n if flags == 0 else 0
        descs.append((addr, n, flags))
    if not descs:
        descs = [(bufs_at.take(16), 16, 0)]
    use_indirect = rng.random() < (0.25 if indirect_ok else 0.02)
    if use_indirect:
        if not free:
            return None
        head = free.pop()
        table = TABLES + 0x400 * head
        for k, (a, n, f) in enumerate(descs):
            last = k + 1 == len(descs)
            nxt = k + 1 if not last else 0
            if rng.random() < 0.01:
                nxt = rng.choice([k, 0, len(descs) + 3])           # loop / past the table
                last = False
            f |= 0 if last else S.DESC_F_NEXT
            if rng.random() < 0.005:
                f |= S.DESC_F_INDIRECT                             # nested
            d.mem.poke(table + 16 * k, DESC.pack(a, n, f, nxt))
        length = 16 * len(descs) if rng.random() < 0.97 else rng.choice([0, 8, 24, 1 << 20])
        hflags = S.DESC_F_INDIRECT | (S.DESC_F_NEXT if rng.random() < 0.02 else 0)
        d.put_desc(head, pick_place(rng, table), length, hflags, 0)
        return head
    if len(free) < len(descs):
        return None
    idx = [free.pop() for _ in descs]
    for k, (a, n, f) in enumerate(descs):
        last = k + 1 == len(descs)
        nxt = idx[k + 1] if not last else 0
        if rng.random() < 0.01:
            nxt = rng.choice([idx[0], idx[k], d.qsize, 0xFFFF])    # loop / past the table
            last = False
        d.put_desc(idx[k], a, n, f | (0 if last else S.DESC_F_NEXT), nxt)
    return idx[0]


def bring_up(rng: random.Random, slot: Slot, d: BlkDriver) -> None:
    """A mostly-correct, sometimes hostile, bring-up."""
    offered = d.offered()
    accept = offered & ~(rng.getrandbits(40) if rng.random() < 0.5 else 0)
    if rng.random() < 0.05:
        accept |= rng.getrandbits(64)                               # features not offered
    d.qsize = pick_qsize(rng)
    if slot.t.legacy:
        d.desc = pick_place(rng, d.QMEM)
        d.align = rng.choice([4096] * 20 + [0, 3000, 16])
        d.page = rng.choice([4096] * 20 + [1, 2, 8192])
    else:
        d.desc = pick_place(rng, d.QMEM)
        d.avail = pick_place(rng, d.QMEM + 0x1000)
        d.used = pick_place(rng, d.QMEM + 0x2000)
    d.init(accept=accept)


def random_register_op(rng: random.Random, t: VirtioMmio) -> None:
    off = rng.choice([rng.randrange(0, 0x200, 4), rng.randrange(0, 0x1000),
                      S.QUEUE_NOTIFY, S.INTERRUPT_ACK, S.STATUS, S.QUEUE_SEL, S.QUEUE_READY,
                      S.QUEUE_PFN, S.QUEUE_NUM, S.CONFIG + rng.randrange(0, 64)])
    size = rng.choice([4, 4, 4, 1, 2, 8])
    if rng.random() < 0.6:
        value = rng.choice([0, 1, rng.getrandbits(32), 0xFFFF_FFFF])
        if off == S.STATUS and value == 0 and rng.random() < 0.7:
            value = t.status                                      # fewer accidental resets
        t.write(off, size if size != 8 else 4, value)
    else:
        t.read(off, size if size != 8 else 4)


def check(slot: Slot, mem: LoggingMem, table: tuple[int, int], chains_before: int,
          where: str) -> None:
    t = slot.t
    assert mem.violations == [], f"{where}: DMA outside RAM {mem.violations[:3]}"
    assert t.stats()["dma_errors"] == 0, where
    assert slot.sink.level == (t.isr != 0), where
    assert bool(t.status & S.S_NEEDS_RESET) == t.broken, where
    lo, hi = table
    fetched = Counter(a for a, n in mem.log if n == 16 and lo <= a < hi)
    chains = t.stats()["chains"] - chains_before
    if fetched:
        assert max(fetched.values()) <= chains + 1, f"{where}: a descriptor fetched twice"
    mem.log.clear()
    slot.check_file(where)


def sanity(slot: Slot, mem: LoggingMem, where: str) -> None:
    """Reset, then a clean bring-up, read and write must work."""
    t = slot.t
    t.write(S.STATUS, 4, 0)
    assert not t.status & S.S_NEEDS_RESET and not slot.sink.level, where
    d = BlkDriver(t, mem, slot.clock, qsize=8)
    assert d.init() & S.S_DRIVER_OK, where
    want = os.urandom(1024)
    assert d.request(B.T_OUT, WINDOW[0], data=want)[0] == B.S_OK, where
    assert d.request(B.T_IN, WINDOW[0], nbytes=1024)[:2] == (B.S_OK, want), where
    t.write(S.STATUS, 4, 0)


def test_hostile_guest_fuzz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fdatasync", lambda fd: None)   # durability is test_virtio's
    rng = random.Random(SEED)
    mem = LoggingMem()
    slots = [Slot(tmp_path, legacy, snap, mem) for legacy in (True, False)
             for snap in (False, True)]
    ended_broken = 0
    for it in range(CONFIGS):
        slot = rng.choice(slots)
        where = f"seed {SEED} config {it} ({'legacy' if slot.t.legacy else 'modern'})"
        if rng.random() < 0.2:
            slot.t.host_reset()
        d = BlkDriver(slot.t, mem, slot.clock)
        bring_up(rng, slot, d)
        mem.log.clear()
        table = (d.desc, d.desc + 16 * max(min(d.qsize, 1 << 16), 1))
        check(slot, mem, table, slot.t.stats()["chains"], where + " bring-up")
        indirect_ok = bool(slot.t.features & S.bit(S.F_RING_INDIRECT_DESC))
        free = list(range(min(d.qsize, 64)))
        bufs_at = Buffers(rng)
        rng.shuffle(free)
        for k in range(rng.randint(1, 6)):
            step = f"{where} step {k}"
            before = slot.t.stats()["chains"]
            r = rng.random()
            if r < 0.55 and 0 < d.qsize <= 64:
                for _ in range(rng.randint(1, 4)):
                    head = build_chain(rng, d, free, indirect_ok, bufs_at)
                    if head is None:
                        break
                    if rng.random() < 0.02:
                        head = rng.choice([d.qsize, 0xFFFF])
                    d.make_available(head, kick=False)
                if rng.random() < 0.02:
                    d.mem.poke(d.avail + 2, rng.getrandbits(16).to_bytes(2, "little"))
                d.w(S.QUEUE_NOTIFY, 0 if rng.random() < 0.95 else rng.getrandbits(32))
            elif r < 0.8:
                random_register_op(rng, slot.t)
            else:
                d.ack()
            if rng.random() < 0.8:
                run_clock(slot.clock)
            check(slot, mem, table, before, step)
        run_clock(slot.clock)
        ended_broken += slot.t.broken
        sanity(slot, mem, where)
        mem.log.clear()
    logs = [m for s in slots for m in s.logs]
    never = [rule for rule in RULES if not any(rule in m for m in logs)]
    assert never == [], f"the fuzz never broke: {never}"
    stats = Counter()
    for s in slots:
        stats.update(s.t.stats())
        stats.update(s.t.device.stats())
    close_all()
    assert stats["dma_errors"] == 0
    for key in ("ioerr", "unsupp", "reads", "writes", "flushes", "get_ids", "write_zeroes",
                "discards", "features_refused", "bad_mmio"):
        assert stats[key] > 0, key
    assert CONFIGS // 20 < ended_broken < CONFIGS - CONFIGS // 20, ended_broken
