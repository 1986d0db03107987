# cython: language_level=3
"""Compiled twin of emu/devices/nic.py: the eNIC's register file and its TX
and RX DMA engines.

Same names, contract and guest-visible behaviour as the reference, whose
docstring is the design (docs/nic.md the data sheet): the same validation
in the same order, the same error latch, the same counters, the same
interrupt line updates. Descriptors are still fetched once, and every DMA
still goes through the machine's bounds-checked PhysMem (its read, write
and contains methods); what is compiled is the bookkeeping around them -
descriptor decoding, ring arithmetic, the RX prefetch cache as C arrays,
counters as a C array - which is most of a frame's cost in the reference.

On the machine's own PhysMem (exactly that class) the DMA engines read and
write its buffer directly, with PhysMem's bounds check and DmaError, and
mark written pages in PhysMem.written as PhysMem.write does (the MMU twin
reads the same two buffers); on any other memory object - a subclass a
test uses to watch the device - every access goes through its read, write
and contains methods, in the reference's order.
Constants, names and the ABI are the reference's own, imported from it."""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

from emu.core.memory import DmaError, PhysMem
from emu.devices.bus import no_log
from emu.devices.nic import (
    ERR_NAMES, MTU_MAX, MTU_MIN, RING_MAX, STAT_NAMES, VERSION, ID_MAGIC, ring_size_ok,
)
from emu.net.fcs import append_fcs, strip_fcs

# C copies of the reference's constants (tests/test_io_diff.py checks that they agree)
cdef enum:
    C_REG_ID = 0x000
    C_REG_VERSION = 0x004
    C_REG_MAC_LO = 0x008
    C_REG_MAC_HI = 0x00C
    C_REG_MTU = 0x010
    C_REG_CTRL = 0x014
    C_REG_STATUS = 0x018
    C_REG_ERROR = 0x01C
    C_REG_INT_STATUS = 0x020
    C_REG_INT_MASK = 0x024
    C_REG_INT_ACK = 0x028
    C_REG_MTU_MAX = 0x02C
    C_REG_RING_MAX = 0x030
    C_REG_NSTATS = 0x034
    C_REG_ERR_INDEX = 0x038
    C_REG_TX_BASE_LO = 0x040
    C_REG_TX_BASE_HI = 0x044
    C_REG_TX_SIZE = 0x048
    C_REG_TX_HEAD = 0x04C
    C_REG_TX_TAIL = 0x050
    C_REG_RX_BASE_LO = 0x060
    C_REG_RX_BASE_HI = 0x064
    C_REG_RX_SIZE = 0x068
    C_REG_RX_HEAD = 0x06C
    C_REG_RX_TAIL = 0x070
    C_REG_STATS = 0x100
    C_CTRL_ENABLE = 0x1
    C_CTRL_RESET = 0x2
    C_CTRL_PROMISC = 0x4
    C_CTRL_MASK = 0x5
    C_STATUS_ENABLED = 0x1
    C_STATUS_ERROR = 0x2
    C_STATUS_LINK = 0x4
    C_INT_RX = 0x1
    C_INT_TX = 0x2
    C_INT_ERROR = 0x4
    C_INT_RX_NOBUF = 0x8
    C_INT_ALL = 0xF
    C_DESC_SIZE = 16
    C_DESC_LEN = 8
    C_DESC_STATUS = 12
    C_DESC_F_MORE = 0x1
    C_DESC_S_DONE = 0x1
    C_DESC_S_MORE = 0x2
    C_TX_FLAGS_VALID = 0x1
    C_RX_FLAGS_VALID = 0x0
    C_ETH_HLEN = 14
    C_ETH_ZLEN = 60
    C_RING_MAX = 4096
    C_RING_ALIGN = 16
    C_ERR_TX_RING_BASE = 1
    C_ERR_TX_RING_SIZE = 2
    C_ERR_TX_TAIL = 3
    C_ERR_TX_DESC_ADDR = 4
    C_ERR_TX_DESC_LEN = 5
    C_ERR_TX_DESC_FLAGS = 6
    C_ERR_TX_FRAME_LEN = 7
    C_ERR_TX_CHAIN = 8
    C_ERR_RX_RING_BASE = 9
    C_ERR_RX_RING_SIZE = 10
    C_ERR_RX_TAIL = 11
    C_ERR_RX_DESC_ADDR = 12
    C_ERR_RX_DESC_LEN = 13
    C_ERR_RX_DESC_FLAGS = 14
    C_ERR_CONFIG_BUSY = 15
    C_ERR_DMA = 16

