"""Hostile-guest fuzz of the NIC: >= 10,000 random ring configurations and
descriptor sets a run (seeded; NIC_FUZZ_SEED overrides the seed), driven by
random doorbells, register writes and incoming frames.

Checked after every operation: no host exception, no DMA attempt outside
guest RAM (GuardedMem records any), no descriptor fetched twice within one
doorbell or frame, work bounded by the ring size, the interrupt line equals
(INT_STATUS & INT_MASK) != 0, the error state is consistent (STATUS.ERROR
<=> REG_ERROR != 0, halted, counted). After every configuration the device
is reset and must pass a clean TX+RX exchange. At the end, every error code
a guest can cause must have been provoked at least once (the fuzz is not
vacuous) and ERR_DMA never (validation always came first).
"""

from __future__ import annotations

import os
import random
import struct

from emu.devices import nic as N
from emu.machine.board import RAM_BASE, slot
from tests.test_nic_support import OUR_MAC, PEER_MAC, Driver, GuardedMem, eth, make_nic, wire

NIC_BASE = slot("nic").base
_PLIC = slot("plic").base

SEED = int(os.environ.get("NIC_FUZZ_SEED", "4242"))
CONFIGS = int(os.environ.get("NIC_FUZZ_CONFIGS", "10000"))
FUZZ_RAM = 256 << 10
RAM_END = RAM_BASE + FUZZ_RAM
# Layout: rings below BUF_AREA or in the last 64 KiB, buffers in between, so
# a 16-byte buffer read can never be mistaken for a descriptor fetch.
RING_AREA = RAM_BASE + 0x1_0000
BUF_AREA = RAM_BASE + 0x2_0000
DESC = struct.Struct("<QHHI")
U64 = (1 << 64) - 1


def pick_size(rng: random.Random) -> int:
    if rng.random() < 0.9:
        return 1 << rng.randint(1, 6)                       # valid 2..64
    return rng.choice([0, 1, 3, 5, 6, 12, 100, 4096, 4097, 8192, 1 << 16, 1 << 31,
                       0xFFFF_FFFF, rng.getrandbits(32)])


def pick_base(rng: random.Random, which: int) -> int:
    good = RING_AREA + which * 0x8000
    if rng.random() < 0.9:
        return good
    return rng.choice([good + rng.randint(1, 15), 0, NIC_BASE, _PLIC, RAM_END, RAM_END - 16,
                       RAM_END - 64, RAM_BASE - 16, U64 & ~15, rng.getrandbits(64),
                       RAM_BASE + rng.randrange(0, 0x1_0000, 16)])


def pick_addr(rng: random.Random) -> int:
    if rng.random() < 0.93:
        return BUF_AREA + rng.randrange(0, 0x1_0000)
    return rng.choice([0, NIC_BASE, NIC_BASE + 0x50, RAM_END - 1, RAM_END - 100, RAM_END,
                       RAM_BASE - 1, U64 - 7, rng.getrandbits(64), RING_AREA + 8])


def pick_len(rng: random.Random) -> int:
    if rng.random() < 0.85:
        return rng.randint(14, 1600)
    return rng.choice([0, 0, 0, 1, 13, 14, 59, 60, 9014, 9015, 0xFFFF, rng.getrandbits(16)])


