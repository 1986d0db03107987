"""The emu NIC: an e1000-flavoured Ethernet device with descriptor rings in guest RAM.

Role: the guest's only network interface. The driver programs two rings of
16-byte descriptors (TX and RX) in guest RAM and talks to the device through
32-bit MMIO registers; the device moves frames between those rings and the
segment port (`transmit` out, `receive` in) with DMA through the
bounds-checked PhysMem, and raises its PLIC line for RX, TX completion, RX
overrun and errors. docs/nic.md is the data sheet; guest/kernel/nic.h mirrors
every constant in ABI_NAMES and tests/test_nic_header.py checks the two agree.

Ownership follows e1000 (Intel 8254x SDM, section 3.2/3.3): each ring has a
HEAD the device owns and a TAIL the driver owns. Descriptors in [head, tail)
belong to the device; head == tail means the ring is empty, so a ring of N
descriptors carries at most N-1 (one slot stays free to tell full from empty).

Hostile guest (ARCHITECTURE-BRIEF rule 3): everything the guest controls is
validated before it is used and every descriptor is fetched exactly once per
hand-over into a local copy (no double fetch). Any violation latches an error
code, sets STATUS.ERROR, raises the ERROR interrupt and halts the device until
a reset - the virtio DEVICE_NEEDS_RESET idea (virtio 1.1, 2.1.2). Nothing the
guest writes can make this module raise or touch memory outside RAM, and the
work per doorbell or per received frame is at most one ring's worth of
descriptors (rings are indexed, never linked, so descriptors cannot loop).

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from emu.core.clock import Clock
from emu.core.memory import DmaError, PhysMem
from emu.devices.bus import IrqLine, no_log
from emu.net.fcs import append_fcs, strip_fcs

# --- identity ---------------------------------------------------------------
ID_MAGIC = 0x4349_4E65        # the bytes "eNIC" read as a little-endian u32
VERSION = 0x0001_0000         # major 1, minor 0 (major.minor in the high/low halves)

# --- registers (byte offsets from the device base; all 32 bits wide) --------
REG_ID = 0x000          # RO  ID_MAGIC
REG_VERSION = 0x004     # RO  VERSION
REG_MAC_LO = 0x008      # RW  MAC bytes 0..3 (byte 0 in bits 7:0), as e1000 RAL
REG_MAC_HI = 0x00C      # RW  MAC bytes 4..5 in bits 15:0, as e1000 RAH
REG_MTU = 0x010         # RW  MTU (payload bytes after the 14-byte header); clamped
REG_CTRL = 0x014        # RW  CTRL_* bits
REG_STATUS = 0x018      # RO  STATUS_* bits
REG_ERROR = 0x01C       # RO  latched ERR_* code (ERR_NONE while healthy)
REG_INT_STATUS = 0x020  # RO  pending INT_* causes (whether masked or not)
REG_INT_MASK = 0x024    # RW  INT_* causes allowed to drive the line
REG_INT_ACK = 0x028     # WO  write 1s to clear causes in INT_STATUS
REG_MTU_MAX = 0x02C     # RO  MTU_MAX
REG_RING_MAX = 0x030    # RO  RING_MAX
REG_NSTATS = 0x034      # RO  number of counters at REG_STATS
REG_ERR_INDEX = 0x038   # RO  descriptor index behind the error (tail errors: the tail), or NO_INDEX
REG_TX_BASE_LO = 0x040  # RW  TX ring physical address, bits 31:0 (latched at enable)
REG_TX_BASE_HI = 0x044  # RW  TX ring physical address, bits 63:32
REG_TX_SIZE = 0x048     # RW  TX ring size in descriptors (power of two, RING_MIN..RING_MAX)
REG_TX_HEAD = 0x04C     # RO  next descriptor the device will consume
REG_TX_TAIL = 0x050     # RW  doorbell: one past the last descriptor the driver posted
REG_RX_BASE_LO = 0x060  # RW  RX ring, as for TX
REG_RX_BASE_HI = 0x064
REG_RX_SIZE = 0x068
REG_RX_HEAD = 0x06C     # RO  next descriptor the device will fill
REG_RX_TAIL = 0x070     # RW  one past the last empty buffer the driver posted
REG_STATS = 0x100       # RO  counter i at REG_STATS + 4*i (low 32 bits; see STAT_NAMES)

# --- CTRL / STATUS bits -----------------------------------------------------
CTRL_ENABLE = 0x1       # 0->1 latches the rings and starts; 1->0 stops
CTRL_RESET = 0x2        # write 1: full reset to power-on state (self-clearing)
CTRL_PROMISC = 0x4      # accept every frame, not only ours/broadcast/multicast
CTRL_MASK = CTRL_ENABLE | CTRL_PROMISC

STATUS_ENABLED = 0x1    # rings latched and the device is processing
STATUS_ERROR = 0x2      # halted on a guest error; REG_ERROR says why; reset clears
STATUS_LINK = 0x4       # a segment port is attached (transmit is set)

# --- interrupt causes -------------------------------------------------------
INT_RX = 0x1            # a frame was written to the RX ring
INT_TX = 0x2            # TX descriptors completed (head moved)
INT_ERROR = 0x4         # the device entered the error state
INT_RX_NOBUF = 0x8      # a frame was dropped for lack of RX buffers (e1000 RXO)
INT_ALL = INT_RX | INT_TX | INT_ERROR | INT_RX_NOBUF

# --- descriptor layout (16 bytes, little-endian) ----------------------------
DESC_ADDR = 0           # u64 buffer physical address            (driver)
DESC_LEN = 8            # u16 TX: bytes to send; RX: capacity in / bytes stored out
DESC_FLAGS = 10         # u16 driver flags (DESC_F_*); others must be 0
DESC_STATUS = 12        # u32 device status (DESC_S_*); the driver clears it
DESC_SIZE = 16
DESC_F_MORE = 0x1       # TX: the frame continues in the next descriptor (e1000 EOP clear)
DESC_S_DONE = 0x1       # the device is done with this descriptor (e1000 DD)
DESC_S_MORE = 0x2       # RX: the frame continues in the next descriptor (e1000 EOP clear)
TX_FLAGS_VALID = DESC_F_MORE
RX_FLAGS_VALID = 0

# --- limits -----------------------------------------------------------------
ETH_HLEN = 14           # dst, src, ethertype: the MTU counts bytes after these
ETH_ZLEN = 60           # minimum frame without FCS; shorter TX frames are padded (e1000 PSP)
MTU_MIN = 68
MTU_MAX = 9000
MTU_DEFAULT = 9000      # one AoE frame carries a 4 KiB page
RING_MIN = 2
RING_MAX = 4096
RING_ALIGN = 16         # ring base alignment (one descriptor)
NO_INDEX = 0xFFFF_FFFF

# --- error codes (REG_ERROR) ------------------------------------------------
ERR_NONE = 0
ERR_TX_RING_BASE = 1    # TX ring base unaligned or the ring not inside RAM
ERR_TX_RING_SIZE = 2    # TX size 0, not a power of two, or outside RING_MIN..RING_MAX
ERR_TX_TAIL = 3         # TX tail >= size
ERR_TX_DESC_ADDR = 4    # TX buffer [addr, addr+len) not inside RAM
ERR_TX_DESC_LEN = 5     # TX descriptor length 0
ERR_TX_DESC_FLAGS = 6   # TX descriptor flags outside TX_FLAGS_VALID
ERR_TX_FRAME_LEN = 7    # TX frame shorter than ETH_HLEN or longer than ETH_HLEN + MTU
ERR_TX_CHAIN = 8        # the descriptor before tail has DESC_F_MORE: the frame never ends
ERR_RX_RING_BASE = 9
ERR_RX_RING_SIZE = 10
ERR_RX_TAIL = 11        # RX tail >= size, or moved back over descriptors already fetched
ERR_RX_DESC_ADDR = 12   # RX buffer [addr, addr+capacity) not inside RAM
ERR_RX_DESC_LEN = 13    # RX buffer capacity 0
ERR_RX_DESC_FLAGS = 14  # RX descriptor flags not 0
ERR_CONFIG_BUSY = 15    # ring base/size written while CTRL.ENABLE is set
ERR_DMA = 16            # a DMA access failed despite validation (defensive; never expected)

ERR_NAMES: tuple[str, ...] = (
    "none", "tx_ring_base", "tx_ring_size", "tx_tail", "tx_desc_addr", "tx_desc_len",
    "tx_desc_flags", "tx_frame_len", "tx_chain", "rx_ring_base", "rx_ring_size", "rx_tail",
    "rx_desc_addr", "rx_desc_len", "rx_desc_flags", "config_busy", "dma",
)

# --- statistics: stable keys, and their order at REG_STATS ------------------
STAT_NAMES: tuple[str, ...] = (
    "tx_frames",       # frames handed to the segment port
    "tx_bytes",        # their bytes, padding included, FCS excluded
    "tx_descs",        # TX descriptors completed
    "tx_no_link",      # frames sent while no port was attached (lost)
    "rx_frames",       # frames written to the RX ring
    "rx_bytes",        # their bytes, FCS excluded
    "rx_descs",        # RX descriptors filled
    "rx_crc_errors",   # dropped: bad or missing FCS
    "rx_no_buffer",    # dropped: not enough RX buffers posted (ring full)
    "rx_disabled",     # dropped: device not enabled or halted on an error
    "rx_filtered",     # dropped: unicast to another MAC and not promiscuous
    "rx_too_long",     # dropped: longer than ETH_HLEN + MTU
    "rx_runt",         # dropped: shorter than ETH_HLEN
    "irqs",            # rising edges of the interrupt line
    "resets",          # CTRL.RESET writes and host resets
    "bad_mmio",        # ignored accesses: undefined/read-only offsets, sub-word writes
    "errors",          # entries into the error state (sum of the error_* counters)
) + tuple(f"error_{n}" for n in ERR_NAMES[1:])

# Every constant guest/kernel/nic.h defines, as NIC_<name> with the same value.
ABI_NAMES: tuple[str, ...] = (
    "ID_MAGIC", "VERSION",
    "REG_ID", "REG_VERSION", "REG_MAC_LO", "REG_MAC_HI", "REG_MTU", "REG_CTRL", "REG_STATUS",
    "REG_ERROR", "REG_INT_STATUS", "REG_INT_MASK", "REG_INT_ACK", "REG_MTU_MAX",
    "REG_RING_MAX", "REG_NSTATS", "REG_ERR_INDEX",
    "REG_TX_BASE_LO", "REG_TX_BASE_HI", "REG_TX_SIZE", "REG_TX_HEAD", "REG_TX_TAIL",
    "REG_RX_BASE_LO", "REG_RX_BASE_HI", "REG_RX_SIZE", "REG_RX_HEAD", "REG_RX_TAIL",
    "REG_STATS",
    "CTRL_ENABLE", "CTRL_RESET", "CTRL_PROMISC",
    "STATUS_ENABLED", "STATUS_ERROR", "STATUS_LINK",
    "INT_RX", "INT_TX", "INT_ERROR", "INT_RX_NOBUF",
    "DESC_ADDR", "DESC_LEN", "DESC_FLAGS", "DESC_STATUS", "DESC_SIZE",
    "DESC_F_MORE", "DESC_S_DONE", "DESC_S_MORE",
    "ETH_HLEN", "ETH_ZLEN", "MTU_MIN", "MTU_MAX", "MTU_DEFAULT",
    "RING_MIN", "RING_MAX", "RING_ALIGN", "NO_INDEX",
    "ERR_NONE", "ERR_TX_RING_BASE", "ERR_TX_RING_SIZE", "ERR_TX_TAIL", "ERR_TX_DESC_ADDR",
    "ERR_TX_DESC_LEN", "ERR_TX_DESC_FLAGS", "ERR_TX_FRAME_LEN", "ERR_TX_CHAIN",
    "ERR_RX_RING_BASE", "ERR_RX_RING_SIZE", "ERR_RX_TAIL", "ERR_RX_DESC_ADDR",
    "ERR_RX_DESC_LEN", "ERR_RX_DESC_FLAGS", "ERR_CONFIG_BUSY", "ERR_DMA",
)

_DESC = struct.Struct("<QHHI")      # addr, len, flags, status: one fetch, one unpack
_RX_WRITEBACK = struct.Struct("<HHI")  # len, flags, status at DESC_LEN
_STATUS_DONE = DESC_S_DONE.to_bytes(4, "little")
_ERR_STAT = tuple(f"error_{n}" for n in ERR_NAMES)


def ring_size_ok(size: int) -> bool:
    """Return True if `size` is a power of two in [RING_MIN, RING_MAX]."""
    return RING_MIN <= size <= RING_MAX and size & (size - 1) == 0


class _Ring:
    """One descriptor ring: the registers the driver programs and the device's
    latched view of them (base/size are snapshotted at enable so later writes
    cannot move a ring under the device's feet)."""

    __slots__ = ("base_lo", "base_hi", "size_reg", "head", "tail", "base", "size", "mask",
                 "fetch", "cache")

    def __init__(self) -> None:
        self.base_lo = 0
        self.base_hi = 0
        self.size_reg = 0
        self.head = 0
        self.tail = 0
        self.base = 0        # latched at enable
        self.size = 0        # latched at enable (0 while not running)
        self.mask = 0
        # RX only: descriptors in [head, fetch) were already fetched into `cache`
        # as (index, addr, capacity, flags) - the e1000 descriptor prefetch
        # cache, which is what makes "read each descriptor once" hold even when
        # a frame needs more buffers than are posted and is dropped.
        self.fetch = 0
        self.cache: list[tuple[int, int, int, int]] = []


class Nic:
    """The NIC device: MMIO registers, TX/RX rings in guest RAM, one IRQ line.

    `transmit(wire)` is set by the machine to the segment port's send; it
    gets each frame with its FCS appended. The segment calls `receive(wire)`.

    Why this class is long: it is one device's register file and its two
    DMA engines. Every register write and every descriptor step reads the
    same latched ring state and error latch (docs/nic.md), as a real NIC's
    one state machine does; TX and RX objects apart would share all of it.
    """

    name = "nic"

    def __init__(self, mem: PhysMem, irq: IrqLine, clock: Clock, mac: bytes,
                 mtu: int = MTU_DEFAULT) -> None:
        """Build a NIC in its power-on state (disabled, all interrupts masked).

        Raises ValueError if `mac` is not 6 bytes or `mtu` is outside
        [MTU_MIN, MTU_MAX] (host configuration errors, not guest errors).
        """
        if len(mac) != 6:
            raise ValueError(f"NIC MAC must be 6 bytes, got {len(mac)}")
        if not MTU_MIN <= mtu <= MTU_MAX:
            raise ValueError(f"NIC MTU must be in [{MTU_MIN}, {MTU_MAX}], got {mtu}")
        self.mem = mem
        self.irq = irq
        self.log = no_log
        # Held for interrupt moderation / serialisation should they be needed;
        # today every frame is handled synchronously at clock.now.
        self.clock = clock
        self.transmit: Callable[[bytes], None] | None = None
        self._mac0 = bytes(mac)
        self._mtu0 = mtu
        self._stats: dict[str, int] = dict.fromkeys(STAT_NAMES, 0)
        self._power_on()

    # -- state ----------------------------------------------------------------
    def _power_on(self) -> None:
        """Put every register in its reset value (stats are kept)."""
        self.mac = self._mac0
        self.mtu = self._mtu0
        self.ctrl = 0
        self.error = ERR_NONE
        self.err_index = NO_INDEX
        self.int_status = 0
        self.int_mask = 0
        self.running = False
        self.tx = _Ring()
        self.rx = _Ring()
        self._update_irq()

    def reset(self) -> None:
        """Reset the device to its power-on state (as CTRL.RESET does); clears
        any error. Counters survive: they are the machine's record."""
        self._stats["resets"] += 1
        self._power_on()

    def stats(self) -> dict[str, int]:
        """Return a copy of the counters, keyed by STAT_NAMES (stable order)."""
        return dict(self._stats)

    def _update_irq(self) -> None:
        """Drive the line: level = (int_status & int_mask) != 0."""
        level = bool(self.int_status & self.int_mask)
        if level and not self.irq.level:
            self._stats["irqs"] += 1
        self.irq.set(level)

    def _cause(self, bits: int) -> None:
        """Latch interrupt causes and update the line."""
        self.int_status |= bits
        self._update_irq()

    def _fail(self, code: int, index: int = NO_INDEX) -> None:
        """Enter the error state: latch `code`, halt, count, interrupt.

        Only the first error is latched; the device is halted afterwards, so
        it cannot meet another until a reset.
        """
        if self.error != ERR_NONE:
            return
        self.error = code
        self.err_index = index
        self.running = False
        self.rx.cache.clear()
        self._stats["errors"] += 1
        self._stats[_ERR_STAT[code]] += 1
        self.log("guest_errors", f"nic: error {ERR_NAMES[code]}"
                 + (f" at descriptor {index}" if index != NO_INDEX else "") + ": device halted")
        self._cause(INT_ERROR)

    # -- MMIO -----------------------------------------------------------------
    def _bad_mmio(self, what: str) -> None:
        self._stats["bad_mmio"] += 1
        self.log("guest_errors", f"nic: {what}")

    def _reg(self, off: int) -> int | None:
        """Return the 32-bit register at aligned `off`, or None if undefined."""
        if off >= REG_STATS:
            i = (off - REG_STATS) >> 2
            if i < len(STAT_NAMES):
                return self._stats[STAT_NAMES[i]] & 0xFFFF_FFFF
            return None
        if off == REG_INT_STATUS:
            return self.int_status
        if off == REG_STATUS:
            return ((STATUS_ENABLED if self.running else 0)
                    | (STATUS_ERROR if self.error else 0)
                    | (STATUS_LINK if self.transmit is not None else 0))
        if off == REG_TX_HEAD:
            return self.tx.head
        if off == REG_RX_HEAD:
            return self.rx.head
        getter = _READERS.get(off)
        return None if getter is None else getter(self)

    def read(self, offset: int, size: int) -> int:
        """Return `size` bytes (1, 2 or 4) of the register holding `offset`.

        Sub-word reads return the addressed bytes of the 32-bit register (so
        `lbu` of MAC bytes works); undefined offsets and reads straddling two
        registers return 0 and count in bad_mmio. Never raises.
        """
        shift = offset & 3
        if size not in (1, 2, 4) or shift + size > 4:
            self._bad_mmio(f"read of {size} bytes at +0x{offset:x}")
            return 0
        value = self._reg(offset - shift)
        if value is None:
            self._bad_mmio(f"read of unknown register +0x{offset:x}")
            return 0
        return (value >> (8 * shift)) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        """Write a register. Only aligned 32-bit writes take effect; others,
        and writes to undefined or read-only registers, are ignored and
        counted in bad_mmio. Guest mistakes in ring programming enter the
        error state (see _fail). Never raises."""
        if size != 4 or offset & 3:
            self._bad_mmio(f"write of {size} bytes at +0x{offset:x} ignored")
            return
        value &= 0xFFFF_FFFF
        if offset == REG_TX_TAIL:
            self._write_tx_tail(value)
        elif offset == REG_RX_TAIL:
            self._write_rx_tail(value)
        elif offset == REG_INT_ACK:
            self.int_status &= ~value
            self._update_irq()
        elif offset == REG_INT_MASK:
            self.int_mask = value & INT_ALL
            self._update_irq()
        elif offset == REG_CTRL:
            self._write_ctrl(value)
        elif offset == REG_MTU:
            self.mtu = min(max(value, MTU_MIN), MTU_MAX)   # clamp, as the data sheet says
        elif offset == REG_MAC_LO:
            self.mac = value.to_bytes(4, "little") + self.mac[4:]
        elif offset == REG_MAC_HI:
            self.mac = self.mac[:4] + (value & 0xFFFF).to_bytes(2, "little")
        elif offset in _RING_CONFIG:
            self._write_ring_config(offset, value)
        else:
            self._bad_mmio(f"write of 0x{value:x} to register +0x{offset:x} ignored")

    def _write_ctrl(self, value: int) -> None:
        """CTRL: RESET wins over everything; ENABLE edges start/stop the rings."""
        if value & CTRL_RESET:
            self.reset()
            return
        was = self.ctrl & CTRL_ENABLE
        self.ctrl = value & CTRL_MASK
        if self.error:
            return                      # halted until reset: ENABLE is only recorded
        if value & CTRL_ENABLE and not was:
            self._start()
        elif not value & CTRL_ENABLE and was:
            # Disabling forgets the rings' progress (heads and tails back to 0,
            # as after an e1000 reset) so that re-enabling cannot resend or
            # refill descriptors of the previous session.
            self.running = False
            for ring in (self.tx, self.rx):
                ring.size = ring.head = ring.tail = ring.fetch = 0
                ring.cache = []

    def _write_ring_config(self, offset: int, value: int) -> None:
        """Ring base/size: stored while disabled; an error while enabled,
        because the device works from the copy latched at enable."""
        if self.error:
            return
        if self.ctrl & CTRL_ENABLE:
            self._fail(ERR_CONFIG_BUSY)
            return
        ring = self.tx if offset < REG_RX_BASE_LO else self.rx
        reg = offset - (REG_TX_BASE_LO if ring is self.tx else REG_RX_BASE_LO)
        if reg == 0:
            ring.base_lo = value
        elif reg == 4:
            ring.base_hi = value
        else:
            ring.size_reg = value

    def _latch(self, ring: _Ring, err_base: int, err_size: int, err_tail: int) -> bool:
        """Validate and snapshot a ring's registers. Returns False (after
        _fail) if the guest programmed something unusable."""
        size = ring.size_reg
        if not ring_size_ok(size):
            self._fail(err_size)
            return False
        base = ring.base_lo | (ring.base_hi << 32)
        if base % RING_ALIGN or not self.mem.contains(base, size * DESC_SIZE):
            self._fail(err_base)
            return False
        if ring.tail >= size:
            self._fail(err_tail, ring.tail)
            return False
        ring.base, ring.size, ring.mask = base, size, size - 1
        ring.head = ring.fetch = 0
        ring.cache = []
        return True

    def _start(self) -> None:
        """ENABLE 0->1: latch both rings (heads restart at 0; tails written
        while disabled count), then send anything already posted."""
        if not (self._latch(self.tx, ERR_TX_RING_BASE, ERR_TX_RING_SIZE, ERR_TX_TAIL)
                and self._latch(self.rx, ERR_RX_RING_BASE, ERR_RX_RING_SIZE, ERR_RX_TAIL)):
            return
        self.running = True
        if self.tx.tail != self.tx.head:
            self._process_tx()

    def _write_tx_tail(self, value: int) -> None:
        """The TX doorbell: validate, then transmit [head, tail) synchronously."""
        if self.error:
            return
        ring = self.tx
        if not self.running:
            ring.tail = value           # validated at enable
            return
        if value >= ring.size:
            self._fail(ERR_TX_TAIL, value)
            return
        ring.tail = value
        self._process_tx()

    def _write_rx_tail(self, value: int) -> None:
        """Post RX buffers. The tail may not move back over descriptors the
        device has already fetched (that would take buffers back mid-use)."""
        if self.error:
            return
        ring = self.rx
        if not self.running:
            ring.tail = value
            return
        if value >= ring.size or (value - ring.head) & ring.mask < len(ring.cache):
            self._fail(ERR_RX_TAIL, value)
            return
        ring.tail = value

    # -- TX -------------------------------------------------------------------
    def _process_tx(self) -> None:
        """Send every complete frame in [head, tail).

        Each descriptor is fetched once (one 16-byte read, unpacked into
        locals). A frame is the run of descriptors up to one without
        DESC_F_MORE (e1000 EOP semantics, inverted so that flags 0 means a
        one-descriptor frame). Work is bounded: idx walks from head towards
        tail and both are < size, so at most size-1 descriptors per call.
        """
        ring = self.tx
        mem = self.mem
        base, mask, tail = ring.base, ring.mask, ring.tail
        max_frame = ETH_HLEN + self.mtu
        stats = self._stats
        idx = start = ring.head
        frags: list[tuple[int, int]] = []
        total = 0
        sent = 0
        last = idx
        try:
            while idx != tail:
                addr, length, flags, _ = _DESC.unpack(mem.read(base + idx * DESC_SIZE, DESC_SIZE))
                if flags & ~TX_FLAGS_VALID:
                    self._fail(ERR_TX_DESC_FLAGS, idx)
                    break
                if length == 0:
                    self._fail(ERR_TX_DESC_LEN, idx)
                    break
                if not mem.contains(addr, length):
                    self._fail(ERR_TX_DESC_ADDR, idx)
                    break
                total += length
                if total > max_frame:
                    self._fail(ERR_TX_FRAME_LEN, idx)
                    break
                frags.append((addr, length))
                last = idx
                idx = (idx + 1) & mask
                if flags & DESC_F_MORE:
                    continue
                if total < ETH_HLEN:
                    self._fail(ERR_TX_FRAME_LEN, last)
                    break
                if len(frags) == 1:
                    frame = mem.read(addr, length)
                else:
                    frame = b"".join([mem.read(a, n) for a, n in frags])
                if total < ETH_ZLEN:
                    frame += bytes(ETH_ZLEN - total)
                # Complete the descriptors before the frame leaves: a
                # synchronous reply may arrive from inside transmit().
                j = start
                while j != idx:
                    mem.write(base + j * DESC_SIZE + DESC_STATUS, _STATUS_DONE)
                    j = (j + 1) & mask
                stats["tx_descs"] += len(frags)
                ring.head = start = idx
                sent += 1
                stats["tx_frames"] += 1
                stats["tx_bytes"] += len(frame)
                if self.transmit is None:
                    stats["tx_no_link"] += 1
                else:
                    self.transmit(append_fcs(frame))
                    if not self.running:    # a reply during transmit halted us
                        break
                frags = []
                total = 0
            else:
                if frags:
                    self._fail(ERR_TX_CHAIN, last)
        except DmaError:
            self._fail(ERR_DMA)
        if sent:
            self._cause(INT_TX)

    # -- RX -------------------------------------------------------------------
    def receive(self, wire: bytes) -> None:
        """Accept one frame from the segment (`wire` ends with its FCS).

        Drops and counts the frame when the device is not running
        (rx_disabled), the FCS is wrong (rx_crc_errors), it is shorter than a
        header (rx_runt) or longer than ETH_HLEN + MTU (rx_too_long), it is
        unicast to another MAC and CTRL.PROMISC is clear (rx_filtered), or the
        posted buffers cannot hold it (rx_no_buffer, INT_RX_NOBUF). Otherwise
        DMAs it into one or more RX buffers from head (all but the last get
        DESC_S_MORE), writes back len/status, advances head, raises INT_RX.
        A bad RX descriptor enters the error state. Never raises.
        """
        stats = self._stats
        if not self.running:
            stats["rx_disabled"] += 1
            return
        frame = strip_fcs(wire)
        if frame is None:
            stats["rx_crc_errors"] += 1
            return
        n = len(frame)
        if n < ETH_HLEN:
            stats["rx_runt"] += 1
            return
        if n > ETH_HLEN + self.mtu:
            stats["rx_too_long"] += 1
            return
        if not (self.ctrl & CTRL_PROMISC or frame[0] & 1 or frame[:6] == self.mac):
            stats["rx_filtered"] += 1      # multicast bit covers broadcast too
            return
        ring = self.rx
        mem = self.mem
        cache = ring.cache
        try:
            # Gather enough buffers, fetching each new descriptor once.
            have = 0
            k = 0
            while have < n:
                if k == len(cache):
                    idx = ring.fetch
                    if idx == ring.tail:
                        stats["rx_no_buffer"] += 1
                        self._cause(INT_RX_NOBUF)
                        return
                    addr, cap, flags, _ = _DESC.unpack(
                        mem.read(ring.base + idx * DESC_SIZE, DESC_SIZE))
                    if flags & ~RX_FLAGS_VALID:
                        self._fail(ERR_RX_DESC_FLAGS, idx)
                        return
                    if cap == 0:
                        self._fail(ERR_RX_DESC_LEN, idx)
                        return
                    if not mem.contains(addr, cap):
                        self._fail(ERR_RX_DESC_ADDR, idx)
                        return
                    cache.append((idx, addr, cap, flags))
                    ring.fetch = (idx + 1) & ring.mask
                have += cache[k][2]
                k += 1
            # Deliver into the first k cached buffers.
            view = memoryview(frame)
            off = 0
            for idx, addr, cap, flags in cache[:k]:
                chunk = min(cap, n - off)
                mem.write(addr, view[off:off + chunk])
                off += chunk
                status = DESC_S_DONE | (DESC_S_MORE if off < n else 0)
                mem.write(ring.base + idx * DESC_SIZE + DESC_LEN,
                          _RX_WRITEBACK.pack(chunk, flags, status))
            del cache[:k]
            ring.head = (ring.head + k) & ring.mask
        except DmaError:
            self._fail(ERR_DMA)
            return
        stats["rx_frames"] += 1
        stats["rx_bytes"] += n
        stats["rx_descs"] += k
        self._cause(INT_RX)


def _mac_lo(nic: Nic) -> int:
    return int.from_bytes(nic.mac[:4], "little")


def _mac_hi(nic: Nic) -> int:
    return int.from_bytes(nic.mac[4:], "little")


# Plain-field registers, read through small getters (hot ones are inlined in _reg).
_READERS: dict[int, Callable[[Nic], int]] = {
    REG_ID: lambda n: ID_MAGIC,
    REG_VERSION: lambda n: VERSION,
    REG_MAC_LO: _mac_lo,
    REG_MAC_HI: _mac_hi,
    REG_MTU: lambda n: n.mtu,
    REG_CTRL: lambda n: n.ctrl,
    REG_ERROR: lambda n: n.error,
    REG_INT_MASK: lambda n: n.int_mask,
    REG_MTU_MAX: lambda n: MTU_MAX,
    REG_RING_MAX: lambda n: RING_MAX,
    REG_NSTATS: lambda n: len(STAT_NAMES),
    REG_ERR_INDEX: lambda n: n.err_index,
    REG_TX_BASE_LO: lambda n: n.tx.base_lo,
    REG_TX_BASE_HI: lambda n: n.tx.base_hi,
    REG_TX_SIZE: lambda n: n.tx.size_reg,
    REG_TX_TAIL: lambda n: n.tx.tail,
    REG_RX_BASE_LO: lambda n: n.rx.base_lo,
    REG_RX_BASE_HI: lambda n: n.rx.base_hi,
    REG_RX_SIZE: lambda n: n.rx.size_reg,
    REG_RX_TAIL: lambda n: n.rx.tail,
}
_RING_CONFIG = frozenset({REG_TX_BASE_LO, REG_TX_BASE_HI, REG_TX_SIZE,
                          REG_RX_BASE_LO, REG_RX_BASE_HI, REG_RX_SIZE})
