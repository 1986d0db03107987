"""The virtio-mmio transport, as QEMU's hw/virtio/virtio-mmio.c presents it:
one 0x200-byte register window per slot, version 1 (legacy, QEMU's default)
or version 2 (modern, `-global virtio-mmio.force-legacy=false`), with one
device object behind it (device.py) or none (an empty slot answers magic,
version and vendor, device ID 0, and ignores writes, as QEMU's does so that
drivers can probe all eight slots).

This module is the register file of both versions - feature words and
their selectors, legacy GuestPageSize/QueuePFN/QueueAlign, modern
QueueDesc/Driver/Device and QueueReady, InterruptStatus/ACK, Status,
ConfigGeneration, the config space at 0x100 - on top of core.py, which
owns status, negotiation, live queues, interrupts, time and the
hostile-guest boundary. Nothing the guest writes makes a method raise. A
QueueNotify write only schedules a Clock event. docs/virtio.md is the data
sheet.

Layer: devices (imports emu.core).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.core.clock import Clock
from emu.core.memory import PhysMem
from emu.devices.bus import IrqLine
from emu.devices.virtio import spec
from emu.devices.virtio.core import NOTIFY_DELAY_NS, STAT_NAMES, VirtioCore
from emu.devices.virtio.device import VirtioDevice

__all__ = ["NOTIFY_DELAY_NS", "STAT_NAMES", "VirtioMmio"]


class _QueueRegs:
    """The registers of one queue (what the driver wrote, latched into a
    live queue at QueueReady or QueuePFN)."""

    __slots__ = ("num", "ready", "desc", "driver", "device", "pfn", "align")

    def __init__(self) -> None:
        self.num = 0
        self.ready = False                 # modern QueueReady
        self.desc = self.driver = self.device = 0
        self.pfn = 0                       # legacy QueuePFN
        self.align = spec.LEGACY_QUEUE_ALIGN


def _set_half(value: int, half: int, word: int) -> int:
    """`value` with its 32-bit half `half` (0 low, 1 high) replaced by `word`."""
    shift = 32 * half
    return (value & ~(0xFFFF_FFFF << shift)) | (word << shift)


class VirtioMmio(VirtioCore):
    """One virtio-mmio slot: the Device protocol (name, log, read, write)
    plus close(), reset(), host_reset() and stats() for the machine."""

    def __init__(self, mem: PhysMem, irq: IrqLine, clock: Clock,
                 device: VirtioDevice | None = None, *, legacy: bool = True,
                 name: str = "virtio-mmio", notify_delay_ns: int = NOTIFY_DELAY_NS,
                 require_version_1: bool = False) -> None:
        """A slot serving `device` (None: an empty slot) through the legacy
        (version 1) or modern (version 2) registers; see VirtioCore."""
        self.page_shift = 0                # legacy GuestPageSize (survives status 0, as QEMU's)
        super().__init__(mem, irq, clock, device, legacy=legacy, name=name,
                         notify_delay_ns=notify_delay_ns, require_version_1=require_version_1)

    def _power_on(self) -> None:
        super()._power_on()
        self.regs = [_QueueRegs() for _ in range(self.nqueues)]
        self.device_sel = self.driver_sel = 0
        self.queue_sel = 0

    def host_reset(self) -> None:
        """Machine reset: as reset(), and GuestPageSize back to 0."""
        self.reset()
        self.page_shift = 0

    def _bad(self, what: str) -> None:
        self._stats["bad_mmio"] += 1
        self.log("guest_errors", f"{self.name}: {what}")

    def _version(self) -> int:
        return spec.VERSION_LEGACY if self.legacy else spec.VERSION_MODERN

    def _sel(self, what: str) -> _QueueRegs | None:
        """The selected queue's registers; None (logged) if it does not exist."""
        if self.queue_sel < self.nqueues:
            return self.regs[self.queue_sel]
        if what:
            self._bad(f"{what} of queue {self.queue_sel}, which does not exist")
        return None

    # -- reads -------------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        """Return the register at `offset` (Device protocol). Registers
        below 0x100 answer 4-byte reads only (others read 0), config space
        answers 1, 2 and 4. Never raises."""
        mask = (1 << (8 * size)) - 1
        if self.device is None:            # QEMU: magic, version, vendor; all else 0
            value = {spec.MAGIC_VALUE: spec.MAGIC, spec.VERSION: self._version(),
                     spec.VENDOR_ID: spec.VENDOR_QEMU}.get(offset, 0)
            return value & mask
        if offset >= spec.CONFIG:
            return self._read_config(offset - spec.CONFIG, size)
        if size != 4:
            self._bad(f"read of {size} bytes at +0x{offset:x}")
            return 0
        if offset in _UNIMPLEMENTED:
            self._stats["bad_mmio"] += 1
            self.log("unimp", f"{self.name}: {_UNIMPLEMENTED[offset]} (+0x{offset:x}) read")
            return 0
        value = self._reg(offset)
        if value is None:
            self._bad(f"read of +0x{offset:x}, not a readable register")
            return 0
        return value

    def _reg(self, off: int) -> int | None:
        assert self.device is not None
        q = self._sel("")
        if off == spec.MAGIC_VALUE:
            return spec.MAGIC
        if off == spec.VERSION:
            return self._version()
        if off == spec.DEVICE_ID:
            return self.device.device_id
        if off == spec.VENDOR_ID:
            return spec.VENDOR_QEMU
        if off == spec.DEVICE_FEATURES:
            words = 1 if self.legacy else 2
            return (self.offered() >> (32 * self.device_sel)) & 0xFFFF_FFFF \
                if self.device_sel < words else 0
        if off == spec.QUEUE_NUM_MAX:
            return self.device.queue_max[self.queue_sel] if q is not None else 0
        if off == spec.QUEUE_PFN and self.legacy:
            return q.pfn if q is not None else 0
        if off == spec.QUEUE_READY and not self.legacy:
            return int(q.ready) if q is not None else 0
        if off == spec.INTERRUPT_STATUS:
            return self.isr
        if off == spec.STATUS:
            return self.status
        if off == spec.CONFIG_GENERATION and not self.legacy:
            return self.generation
        if off in (spec.SHM_LEN_LOW, spec.SHM_LEN_HIGH):
            return 0xFFFF_FFFF          # no shared memory regions (QEMU answers ~0 too)
        return None

    def _read_config(self, off: int, size: int) -> int:
        assert self.device is not None
        if size not in (1, 2, 4) or off + spec.CONFIG >= spec.REGION_SIZE:
            self._bad(f"config read of {size} bytes at +0x{off:x}")
            return 0
        cfg = self.device.config()
        if off + size > len(cfg):            # QEMU: past config_len reads all ones
            return (1 << (8 * size)) - 1
        return int.from_bytes(cfg[off:off + size], "little")

    # -- writes ------------------------------------------------------------------------
    def write(self, offset: int, size: int, value: int) -> None:
        """Write the register at `offset` (Device protocol). Only 4-byte
        writes below 0x100 take effect. Never raises."""
        if self.device is None:
            return                                  # QEMU: an empty slot ignores writes
        if offset >= spec.CONFIG:
            if size not in (1, 2, 4) or offset + size > spec.REGION_SIZE:
                self._bad(f"config write of {size} bytes at +0x{offset:x}")
                return
            self.device.config_write(offset - spec.CONFIG,
                                     (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))
            return
        if size != 4:
            self._bad(f"write of {size} bytes at +0x{offset:x} ignored")
            return
        value &= 0xFFFF_FFFF
        if offset in _UNIMPLEMENTED:
            self._stats["bad_mmio"] += 1
            self.log("unimp", f"{self.name}: {_UNIMPLEMENTED[offset]} (+0x{offset:x}) "
                     f"write of 0x{value:x} ignored")
            return
        handler = _WRITERS.get(offset)
        if handler is None or offset in (_MODERN_ONLY if self.legacy else _LEGACY_ONLY):
            self._bad(f"write of 0x{value:x} to +0x{offset:x} ignored")
            return
        handler(self, value)

    def _w_device_sel(self, v: int) -> None:
        self.device_sel = v

    def _w_driver_sel(self, v: int) -> None:
        self.driver_sel = v

    def _w_driver_features(self, v: int) -> None:
        if self.legacy and self.driver_sel == 0:
            self.set_legacy_features(v)
        elif not self.legacy and self.driver_sel < 2:
            self.driver_features = _set_half(self.driver_features, self.driver_sel, v)
        else:
            self._bad(f"driver features with selector {self.driver_sel} ignored")

    def _w_page_size(self, v: int) -> None:
        shift = (v & -v).bit_length() - 1      # QEMU: ctz32, and 0 for 0
        self.page_shift = max(shift, 0)

    def _w_queue_sel(self, v: int) -> None:
        self.queue_sel = v

    def _w_queue_num(self, v: int) -> None:
        q = self._sel("QueueNum")
        if q is not None:
            q.num = v
            if self.legacy and q.pfn:
                self._legacy_layout()

    def _w_queue_align(self, v: int) -> None:
        q = self._sel("QueueAlign")
        if q is not None:
            q.align = v
            if q.pfn:
                self._legacy_layout()

    def _w_queue_pfn(self, v: int) -> None:
        q = self._sel("QueuePFN")
        if q is None:
            return
        q.pfn = v
        if v:
            self._legacy_layout()
        else:
            self.release(self.queue_sel)

    def _legacy_layout(self) -> None:
        """Table at PFN << page shift, then the available ring, then the
        used ring at the next QueueAlign boundary (virtio 1.2, 2.7, legacy)."""
        i, q = self.queue_sel, self.regs[self.queue_sel]
        if q.align == 0 or q.align & (q.align - 1):
            self.fail(f"queue {i}: QueueAlign {q.align} is not a power of two")
            return
        desc = q.pfn << self.page_shift
        avail = desc + spec.DESC_SIZE * q.num
        used = -(-(avail + 2 * (3 + q.num)) // q.align) * q.align
        self.make_live(i, q.num, desc, avail, used)

    def _w_queue_ready(self, v: int) -> None:
        q = self._sel("QueueReady")
        if q is None:
            return
        q.ready = bool(v & 1)
        if q.ready:
            self.make_live(self.queue_sel, q.num, q.desc, q.driver, q.device)
        else:
            self.release(self.queue_sel)

    def _w_queue_addr(self, offset: int, v: int) -> None:
        q = self._sel("queue address")
        if q is None:
            return
        half = (offset >> 2) & 1
        if offset < spec.QUEUE_DRIVER_LOW:
            q.desc = _set_half(q.desc, half, v)
        elif offset < spec.QUEUE_DEVICE_LOW:
            q.driver = _set_half(q.driver, half, v)
        else:
            q.device = _set_half(q.device, half, v)

    def _w_notify(self, v: int) -> None:
        if not self.notify(v):
            self._bad(f"notify of queue {v}, which does not exist")

    def _w_interrupt_ack(self, v: int) -> None:
        self.ack(v)

    def _w_status(self, v: int) -> None:
        self.set_status(v)


_WRITERS: dict[int, Callable[[VirtioMmio, int], None]] = {
    spec.DEVICE_FEATURES_SEL: VirtioMmio._w_device_sel,
    spec.DRIVER_FEATURES: VirtioMmio._w_driver_features,
    spec.DRIVER_FEATURES_SEL: VirtioMmio._w_driver_sel,
    spec.GUEST_PAGE_SIZE: VirtioMmio._w_page_size,
    spec.QUEUE_SEL: VirtioMmio._w_queue_sel,
    spec.QUEUE_NUM: VirtioMmio._w_queue_num,
    spec.QUEUE_ALIGN: VirtioMmio._w_queue_align,
    spec.QUEUE_PFN: VirtioMmio._w_queue_pfn,
    spec.QUEUE_READY: VirtioMmio._w_queue_ready,
    spec.QUEUE_NOTIFY: VirtioMmio._w_notify,
    spec.INTERRUPT_ACK: VirtioMmio._w_interrupt_ack,
    spec.STATUS: VirtioMmio._w_status,
    **{off: (lambda self, v, off=off: self._w_queue_addr(off, v))
       for off in (spec.QUEUE_DESC_LOW, spec.QUEUE_DESC_HIGH, spec.QUEUE_DRIVER_LOW,
                   spec.QUEUE_DRIVER_HIGH, spec.QUEUE_DEVICE_LOW, spec.QUEUE_DEVICE_HIGH)},
}
_LEGACY_ONLY = frozenset((spec.GUEST_PAGE_SIZE, spec.QUEUE_ALIGN, spec.QUEUE_PFN))
_MODERN_ONLY = frozenset((spec.QUEUE_READY, spec.QUEUE_DESC_LOW, spec.QUEUE_DESC_HIGH,
                          spec.QUEUE_DRIVER_LOW, spec.QUEUE_DRIVER_HIGH,
                          spec.QUEUE_DEVICE_LOW, spec.QUEUE_DEVICE_HIGH))
# Registers of the virtio 1.2 spec that QEMU 7.2's transport (and this one) lacks.
_UNIMPLEMENTED = {spec.SHM_SEL: "SHMSel", spec.SHM_BASE_LOW: "SHMBaseLow",
                  spec.SHM_BASE_HIGH: "SHMBaseHigh", spec.QUEUE_RESET: "QueueReset"}