cdef uint32_t C_NO_INDEX = 0xFFFFFFFF

CONSTANTS = {
    "REG_ID": C_REG_ID, "REG_VERSION": C_REG_VERSION, "REG_MAC_LO": C_REG_MAC_LO,
    "REG_MAC_HI": C_REG_MAC_HI, "REG_MTU": C_REG_MTU, "REG_CTRL": C_REG_CTRL,
    "REG_STATUS": C_REG_STATUS, "REG_ERROR": C_REG_ERROR, "REG_INT_STATUS": C_REG_INT_STATUS,
    "REG_INT_MASK": C_REG_INT_MASK, "REG_INT_ACK": C_REG_INT_ACK, "REG_MTU_MAX": C_REG_MTU_MAX,
    "REG_RING_MAX": C_REG_RING_MAX, "REG_NSTATS": C_REG_NSTATS,
    "REG_ERR_INDEX": C_REG_ERR_INDEX, "REG_TX_BASE_LO": C_REG_TX_BASE_LO,
    "REG_TX_BASE_HI": C_REG_TX_BASE_HI, "REG_TX_SIZE": C_REG_TX_SIZE,
    "REG_TX_HEAD": C_REG_TX_HEAD, "REG_TX_TAIL": C_REG_TX_TAIL,
    "REG_RX_BASE_LO": C_REG_RX_BASE_LO, "REG_RX_BASE_HI": C_REG_RX_BASE_HI,
    "REG_RX_SIZE": C_REG_RX_SIZE, "REG_RX_HEAD": C_REG_RX_HEAD, "REG_RX_TAIL": C_REG_RX_TAIL,
    "REG_STATS": C_REG_STATS, "CTRL_ENABLE": C_CTRL_ENABLE, "CTRL_RESET": C_CTRL_RESET,
    "CTRL_PROMISC": C_CTRL_PROMISC, "CTRL_MASK": C_CTRL_MASK,
    "STATUS_ENABLED": C_STATUS_ENABLED, "STATUS_ERROR": C_STATUS_ERROR,
    "STATUS_LINK": C_STATUS_LINK, "INT_RX": C_INT_RX, "INT_TX": C_INT_TX,
    "INT_ERROR": C_INT_ERROR, "INT_RX_NOBUF": C_INT_RX_NOBUF, "INT_ALL": C_INT_ALL,
    "DESC_SIZE": C_DESC_SIZE, "DESC_LEN": C_DESC_LEN, "DESC_STATUS": C_DESC_STATUS,
    "DESC_F_MORE": C_DESC_F_MORE, "DESC_S_DONE": C_DESC_S_DONE, "DESC_S_MORE": C_DESC_S_MORE,
    "TX_FLAGS_VALID": C_TX_FLAGS_VALID, "RX_FLAGS_VALID": C_RX_FLAGS_VALID,
    "ETH_HLEN": C_ETH_HLEN, "ETH_ZLEN": C_ETH_ZLEN, "RING_MAX": C_RING_MAX,
    "RING_ALIGN": C_RING_ALIGN, "NO_INDEX": C_NO_INDEX,
    "ERR_TX_RING_BASE": C_ERR_TX_RING_BASE, "ERR_TX_RING_SIZE": C_ERR_TX_RING_SIZE,
    "ERR_TX_TAIL": C_ERR_TX_TAIL, "ERR_TX_DESC_ADDR": C_ERR_TX_DESC_ADDR,
    "ERR_TX_DESC_LEN": C_ERR_TX_DESC_LEN, "ERR_TX_DESC_FLAGS": C_ERR_TX_DESC_FLAGS,
    "ERR_TX_FRAME_LEN": C_ERR_TX_FRAME_LEN, "ERR_TX_CHAIN": C_ERR_TX_CHAIN,
    "ERR_RX_RING_BASE": C_ERR_RX_RING_BASE, "ERR_RX_RING_SIZE": C_ERR_RX_RING_SIZE,
    "ERR_RX_TAIL": C_ERR_RX_TAIL, "ERR_RX_DESC_ADDR": C_ERR_RX_DESC_ADDR,
    "ERR_RX_DESC_LEN": C_ERR_RX_DESC_LEN, "ERR_RX_DESC_FLAGS": C_ERR_RX_DESC_FLAGS,
    "ERR_CONFIG_BUSY": C_ERR_CONFIG_BUSY, "ERR_DMA": C_ERR_DMA,
}