def pick_flags(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.85:
        return 0
    if r < 0.96:
        return N.DESC_F_MORE
    return rng.getrandbits(16)


def fill_ring(rng: random.Random, mem: GuardedMem, base: int, size: int) -> set[int]:
    """Write random descriptors into whatever part of the ring lies in RAM.

    Returns the slot addresses (for the double-fetch check)."""
    slots = set()
    for i in range(min(size, 64)):
        a = base + i * N.DESC_SIZE
        if not mem.contains(a, N.DESC_SIZE):
            break
        mem.poke(a, DESC.pack(pick_addr(rng), pick_len(rng), pick_flags(rng),
                              rng.getrandbits(32)))
        slots.add(a)
    return slots


def random_frame(rng: random.Random) -> bytes:
    dst = rng.choice([OUR_MAC, OUR_MAC, OUR_MAC, b"\xff" * 6, PEER_MAC, b"\x01" * 6])
    n = rng.choice([-14, -3, 0, 5, 13, 40, 46, 100, 1000, 1486, 1487, 4120, 8986, 8987, 9100])
    frame = (dst + PEER_MAC + b"\x88\xa2" + rng.randbytes(max(n, 0)))[: 14 + n]  # n < 0: runt
    w = wire(frame)
    if rng.random() < 0.1:
        b = bytearray(w)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        w = bytes(b)
    return w


def pick_tail(rng: random.Random, size: int, head: int) -> int:
    """A tail for a ring of `size` (0 when not running) whose head is `head`."""
    size = max(size, 1)
    r = rng.random()
    if r < 0.6:
        return rng.randrange(size)
    if r < 0.9:
        return (head - 1) % size        # post everything: the ring is full
    return rng.choice([size, size + 1, 0xFFFF_FFFF, rng.getrandbits(32)])


def random_op(rng: random.Random, nic: N.Nic) -> None:
    r = rng.random()
    if r < 0.3:
        nic.write(N.REG_TX_TAIL, 4, pick_tail(rng, nic.tx.size, nic.tx.head))
    elif r < 0.45:
        nic.write(N.REG_RX_TAIL, 4, pick_tail(rng, nic.rx.size, nic.rx.head))
    elif r < 0.75:
        nic.receive(random_frame(rng))
    elif r < 0.8:
        nic.write(N.REG_INT_ACK, 4, rng.getrandbits(32))
    elif r < 0.85:
        nic.write(N.REG_CTRL, 4, rng.choice([0, N.CTRL_ENABLE, N.CTRL_ENABLE | N.CTRL_PROMISC,
                                             rng.getrandbits(32) & ~N.CTRL_RESET]))
    elif r < 0.87:
        off = rng.choice([N.REG_TX_BASE_LO, N.REG_TX_BASE_HI, N.REG_TX_SIZE,
                          N.REG_RX_BASE_LO, N.REG_RX_BASE_HI, N.REG_RX_SIZE])
        nic.write(off, 4, rng.getrandbits(32))
    elif r < 0.9:
        nic.write(N.REG_MTU, 4, rng.choice([1500, 9000, 0, 0xFFFF_FFFF, rng.getrandbits(14)]))
    else:
        off = rng.choice([rng.randrange(0, 0x200), rng.randrange(0, 0x80, 4),
                          rng.randrange(0, 0x1000)])
        size = rng.choice([1, 2, 4, 4, 8])
        if rng.random() < 0.5:
            nic.write(off, size, rng.getrandbits(32))
        else:
            nic.read(off, size)


def check(nic: N.Nic, mem: GuardedMem, slots: set[int], where: str) -> None:
    assert mem.violations == [], f"{where}: DMA outside RAM {mem.violations[:3]}"
    fetched = [a for (a, size) in mem.log if size == N.DESC_SIZE and a in slots]
    assert len(fetched) == len(set(fetched)), f"{where}: a descriptor was fetched twice"
    assert len(fetched) <= N.RING_MAX, f"{where}: unbounded work"
    mem.log.clear()
    assert nic.irq.level == bool(nic.int_status & nic.int_mask), where
    status = nic.read(N.REG_STATUS, 4)
    err = nic.read(N.REG_ERROR, 4)
    assert bool(status & N.STATUS_ERROR) == (err != N.ERR_NONE), where
    if err:
        assert not status & N.STATUS_ENABLED, where
    if status & N.STATUS_ENABLED:
        assert nic.read(N.REG_TX_HEAD, 4) < nic.tx.size, where
        assert nic.read(N.REG_RX_HEAD, 4) < nic.rx.size, where


class LoggingMem(GuardedMem):
    """GuardedMem that also logs (addr, size) of every device read."""

    def __init__(self) -> None:
        super().__init__(RAM_BASE, FUZZ_RAM)
        self.log: list[tuple[int, int]] = []

    def read(self, addr: int, size: int) -> bytes:
        self.log.append((addr, size))
        return super().read(addr, size)


def sanity(nic: N.Nic, mem: GuardedMem, sent: list[bytes], where: str) -> None:
    """Reset, then one clean frame each way must work."""
    nic.write(N.REG_CTRL, 4, N.CTRL_RESET)
    assert nic.read(N.REG_STATUS, 4) & N.STATUS_ERROR == 0, where
    before = len(sent)
    d = Driver(nic, mem, tx_size=4, rx_size=4, buf=2048)
    d.setup()
    frame = eth(payload=b"sanity" * 10)
    d.send(frame)
    assert len(sent) == before + 1 and sent[-1][:-4] == frame, where
    nic.receive(wire(eth(dst=OUR_MAC, payload=b"back" * 20)))
    assert d.reap_rx() == [eth(dst=OUR_MAC, payload=b"back" * 20)], where
    assert nic.read(N.REG_ERROR, 4) == N.ERR_NONE, where
    nic.write(N.REG_CTRL, 4, N.CTRL_RESET)


def test_hostile_descriptor_fuzz() -> None:
    rng = random.Random(SEED)
    mem = LoggingMem()
    nic, _, _, sent = make_nic(mem)
    mem.reads.clear()
    ended_in_error = 0
    for it in range(CONFIGS):
        where = f"seed {SEED} config {it}"
        if rng.random() < 0.5:
            nic.write(N.REG_CTRL, 4, N.CTRL_RESET)
        else:
            nic.reset()
        mem.log.clear()
        slots: set[int] = set()
        for which, lo in ((0, N.REG_TX_BASE_LO), (1, N.REG_RX_BASE_LO)):
            base, size = pick_base(rng, which), pick_size(rng)
            nic.write(lo, 4, base & 0xFFFF_FFFF)
            nic.write(lo + 4, 4, (base >> 32) & 0xFFFF_FFFF)
            nic.write(lo + 8, 4, size)
            slots |= fill_ring(rng, mem, base & U64, size)
        nic.write(N.REG_INT_MASK, 4, rng.getrandbits(4))
        if rng.random() < 0.3:
            nic.write(N.REG_MTU, 4, rng.choice([1500, 9000, 68]))
        if rng.random() < 0.3:
            nic.write(N.REG_TX_TAIL, 4, rng.randrange(8))
            nic.write(N.REG_RX_TAIL, 4, rng.randrange(8))
        if rng.random() < 0.95:
            nic.write(N.REG_CTRL, 4, N.CTRL_ENABLE | rng.choice([0, N.CTRL_PROMISC]))
        check(nic, mem, slots, where + " enable")
        for k in range(rng.randint(1, 8)):
            random_op(rng, nic)
            check(nic, mem, slots, f"{where} op {k}")
        ended_in_error += bool(nic.error)
        sanity(nic, mem, sent, where)
        mem.log.clear()
    s = nic.stats()
    assert s["error_dma"] == 0
    assert s["errors"] == sum(s[f"error_{n}"] for n in N.ERR_NAMES[1:])
    never = [n for n in N.ERR_NAMES[1:-1] if s[f"error_{n}"] == 0]
    assert never == [], f"fuzz never provoked {never}"
    for key in ("rx_frames", "tx_frames", "rx_crc_errors", "rx_no_buffer", "rx_disabled",
                "rx_filtered", "rx_too_long", "rx_runt", "bad_mmio"):
        assert s[key] > 0, key
    assert CONFIGS // 10 < ended_in_error < CONFIGS - CONFIGS // 10   # both outcomes common
