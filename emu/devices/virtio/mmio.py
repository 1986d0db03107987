"""The virtio-mmio transport, as QEMU's hw/virtio/virtio-mmio.c presents it:
one 0x200-byte register window per slot, version 1 (legacy, QEMU's default)
or version 2 (modern, `-global virtio-mmio.force-legacy=false`), with one
device object behind it (device.py) or none (an empty slot answers magic,
version and vendor, device ID 0, and ignores writes, as QEMU's does so that
drivers can probe all eight slots).

The transport owns the register file of both versions, feature negotiation
(FEATURES_OK refused for features not offered, and - when asked - for a
modern driver that does not accept VIRTIO_F_VERSION_1), the queues' layout
(legacy GuestPageSize/QueuePFN/QueueAlign, modern QueueDesc/Driver/Device
and QueueReady), InterruptStatus/ACK driving one level-triggered IrqLine,
ConfigGeneration, and DEVICE_NEEDS_RESET: any VirtqueueError (or, never
expected, DmaError) raised while the device works sets NEEDS_RESET, sends a
configuration change interrupt if DRIVER_OK is set, and halts the device
until the driver writes status 0. Nothing the guest writes makes a method
raise. A QueueNotify write only schedules a Clock event; the device looks
at the ring `notify_delay_ns` later. docs/virtio.md is the data sheet.

Layer: devices (imports emu.core).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emu.core.clock import Clock, Event
from emu.core.memory import DmaError, PhysMem
from emu.devices.bus import IrqLine, no_log
from emu.devices.virtio import spec
from emu.devices.virtio.device import VirtioDevice
from emu.devices.virtio.queue import Chain, SplitQueue, VirtqueueError

NOTIFY_DELAY_NS = 10_000     # doorbell -> the device reads the ring (an NVMe-class turnaround)
QUEUE_NUM_MAX = 1024         # what QEMU's QueueNumMax reports (VIRTQUEUE_MAX_SIZE)

STAT_NAMES: tuple[str, ...] = (
    "notifies",          # QueueNotify writes naming an existing queue
    "chains",            # chains returned to the driver (used entries written)
    "interrupts",        # rising edges of the interrupt line
    "resets",            # device resets (status 0, or the host's reset())
    "features_refused",  # FEATURES_OK writes refused
    "needs_reset",       # entries into DEVICE_NEEDS_RESET (guest broke a rule)
    "bad_mmio",          # ignored accesses: wrong size, unknown or read-only offsets
    "dma_errors",        # DMA refused by PhysMem despite validation (a bug; never expected)
)


class _Queue:
    """The registers of one queue, and the queue they describe once live."""

    __slots__ = ("num", "ready", "desc", "driver", "device", "pfn", "align", "live", "event")

    def __init__(self) -> None:
        self.num = 0
        self.ready = False                 # modern QueueReady
        self.desc = self.driver = self.device = 0
        self.pfn = 0                       # legacy QueuePFN
        self.align = spec.LEGACY_QUEUE_ALIGN
        self.live: SplitQueue | None = None
        self.event: Event | None = None    # a scheduled service of this queue


def _set_half(value: int, half: int, word: int) -> int:
    """`value` with its 32-bit half `half` (0 low, 1 high) replaced by `word`."""
    shift = 32 * half
    return (value & ~(0xFFFF_FFFF << shift)) | (word << shift)


class VirtioMmio:
    """One virtio-mmio slot: the Device protocol (name, log, read, write)
    plus close(), reset() and stats() for the machine.

    Why this class is long: it is the register file of two transport
    versions that share every register but a handful; splitting it by
    version would duplicate the shared ones, as QEMU keeps them in one
    function pair too.
    """

    def __init__(self, mem: PhysMem, irq: IrqLine, clock: Clock,
                 device: VirtioDevice | None = None, *, legacy: bool = True,
                 name: str = "virtio-mmio", notify_delay_ns: int = NOTIFY_DELAY_NS,
                 require_version_1: bool = False) -> None:
        """A slot serving `device` (None: an empty slot) through the legacy
        (version 1) or modern (version 2) register layout.

        `require_version_1`: refuse FEATURES_OK when a modern driver does
        not accept VIRTIO_F_VERSION_1 (the spec lets a device do so; QEMU
        does not, and xv6 relies on that, hence off by default).
        """
        self.name = name
        self.log = no_log
        self.mem = mem
        self.irq = irq
        self.clock = clock
        self.device = device
        self.legacy = legacy
        self.notify_delay_ns = notify_delay_ns
        self.require_version_1 = require_version_1
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        self._batch: dict[int, int] = {}       # queue -> pops left in this call
        self._pushed: set[int] = set()         # queues pushed to in this call
        self.page_shift = 0                    # legacy GuestPageSize (survives status 0, as QEMU's)
        self._power_on()
        if device is not None:
            device.attach(self)

    # -- state ------------------------------------------------------------------
    def _power_on(self) -> None:
        """Registers to their reset values (the device is reset separately)."""
        nq = len(self.device.queue_max) if self.device else 0
        self.queues = [_Queue() for _ in range(nq)]
        self.status = 0
        self.isr = 0
        self.generation = 0
        self.features = 0                      # negotiated
        self.driver_features = [0, 0]          # modern, until FEATURES_OK
        self.device_sel = self.driver_sel = 0
        self.queue_sel = 0
        self.broken = False
        self._update_irq()

    def offered(self) -> int:
        """The feature bits this slot offers (0 for an empty slot)."""
        if self.device is None:
            return 0
        extra = spec.bit(spec.F_NOTIFY_ON_EMPTY) if self.legacy else spec.bit(spec.F_VERSION_1)
        return self.device.features(not self.legacy) | extra

    def reset(self) -> None:
        """Device reset, as a status write of 0 does (GuestPageSize kept)."""
        for q in self.queues:
            if q.event is not None:
                Clock.cancel(q.event)
        self._stats["resets"] += 1
        if self.device is not None:
            self.device.reset()
        self._power_on()

    def host_reset(self) -> None:
        """Machine reset: as reset(), and GuestPageSize back to 0."""
        self.reset()
        self.page_shift = 0

    def close(self) -> None:
        """The run is over (also after a panic or Ctrl-C): the device
        flushes and releases its backing (idempotent)."""
        if self.device is not None:
            self.device.close()

    def stats(self) -> dict[str, int]:
        """A copy of the counters, keyed by STAT_NAMES."""
        return dict(self._stats)

    def _update_irq(self) -> None:
        level = self.isr != 0
        if level and not self.irq.level:
            self._stats["interrupts"] += 1
        self.irq.set(level)

    def _bad(self, what: str) -> None:
        self._stats["bad_mmio"] += 1
        self.log("guest_errors", f"{self.name}: {what}")

    # -- the hostile-guest boundary ------------------------------------------------
    def fail(self, why: str) -> None:
        """The guest broke a rule: DEVICE_NEEDS_RESET, a configuration change
        interrupt if DRIVER_OK, and the device halts until status 0."""
        if self.broken:
            return
        self.broken = True
        self._stats["needs_reset"] += 1
        self.log("guest_errors", f"{self.name}: {why}: device needs reset")
        self.status |= spec.S_NEEDS_RESET
        self.config_changed()

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call device code `fn(*args)` so that a broken rule becomes
        NEEDS_RESET, then send the used-buffer interrupts it earned."""
        if self.broken:
            return
        self._batch = {}
        try:
            fn(*args)
        except VirtqueueError as e:
            self.fail(str(e))
        except DmaError as e:           # validation comes first: never expected
            self._stats["dma_errors"] += 1
            self.fail(str(e))
        pushed, self._pushed = self._pushed, set()
        for i in sorted(pushed):
            live = self.queues[i].live
            if live is None or self.broken:
                continue
            try:
                live.publish_avail_event()
                wanted = live.should_interrupt()
            except VirtqueueError as e:
                self.fail(str(e))
                return
            if wanted:
                self.isr |= spec.INT_VRING
                self._update_irq()

    # -- what the device calls (device.Transport) --------------------------------
    def pop(self, queue: int) -> Chain | None:
        """The next chain of `queue`, or None. At most the queue's size per
        transport call (the rest waits for another service event), so a
        guest racing the index cannot keep the device busy."""
        live = self.queues[queue].live if 0 <= queue < len(self.queues) else None
        if live is None or self.broken:
            return None
        left = self._batch.get(queue, live.num)
        if left <= 0:
            if live.pending():
                self._kick(queue)       # more next time
            return None
        chain = live.pop()
        if chain is not None:
            self._batch[queue] = left - 1
        return chain

    def push(self, queue: int, chain: Chain, written: int) -> None:
        """Give `chain` back to the driver with `written` bytes written."""
        live = self.queues[queue].live
        if live is None or self.broken:
            return
        live.push(chain, written)
        self._stats["chains"] += 1
        self._pushed.add(queue)

    def config_changed(self) -> None:
        """A configuration change notification (only once DRIVER_OK is set).
        Both InterruptStatus bits are set, as QEMU's virtio_notify_config
        does, so that a driver also looks at its used rings."""
        if self.status & spec.S_DRIVER_OK:
            self.generation = (self.generation + 1) & 0xFFFF_FFFF
            self.isr |= spec.INT_CONFIG | spec.INT_VRING
            self._update_irq()

    # -- notifications in virtual time ---------------------------------------------
    def _kick(self, queue: int) -> None:
        q = self.queues[queue]
        if q.event is None:
            q.event = self.clock.after(self.notify_delay_ns, self._service, queue)

    def _service(self, queue: int) -> None:
        q = self.queues[queue]
        q.event = None
        if self.broken or q.live is None or not self.status & spec.S_DRIVER_OK:
            return
        assert self.device is not None
        self.run(self.device.queue_notify, queue)

    # -- MMIO ------------------------------------------------------------------------
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
        value = self._reg(offset)
        if value is None:
            self._bad(f"read of +0x{offset:x}, not a readable register")
            return 0
        return value & mask

    def _version(self) -> int:
        return spec.VERSION_LEGACY if self.legacy else spec.VERSION_MODERN

    def _sel(self) -> _Queue | None:
        return self.queues[self.queue_sel] if self.queue_sel < len(self.queues) else None

    def _reg(self, off: int) -> int | None:
        q = self._sel()
        assert self.device is not None
        if off == spec.MAGIC_VALUE:
            return spec.MAGIC
        if off == spec.VERSION:
            return self._version()
        if off == spec.DEVICE_ID:
            return self.device.device_id
        if off == spec.VENDOR_ID:
            return spec.VENDOR_QEMU
        if off == spec.DEVICE_FEATURES:
            if self.legacy:
                return self.offered() & 0xFFFF_FFFF if self.device_sel == 0 else 0
            return (self.offered() >> (32 * self.device_sel)) & 0xFFFF_FFFF \
                if self.device_sel < 2 else 0
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
        handler = _WRITERS.get(offset)
        version_only = _LEGACY_ONLY if not self.legacy else _MODERN_ONLY
        if handler is None or offset in version_only:
            self._bad(f"write of 0x{value:x} to +0x{offset:x} ignored")
            return
        handler(self, value)

    # -- register writes ----------------------------------------------------------------
    def _w_device_sel(self, v: int) -> None:
        self.device_sel = v

    def _w_driver_sel(self, v: int) -> None:
        self.driver_sel = v

    def _w_driver_features(self, v: int) -> None:
        if self.legacy:
            if self.driver_sel != 0:
                self._bad(f"legacy driver features with selector {self.driver_sel} ignored")
                return
            offered = self.offered() & 0xFFFF_FFFF
            if v & ~offered:
                self.log("guest_errors", f"{self.name}: driver accepted features 0x{v & ~offered:x}"
                         " that were not offered: ignored")
            self.features = v & offered
        elif self.driver_sel < 2:
            self.driver_features[self.driver_sel] = v
        else:
            self._bad(f"driver features with selector {self.driver_sel} ignored")

    def _w_page_size(self, v: int) -> None:
        shift = (v & -v).bit_length() - 1      # QEMU: ctz32; 0 for 0
        self.page_shift = shift if 0 <= shift <= 31 else 0

    def _w_queue_sel(self, v: int) -> None:
        self.queue_sel = v

    def _w_queue_num(self, v: int) -> None:
        q = self._sel()
        if q is None:
            self._bad(f"QueueNum of queue {self.queue_sel}, which does not exist")
            return
        q.num = v
        if self.legacy and q.pfn:
            self._activate_legacy(self.queue_sel)

    def _w_queue_align(self, v: int) -> None:
        q = self._sel()
        if q is None:
            self._bad(f"QueueAlign of queue {self.queue_sel}, which does not exist")
            return
        q.align = v
        if q.pfn:
            self._activate_legacy(self.queue_sel)

    def _w_queue_pfn(self, v: int) -> None:
        q = self._sel()
        if q is None:
            self._bad(f"QueuePFN of queue {self.queue_sel}, which does not exist")
            return
        q.pfn = v
        if v == 0:
            q.live = None                  # the queue is released
        else:
            self._activate_legacy(self.queue_sel)

    def _activate_legacy(self, i: int) -> None:
        """Legacy layout: table at PFN << page shift, then the available
        ring, then the used ring at the next QueueAlign boundary."""
        q = self.queues[i]
        align = q.align
        if align == 0 or align & (align - 1):
            self.fail(f"queue {i}: QueueAlign {align} is not a power of two")
            return
        desc = q.pfn << self.page_shift
        used = -(-(desc + spec.DESC_SIZE * q.num + 2 * (3 + q.num)) // align) * align
        self._make_live(i, desc, desc + spec.DESC_SIZE * q.num, used)

    def _w_queue_ready(self, v: int) -> None:
        q = self._sel()
        if q is None:
            self._bad(f"QueueReady of queue {self.queue_sel}, which does not exist")
            return
        if not v & 1:
            q.ready, q.live = False, None
            return
        q.ready = True
        self._make_live(self.queue_sel, q.desc, q.driver, q.device)

    def _make_live(self, i: int, desc: int, avail: int, used: int) -> None:
        if self.broken:
            return
        q = self.queues[i]
        old = q.live
        try:
            live = SplitQueue(self.mem, q.num, desc, avail, used,
                              indirect=self._has(spec.F_RING_INDIRECT_DESC),
                              event_idx=self._has(spec.F_RING_EVENT_IDX),
                              notify_on_empty=self._has(spec.F_NOTIFY_ON_EMPTY))
        except VirtqueueError as e:
            q.live = None
            self.fail(f"queue {i}: {e}")
            return
        if old is not None:                # legacy re-layout keeps the indices, as QEMU
            live.last_avail, live.used_idx = old.last_avail, old.used_idx
        q.live = live

    def _has(self, feature: int) -> bool:
        return bool(self.features & spec.bit(feature))

    def _w_queue_addr(self, offset: int, v: int) -> None:
        q = self._sel()
        if q is None:
            self._bad(f"queue address of queue {self.queue_sel}, which does not exist")
            return
        half = (offset >> 2) & 1
        if offset < spec.QUEUE_DRIVER_LOW:
            q.desc = _set_half(q.desc, half, v)
        elif offset < spec.QUEUE_DEVICE_LOW:
            q.driver = _set_half(q.driver, half, v)
        else:
            q.device = _set_half(q.device, half, v)

    def _w_notify(self, v: int) -> None:
        if v >= len(self.queues):
            self._bad(f"notify of queue {v}, which does not exist")
            return
        self._stats["notifies"] += 1
        if not self.broken:
            self._kick(v)

    def _w_interrupt_ack(self, v: int) -> None:
        self.isr &= ~v
        self._update_irq()

    def _w_status(self, v: int) -> None:
        v &= 0xFF
        if v == 0:
            self.reset()
            return
        old = self.status
        new = (v & ~spec.S_NEEDS_RESET) | (old & spec.S_NEEDS_RESET)
        if not self.legacy and new & spec.S_FEATURES_OK and not old & spec.S_FEATURES_OK:
            why = self._refuse_features()
            if why is not None:
                self._stats["features_refused"] += 1
                self.log("guest_errors", f"{self.name}: FEATURES_OK refused: {why}")
                new &= ~spec.S_FEATURES_OK
        self.status = new
        if new & spec.S_DRIVER_OK and not old & spec.S_DRIVER_OK:
            self._driver_ok()

    def _refuse_features(self) -> str | None:
        """Latch the modern driver's features, or say why they are refused."""
        assert self.device is not None
        wanted = self.driver_features[0] | (self.driver_features[1] << 32)
        extra = wanted & ~self.offered()
        if extra:
            return f"features 0x{extra:x} were not offered"
        if self.require_version_1 and not wanted & spec.bit(spec.F_VERSION_1):
            return "VIRTIO_F_VERSION_1 not accepted"
        why = self.device.validate_features(wanted)
        if why is None:
            self.features = wanted
        return why

    def _driver_ok(self) -> None:
        """DRIVER_OK: the device starts; queues notified before it are served now."""
        assert self.device is not None
        if not self.legacy and not self.status & spec.S_FEATURES_OK:
            self.log("guest_errors", f"{self.name}: DRIVER_OK without FEATURES_OK")
        self.device.activate(self.features)
        for i, q in enumerate(self.queues):
            if q.live is not None:
                q.live.indirect = self._has(spec.F_RING_INDIRECT_DESC)
                q.live.event_idx = self._has(spec.F_RING_EVENT_IDX)
                q.live.notify_on_empty = self._has(spec.F_NOTIFY_ON_EMPTY)
                self._kick(i)


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