cdef Py_ssize_t NSTATS = len(STAT_NAMES)
cdef dict STAT_INDEX = {name: i for i, name in enumerate(STAT_NAMES)}
cdef Py_ssize_t S_TX_FRAMES = STAT_INDEX["tx_frames"]
cdef Py_ssize_t S_TX_BYTES = STAT_INDEX["tx_bytes"]
cdef Py_ssize_t S_TX_DESCS = STAT_INDEX["tx_descs"]
cdef Py_ssize_t S_TX_NO_LINK = STAT_INDEX["tx_no_link"]
cdef Py_ssize_t S_RX_FRAMES = STAT_INDEX["rx_frames"]
cdef Py_ssize_t S_RX_BYTES = STAT_INDEX["rx_bytes"]
cdef Py_ssize_t S_RX_DESCS = STAT_INDEX["rx_descs"]
cdef Py_ssize_t S_RX_CRC = STAT_INDEX["rx_crc_errors"]
cdef Py_ssize_t S_RX_NO_BUFFER = STAT_INDEX["rx_no_buffer"]
cdef Py_ssize_t S_RX_DISABLED = STAT_INDEX["rx_disabled"]
cdef Py_ssize_t S_RX_FILTERED = STAT_INDEX["rx_filtered"]
cdef Py_ssize_t S_RX_TOO_LONG = STAT_INDEX["rx_too_long"]
cdef Py_ssize_t S_RX_RUNT = STAT_INDEX["rx_runt"]
cdef Py_ssize_t S_IRQS = STAT_INDEX["irqs"]
cdef Py_ssize_t S_RESETS = STAT_INDEX["resets"]
cdef Py_ssize_t S_BAD_MMIO = STAT_INDEX["bad_mmio"]
cdef Py_ssize_t S_ERRORS = STAT_INDEX["errors"]
cdef Py_ssize_t S_ERROR_0 = STAT_INDEX["error_" + ERR_NAMES[1]] - 1   # + code

cdef bytes _STATUS_DONE = (C_DESC_S_DONE).to_bytes(4, "little")


cdef inline uint64_t _u64(const uint8_t *p):
    return (<uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16)
            | (<uint64_t>p[3] << 24) | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40)
            | (<uint64_t>p[6] << 48) | (<uint64_t>p[7] << 56))


cdef inline uint16_t _u16(const uint8_t *p):
    return <uint16_t>(p[0] | (p[1] << 8))


cdef class _Ring:
    """One descriptor ring (see the reference's _Ring): the registers the driver
    programs, the latched copy, and (RX) the prefetch cache as a C FIFO."""

    cdef public uint32_t base_lo, base_hi, size_reg, head, tail, size, mask, fetch
    cdef public uint64_t base
    cdef uint32_t c_idx[C_RING_MAX]
    cdef uint64_t c_addr[C_RING_MAX]
    cdef uint32_t c_cap[C_RING_MAX]
    cdef uint16_t c_flags[C_RING_MAX]
    cdef Py_ssize_t c_first, c_count

    cdef inline void clear_cache(self):
        self.c_first = 0
        self.c_count = 0

    @property
    def cache(self):
        """The prefetched descriptors as (index, addr, capacity, flags), oldest first."""
        cdef Py_ssize_t i, j
        out = []
        for i in range(self.c_count):
            j = (self.c_first + i) % C_RING_MAX
            out.append((self.c_idx[j], self.c_addr[j], self.c_cap[j], self.c_flags[j]))
        return out


