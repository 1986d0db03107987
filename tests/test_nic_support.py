"""Shared helpers for the NIC tests: guarded guest RAM, an IRQ sink, and a
driver written the way the guest's C driver will be (descriptors in RAM,
doorbells through MMIO), so the tests exercise the device as the guest will.

No tests live here; the other tests/test_nic*.py import it.
"""

from __future__ import annotations

import struct
from collections import Counter

from emu.core.clock import Clock
from emu.core.memory import PhysMem
from emu.devices import nic as N
from emu.devices.bus import IrqLine
from emu.machine.board import RAM_BASE, slot
from emu.net.fcs import append_fcs

IRQ_NIC = slot("nic").irq


RAM_SIZE = 1 << 20
OUR_MAC = bytes.fromhex("525400123456")
PEER_MAC = bytes.fromhex("525400abcdef")
DESC = struct.Struct("<QHHI")


class GuardedMem(PhysMem):
    """PhysMem that records every device access: out-of-RAM attempts (which
    must never happen - the device validates first) and how often each
    address was read (to prove descriptors are fetched once)."""

    def __init__(self, base: int = RAM_BASE, size: int = RAM_SIZE) -> None:
        super().__init__(base, size)
        self.violations: list[tuple[str, int, int]] = []
        self.reads: Counter[int] = Counter()

    def read(self, addr: int, size: int) -> bytes:
        if not self.contains(addr, size):
            self.violations.append(("read", addr, size))
        self.reads[addr] += 1
        return super().read(addr, size)

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        if not self.contains(addr, len(data)):
            self.violations.append(("write", addr, len(data)))
        super().write(addr, data)

    # The test driver pokes RAM directly (it plays the guest CPU, not a device).
    def poke(self, addr: int, data: bytes) -> None:
        off = addr - self.base
        self.view[off:off + len(data)] = data

    def peek(self, addr: int, size: int) -> bytes:
        off = addr - self.base
        return bytes(self.view[off:off + size])


class Sink:
    """PLIC stand-in: records the NIC line's level changes."""

    def __init__(self) -> None:
        self.level = False
        self.edges = 0

    def set_level(self, source: int, level: bool) -> None:
        assert source == IRQ_NIC
        if level and not self.level:
            self.edges += 1
        self.level = level


def make_nic(mem: PhysMem | None = None, mtu: int = N.MTU_DEFAULT
             ) -> tuple[N.Nic, GuardedMem, Sink, list[bytes]]:
    """Return (nic, mem, irq sink, list of wire frames it transmitted)."""
    mem = mem if mem is not None else GuardedMem()
    sink = Sink()
    nic = N.Nic(mem, IrqLine(sink, IRQ_NIC), Clock(), OUR_MAC, mtu=mtu)
    sent: list[bytes] = []
    nic.transmit = sent.append
    return nic, mem, sink, sent


def eth(dst: bytes = PEER_MAC, src: bytes = OUR_MAC, etype: int = 0x88A2,
        payload: bytes = b"") -> bytes:
    """Return an Ethernet frame without FCS."""
    return dst + src + etype.to_bytes(2, "big") + payload


def wire(frame: bytes) -> bytes:
    """Return `frame` as it travels: with its FCS."""
    return append_fcs(frame)


class Driver:
    """A guest driver in Python: rings and buffers at fixed places in RAM.

    Layout (offsets from RAM base): TX ring 0x1000, RX ring 0x2000, TX
    buffers from 0x10000 (one per slot, `buf` bytes each), RX buffers after.
    """

    TX_RING = RAM_BASE + 0x1000
    RX_RING = RAM_BASE + 0x2000 + 0x8000
    BUFS = RAM_BASE + 0x2_0000

    def __init__(self, nic: N.Nic, mem: GuardedMem, tx_size: int = 16, rx_size: int = 16,
                 buf: int = 9216) -> None:
        self.nic, self.mem = nic, mem
        self.tx_size, self.rx_size, self.buf = tx_size, rx_size, buf
        self.tx_tail = 0
        self.rx_tail = 0
        self.rx_next = 0   # next RX descriptor the driver will look at

    def w(self, reg: int, value: int) -> None:
        self.nic.write(reg, 4, value)

    def r(self, reg: int) -> int:
        return self.nic.read(reg, 4)

    def tx_buf(self, i: int) -> int:
        return self.BUFS + i * self.buf

    def rx_buf(self, i: int) -> int:
        return self.BUFS + (self.tx_size + i) * self.buf

    def tx_desc(self, i: int) -> int:
        return self.TX_RING + i * N.DESC_SIZE

    def rx_desc(self, i: int) -> int:
        return self.RX_RING + i * N.DESC_SIZE

    def setup(self, post_rx: int | None = None, mask: int = N.INT_ALL) -> None:
        """Program both rings, post `post_rx` RX buffers (default: all), enable."""
        for reg, v in ((N.REG_TX_BASE_LO, self.TX_RING & 0xFFFF_FFFF),
                       (N.REG_TX_BASE_HI, self.TX_RING >> 32),
                       (N.REG_TX_SIZE, self.tx_size),
                       (N.REG_RX_BASE_LO, self.RX_RING & 0xFFFF_FFFF),
                       (N.REG_RX_BASE_HI, self.RX_RING >> 32),
                       (N.REG_RX_SIZE, self.rx_size)):
            self.w(reg, v)
        self.w(N.REG_INT_MASK, mask)
        self.w(N.REG_CTRL, N.CTRL_ENABLE)
        n = self.rx_size - 1 if post_rx is None else post_rx
        self.post_rx(n)

    def post_rx(self, n: int, cap: int | None = None) -> None:
        """Give `n` more empty buffers to the device."""
        cap = self.buf if cap is None else cap
        for _ in range(n):
            i = self.rx_tail
            self.mem.poke(self.rx_desc(i), DESC.pack(self.rx_buf(i), cap, 0, 0))
            self.rx_tail = (i + 1) % self.rx_size
        self.w(N.REG_RX_TAIL, self.rx_tail)

    def send(self, *frags: bytes, ring: bool = True) -> None:
        """Queue one frame made of `frags` (one descriptor each); ring the doorbell."""
        for k, data in enumerate(frags):
            i = self.tx_tail
            self.mem.poke(self.tx_buf(i), data)
            flags = N.DESC_F_MORE if k < len(frags) - 1 else 0
            self.mem.poke(self.tx_desc(i), DESC.pack(self.tx_buf(i), len(data), flags, 0))
            self.tx_tail = (i + 1) % self.tx_size
        if ring:
            self.w(N.REG_TX_TAIL, self.tx_tail)

    def reap_rx(self) -> list[bytes]:
        """Collect completed frames (joining DESC_S_MORE runs) and re-post their buffers."""
        frames: list[bytes] = []
        parts: list[bytes] = []
        used = 0
        while True:
            i = self.rx_next
            _, length, _, status = DESC.unpack(self.mem.peek(self.rx_desc(i), 16))
            if not status & N.DESC_S_DONE:
                break
            parts.append(self.mem.peek(self.rx_buf(i), length))
            self.rx_next = (i + 1) % self.rx_size
            used += 1
            if not status & N.DESC_S_MORE:
                frames.append(b"".join(parts))
                parts = []
        assert not parts, "device left a frame half-written"
        self.post_rx(used)
        return frames