cdef class Nic:
    """The NIC device (see the reference's class docstring)."""

    cdef public object mem, irq, log, clock, transmit, mac
    cdef public uint32_t mtu, ctrl, error, err_index, int_status, int_mask
    cdef public bint running
    cdef public _Ring tx, rx
    cdef object _mac0, _read, _write, _contains
    cdef uint32_t _mtu0
    cdef long long _stats[64]
    # direct DMA on a plain PhysMem (NULL otherwise); the memoryviews keep
    # the buffers exported for as long as the device lives
    cdef unsigned char *_ram
    cdef unsigned char *_written
    cdef uint64_t _base, _size
    cdef object _ram_view, _written_view

    name = "nic"

    def __init__(self, mem, irq, clock, mac, mtu=9000):
        """Build a NIC in its power-on state (disabled, all interrupts masked).

        Raises ValueError if `mac` is not 6 bytes or `mtu` is outside
        [MTU_MIN, MTU_MAX] (host configuration errors, not guest errors).
        """
        if len(mac) != 6:
            raise ValueError(f"NIC MAC must be 6 bytes, got {len(mac)}")
        if not MTU_MIN <= mtu <= MTU_MAX:
            raise ValueError(f"NIC MTU must be in [{MTU_MIN}, {MTU_MAX}], got {mtu}")
        assert NSTATS <= 64
        self.mem = mem
        self._read, self._write, self._contains = mem.read, mem.write, mem.contains
        cdef unsigned char[::1] ram, written
        self._ram = NULL
        if type(mem) is PhysMem and mem.size > 0:
            ram, written = mem.view, mem.written
            self._ram_view, self._written_view = ram, written
            self._ram, self._written = &ram[0], &written[0]
            self._base, self._size = mem.base, mem.size
        self.irq = irq
        self.log = no_log
        self.clock = clock
        self.transmit = None
        self._mac0 = bytes(mac)
        self._mtu0 = mtu
        cdef Py_ssize_t i
        for i in range(64):
            self._stats[i] = 0
        self.tx = _Ring()
        self.rx = _Ring()
        self._power_on()

    # -- state ----------------------------------------------------------------
    cdef int _power_on(self) except -1:
        self.mac = self._mac0
        self.mtu = self._mtu0
        self.ctrl = 0
        self.error = 0
        self.err_index = C_NO_INDEX
        self.int_status = 0
        self.int_mask = 0
        self.running = False
        self.tx = _Ring()
        self.rx = _Ring()
        self._update_irq()
        return 0

    # -- DMA (PhysMem's contract: bounds-checked, DmaError outside RAM) -----------
    cdef inline bint _inside(self, uint64_t addr, uint64_t size):
        return addr >= self._base and addr - self._base <= self._size \
            and size <= self._size - (addr - self._base)

    cdef bint _dma_contains(self, uint64_t addr, uint64_t size) except -1:
        if self._ram == NULL:
            return bool(self._contains(addr, size))
        return self._inside(addr, size)

    cdef bytes _dma_read(self, uint64_t addr, Py_ssize_t size):
        if self._ram == NULL:
            return self._read(addr, size)
        if not self._inside(addr, size):
            raise DmaError(addr, size)
        return PyBytes_FromStringAndSize(<char *>self._ram + (addr - self._base), size)

    cdef int _dma_write(self, uint64_t addr, const uint8_t *data, Py_ssize_t n) except -1:
        """Direct path only: PhysMem.write of n bytes at data."""
        cdef uint64_t off, first, last
        if not self._inside(addr, n):
            raise DmaError(addr, n)
        off = addr - self._base
        if n:
            memcpy(self._ram + off, data, n)
            first, last = off >> 12, (off + n - 1) >> 12
            memset(self._written + first, 1, last - first + 1)
        return 0

    def reset(self):
        """Reset the device to its power-on state (as CTRL.RESET does); clears
        any error. Counters survive: they are the machine's record."""
        self._stats[S_RESETS] += 1
        self._power_on()

    def stats(self):
        """Return a copy of the counters, keyed by STAT_NAMES (stable order)."""
        return {name: self._stats[i] for i, name in enumerate(STAT_NAMES)}

    cdef int _update_irq(self) except -1:
        cdef bint level = (self.int_status & self.int_mask) != 0
        if level and not self.irq.level:
            self._stats[S_IRQS] += 1
        self.irq.set(level)
        return 0

    cdef int _cause(self, uint32_t bits) except -1:
        self.int_status |= bits
        return self._update_irq()

    cdef int _fail(self, uint32_t code, uint32_t index=C_NO_INDEX) except -1:
        if self.error != 0:
            return 0
        self.error = code
        self.err_index = index
        self.running = False
        self.rx.clear_cache()
        self._stats[S_ERRORS] += 1
        self._stats[S_ERROR_0 + code] += 1
        self.log("guest_errors", f"nic: error {ERR_NAMES[code]}"
                 + (f" at descriptor {index}" if index != C_NO_INDEX else "")
                 + ": device halted")
        return self._cause(C_INT_ERROR)

    # -- MMIO -----------------------------------------------------------------
    cdef int _bad_mmio(self, str what) except -1:
        self._stats[S_BAD_MMIO] += 1
        self.log("guest_errors", f"nic: {what}")
        return 0

    cdef object _reg(self, uint32_t off):
        """The 32-bit register at aligned `off`, or None if undefined."""
        cdef Py_ssize_t i
        if off >= C_REG_STATS:
            i = (off - C_REG_STATS) >> 2
            if i < NSTATS:
                return self._stats[i] & 0xFFFFFFFF
            return None
        if off == C_REG_INT_STATUS:
            return self.int_status
        if off == C_REG_STATUS:
            return ((C_STATUS_ENABLED if self.running else 0)
                    | (C_STATUS_ERROR if self.error else 0)
                    | (C_STATUS_LINK if self.transmit is not None else 0))
        if off == C_REG_TX_HEAD:
            return self.tx.head
        if off == C_REG_RX_HEAD:
            return self.rx.head
        if off == C_REG_ID:
            return ID_MAGIC
        if off == C_REG_VERSION:
            return VERSION
        if off == C_REG_MAC_LO:
            return int.from_bytes(self.mac[:4], "little")
        if off == C_REG_MAC_HI:
            return int.from_bytes(self.mac[4:], "little")
        if off == C_REG_MTU:
            return self.mtu
        if off == C_REG_CTRL:
            return self.ctrl
        if off == C_REG_ERROR:
            return self.error
        if off == C_REG_INT_MASK:
            return self.int_mask
        if off == C_REG_MTU_MAX:
            return MTU_MAX
        if off == C_REG_RING_MAX:
            return RING_MAX
        if off == C_REG_NSTATS:
            return NSTATS
        if off == C_REG_ERR_INDEX:
            return self.err_index
        if off == C_REG_TX_BASE_LO:
            return self.tx.base_lo
        if off == C_REG_TX_BASE_HI:
            return self.tx.base_hi
        if off == C_REG_TX_SIZE:
            return self.tx.size_reg
        if off == C_REG_TX_TAIL:
            return self.tx.tail
        if off == C_REG_RX_BASE_LO:
            return self.rx.base_lo
        if off == C_REG_RX_BASE_HI:
            return self.rx.base_hi
        if off == C_REG_RX_SIZE:
            return self.rx.size_reg
        if off == C_REG_RX_TAIL:
            return self.rx.tail
        return None

    def read(self, offset, size):
        """Return `size` bytes (1, 2 or 4) of the register holding `offset`.

        Sub-word reads return the addressed bytes of the 32-bit register (so
        `lbu` of MAC bytes works); undefined offsets and reads straddling two
        registers return 0 and count in bad_mmio. Never raises.
        """
        shift = offset & 3
        if size not in (1, 2, 4) or shift + size > 4:
            self._bad_mmio(f"read of {size} bytes at +0x{offset:x}")
            return 0
        value = self._reg(offset - shift) if 0 <= offset - shift <= 0xFFFFFFFF else None
        if value is None:
            self._bad_mmio(f"read of unknown register +0x{offset:x}")
            return 0
        return (value >> (8 * shift)) & ((1 << (8 * size)) - 1)

    def write(self, offset, size, value):
        """Write a register. Only aligned 32-bit writes take effect; others,
        and writes to undefined or read-only registers, are ignored and
        counted in bad_mmio. Guest mistakes in ring programming enter the
        error state (see _fail). Never raises."""
        cdef uint32_t v
        if size != 4 or offset & 3:
            self._bad_mmio(f"write of {size} bytes at +0x{offset:x} ignored")
            return
        v = value & 0xFFFFFFFF
        if offset == C_REG_TX_TAIL:
            self._write_tx_tail(v)
        elif offset == C_REG_RX_TAIL:
            self._write_rx_tail(v)
        elif offset == C_REG_INT_ACK:
            self.int_status &= ~v
            self._update_irq()
        elif offset == C_REG_INT_MASK:
            self.int_mask = v & C_INT_ALL
            self._update_irq()
        elif offset == C_REG_CTRL:
            self._write_ctrl(v)
        elif offset == C_REG_MTU:
            self.mtu = min(max(v, MTU_MIN), MTU_MAX)   # clamp, as the data sheet says
        elif offset == C_REG_MAC_LO:
            self.mac = v.to_bytes(4, "little") + self.mac[4:]
        elif offset == C_REG_MAC_HI:
            self.mac = self.mac[:4] + (v & 0xFFFF).to_bytes(2, "little")
        elif offset in (C_REG_TX_BASE_LO, C_REG_TX_BASE_HI, C_REG_TX_SIZE,
                        C_REG_RX_BASE_LO, C_REG_RX_BASE_HI, C_REG_RX_SIZE):
            self._write_ring_config(offset, v)
        else:
            self._bad_mmio(f"write of 0x{v:x} to register +0x{offset:x} ignored")

    cdef int _write_ctrl(self, uint32_t value) except -1:
        cdef uint32_t was
        cdef _Ring ring
        if value & C_CTRL_RESET:
            self.reset()
            return 0
        was = self.ctrl & C_CTRL_ENABLE
        self.ctrl = value & C_CTRL_MASK
        if self.error:
            return 0                    # halted until reset: ENABLE is only recorded
        if value & C_CTRL_ENABLE and not was:
            self._start()
        elif not value & C_CTRL_ENABLE and was:
            # Disabling forgets the rings' progress (see the reference).
            self.running = False
            for ring in (self.tx, self.rx):
                ring.size = ring.head = ring.tail = ring.fetch = 0
                ring.clear_cache()
        return 0

    cdef int _write_ring_config(self, uint32_t offset, uint32_t value) except -1:
        cdef _Ring ring
        cdef uint32_t reg
        if self.error:
            return 0
        if self.ctrl & C_CTRL_ENABLE:
            return self._fail(C_ERR_CONFIG_BUSY)
        ring = self.tx if offset < C_REG_RX_BASE_LO else self.rx
        reg = offset - (C_REG_TX_BASE_LO if ring is self.tx else C_REG_RX_BASE_LO)
        if reg == 0:
            ring.base_lo = value
        elif reg == 4:
            ring.base_hi = value
        else:
            ring.size_reg = value
        return 0

    cdef bint _latch(self, _Ring ring, uint32_t err_base, uint32_t err_size,
                     uint32_t err_tail) except -1:
        cdef uint32_t size = ring.size_reg
        cdef uint64_t base
        if not ring_size_ok(size):
            self._fail(err_size)
            return False
        base = ring.base_lo | (<uint64_t>ring.base_hi << 32)
        if base % C_RING_ALIGN or not self._dma_contains(base, size * C_DESC_SIZE):
            self._fail(err_base)
            return False
        if ring.tail >= size:
            self._fail(err_tail, ring.tail)
            return False
        ring.base, ring.size, ring.mask = base, size, size - 1
        ring.head = ring.fetch = 0
        ring.clear_cache()
        return True

    cdef int _start(self) except -1:
        if not (self._latch(self.tx, C_ERR_TX_RING_BASE, C_ERR_TX_RING_SIZE, C_ERR_TX_TAIL)
                and self._latch(self.rx, C_ERR_RX_RING_BASE, C_ERR_RX_RING_SIZE,
                                C_ERR_RX_TAIL)):
            return 0
        self.running = True
        if self.tx.tail != self.tx.head:
            self._process_tx()
        return 0

    cdef int _write_tx_tail(self, uint32_t value) except -1:
        cdef _Ring ring = self.tx
        if self.error:
            return 0
        if not self.running:
            ring.tail = value           # validated at enable
            return 0
        if value >= ring.size:
            return self._fail(C_ERR_TX_TAIL, value)
        ring.tail = value
        return self._process_tx()

    cdef int _write_rx_tail(self, uint32_t value) except -1:
        cdef _Ring ring = self.rx
        if self.error:
            return 0
        if not self.running:
            ring.tail = value
            return 0
        if value >= ring.size or ((value - ring.head) & ring.mask) < <uint32_t>ring.c_count:
            return self._fail(C_ERR_RX_TAIL, value)
        ring.tail = value
        return 0

    # -- TX -------------------------------------------------------------------
    cdef int _process_tx(self) except -1:
        """Send every complete frame in [head, tail) (see the reference)."""
        cdef _Ring ring = self.tx
        cdef uint64_t base = ring.base, addr
        cdef uint32_t mask = ring.mask, tail = ring.tail, idx, start, last, j
        cdef uint32_t max_frame = C_ETH_HLEN + self.mtu, length, flags
        cdef Py_ssize_t total = 0, sent = 0, nfrags = 0
        cdef bytes d, frame
        cdef const uint8_t *p
        cdef list frags = []
        cdef bint direct = self._ram != NULL
        write = self._write
        idx = start = last = ring.head
        try:
            while idx != tail:
                d = self._dma_read(base + idx * C_DESC_SIZE, C_DESC_SIZE)
                p = <const uint8_t *>PyBytes_AS_STRING(d)
                addr, length, flags = _u64(p), _u16(p + 8), _u16(p + 10)
                if flags & ~C_TX_FLAGS_VALID:
                    self._fail(C_ERR_TX_DESC_FLAGS, idx)
                    break
                if length == 0:
                    self._fail(C_ERR_TX_DESC_LEN, idx)
                    break
                if not self._dma_contains(addr, length):
                    self._fail(C_ERR_TX_DESC_ADDR, idx)
                    break
                total += length
                if total > max_frame:
                    self._fail(C_ERR_TX_FRAME_LEN, idx)
                    break
                frags.append((addr, length))
                nfrags += 1
                last = idx
                idx = (idx + 1) & mask
                if flags & C_DESC_F_MORE:
                    continue
                if total < C_ETH_HLEN:
                    self._fail(C_ERR_TX_FRAME_LEN, last)
                    break
                if nfrags == 1:
                    frame = self._dma_read(addr, length)
                else:
                    frame = b"".join([self._dma_read(a, n) for a, n in frags])
                if total < C_ETH_ZLEN:
                    frame += bytes(C_ETH_ZLEN - total)
                # Complete the descriptors before the frame leaves: a
                # synchronous reply may arrive from inside transmit().
                j = start
                while j != idx:
                    if direct:
                        self._dma_write(base + j * C_DESC_SIZE + C_DESC_STATUS,
                                        <const uint8_t *>PyBytes_AS_STRING(_STATUS_DONE), 4)
                    else:
                        write(base + j * C_DESC_SIZE + C_DESC_STATUS, _STATUS_DONE)
                    j = (j + 1) & mask
                self._stats[S_TX_DESCS] += nfrags
                ring.head = start = idx
                sent += 1
                self._stats[S_TX_FRAMES] += 1
                self._stats[S_TX_BYTES] += len(frame)
                if self.transmit is None:
                    self._stats[S_TX_NO_LINK] += 1
                else:
                    self.transmit(append_fcs(frame))
                    if not self.running:    # a reply during transmit halted us
                        break
                frags = []
                nfrags = 0
                total = 0
            else:
                if nfrags:
                    self._fail(C_ERR_TX_CHAIN, last)
        except DmaError:
            self._fail(C_ERR_DMA)
        if sent:
            self._cause(C_INT_TX)
        return 0

    # -- RX -------------------------------------------------------------------
    def receive(self, wire):
        """Accept one frame from the segment (`wire` ends with its FCS); see
        the reference for every drop and error. Never raises."""
        cdef bytes frame, d
        cdef Py_ssize_t n, have, k, i, slot, off, chunk
        cdef _Ring ring
        cdef uint32_t idx, cap, status
        cdef uint16_t flags
        cdef uint64_t addr
        cdef const uint8_t *p
        cdef uint8_t wb[8]
        cdef const uint8_t *fp
        cdef bint direct = self._ram != NULL
        if not self.running:
            self._stats[S_RX_DISABLED] += 1
            return
        frame = strip_fcs(wire)
        if frame is None:
            self._stats[S_RX_CRC] += 1
            return
        n = len(frame)
        if n < C_ETH_HLEN:
            self._stats[S_RX_RUNT] += 1
            return
        if n > C_ETH_HLEN + self.mtu:
            self._stats[S_RX_TOO_LONG] += 1
            return
        p = <const uint8_t *>PyBytes_AS_STRING(frame)
        if not (self.ctrl & C_CTRL_PROMISC or p[0] & 1 or frame[:6] == self.mac):
            self._stats[S_RX_FILTERED] += 1     # multicast bit covers broadcast too
            return
        ring = self.rx
        write = self._write
        try:
            # Gather enough buffers, fetching each new descriptor once.
            have = 0
            k = 0
            while have < n:
                if k == ring.c_count:
                    idx = ring.fetch
                    if idx == ring.tail:
                        self._stats[S_RX_NO_BUFFER] += 1
                        self._cause(C_INT_RX_NOBUF)
                        return
                    d = self._dma_read(ring.base + idx * C_DESC_SIZE, C_DESC_SIZE)
                    p = <const uint8_t *>PyBytes_AS_STRING(d)
                    addr, cap, flags = _u64(p), _u16(p + 8), _u16(p + 10)
                    if flags & ~C_RX_FLAGS_VALID:
                        self._fail(C_ERR_RX_DESC_FLAGS, idx)
                        return
                    if cap == 0:
                        self._fail(C_ERR_RX_DESC_LEN, idx)
                        return
                    if not self._dma_contains(addr, cap):
                        self._fail(C_ERR_RX_DESC_ADDR, idx)
                        return
                    slot = (ring.c_first + ring.c_count) % C_RING_MAX
                    ring.c_idx[slot], ring.c_addr[slot] = idx, addr
                    ring.c_cap[slot], ring.c_flags[slot] = cap, flags
                    ring.c_count += 1
                    ring.fetch = (idx + 1) & ring.mask
                have += ring.c_cap[(ring.c_first + k) % C_RING_MAX]
                k += 1
            # Deliver into the first k cached buffers.
            view = None if direct else memoryview(frame)
            fp = <const uint8_t *>PyBytes_AS_STRING(frame)
            off = 0
            for i in range(k):
                slot = (ring.c_first + i) % C_RING_MAX
                cap = ring.c_cap[slot]
                chunk = min(<Py_ssize_t>cap, n - off)
                if direct:
                    self._dma_write(ring.c_addr[slot], fp + off, chunk)
                else:
                    write(ring.c_addr[slot], view[off:off + chunk])
                off += chunk
                status = C_DESC_S_DONE | (C_DESC_S_MORE if off < n else 0)
                flags = ring.c_flags[slot]
                # the writeback at DESC_LEN: len u16, flags u16, status u32 (LE)
                memset(wb, 0, 8)
                wb[0], wb[1] = chunk & 0xFF, chunk >> 8
                wb[2], wb[3] = flags & 0xFF, flags >> 8
                wb[4] = status
                if direct:
                    self._dma_write(ring.base + ring.c_idx[slot] * C_DESC_SIZE + C_DESC_LEN,
                                    wb, 8)
                else:
                    write(ring.base + ring.c_idx[slot] * C_DESC_SIZE + C_DESC_LEN,
                          PyBytes_FromStringAndSize(<char *>wb, 8))
            ring.c_first = (ring.c_first + k) % C_RING_MAX
            ring.c_count -= k
            ring.head = (ring.head + k) & ring.mask
        except DmaError:
            self._fail(C_ERR_DMA)
            return
        self._stats[S_RX_FRAMES] += 1
        self._stats[S_RX_BYTES] += n
        self._stats[S_RX_DESCS] += k
        self._cause(C_INT_RX)
