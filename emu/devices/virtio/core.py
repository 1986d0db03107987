"""The transport-independent half of a virtio transport (QEMU keeps it in
hw/virtio/virtio.c, apart from the bus glue in virtio-mmio.c): device
status and its reset, feature negotiation, the live queues, the interrupt
status and its line, notifications in virtual time, and the hostile-guest
boundary. mmio.py puts the virtio-mmio register file on top.

The boundary: device code runs only inside `run` (a queue service from a
Clock event, or host input such as a frame arriving); a VirtqueueError it
raises - or lets through from `pop` - sets DEVICE_NEEDS_RESET, sends a
configuration change interrupt if DRIVER_OK is set, and halts the device
until the driver writes status 0. DmaError is caught the same way, counted
in dma_errors: all DMA is validated first, so it is never expected.

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


class VirtioCore:
    """Status, features, live queues, interrupts and time of one transport
    serving `device` (None: an empty slot). Implements device.Transport."""

    def __init__(self, mem: PhysMem, irq: IrqLine, clock: Clock,
                 device: VirtioDevice | None = None, *, legacy: bool = True,
                 name: str = "virtio", notify_delay_ns: int = NOTIFY_DELAY_NS,
                 require_version_1: bool = False) -> None:
        """`legacy`: the pre-1.0 interface (no FEATURES_OK step, no
        VERSION_1). `require_version_1`: refuse FEATURES_OK when a modern
        driver does not accept VIRTIO_F_VERSION_1 (the spec lets a device
        do so; QEMU does not, and xv6 relies on that, hence off by default)."""
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
        self.nqueues = len(device.queue_max) if device is not None else 0
        self._events: list[Event | None] = [None] * self.nqueues
        self._power_on()
        if device is not None:
            device.attach(self)

    # -- state ------------------------------------------------------------------
    def _power_on(self) -> None:
        """Everything to its reset value (the device is reset separately)."""
        self.live: list[SplitQueue | None] = [None] * self.nqueues
        self.status = 0
        self.isr = 0
        self.generation = 0
        self.features = 0                      # negotiated
        self.driver_features = 0               # modern: what the driver wrote, until FEATURES_OK
        self.broken = False
        self._update_irq()

    def offered(self) -> int:
        """The feature bits offered (0 for an empty slot)."""
        if self.device is None:
            return 0
        extra = spec.bit(spec.F_NOTIFY_ON_EMPTY) if self.legacy else spec.bit(spec.F_VERSION_1)
        return self.device.features(not self.legacy) | extra

    def reset(self) -> None:
        """Device reset, as a status write of 0 does."""
        for i, ev in enumerate(self._events):
            if ev is not None:
                Clock.cancel(ev)
                self._events[i] = None
        self._stats["resets"] += 1
        if self.device is not None:
            self.device.reset()
        self._power_on()

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

    def ack(self, bits: int) -> None:
        """The driver acknowledged InterruptStatus `bits`."""
        self.isr &= ~bits
        self._update_irq()

    def _has(self, feature: int) -> bool:
        return bool(self.features & spec.bit(feature))

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
            live = self.live[i]
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
        live = self.live[queue] if 0 <= queue < self.nqueues else None
        if live is None or self.broken:
            return None
        left = self._batch.get(queue, live.num)
        if left <= 0:
            if live.pending():
                self.kick(queue)        # more next time
            return None
        chain = live.pop()
        if chain is not None:
            self._batch[queue] = left - 1
        return chain

    def unpop(self, queue: int, chain: Chain) -> None:
        """Put back `chain`, the last one popped from `queue`, unused."""
        live = self.live[queue]
        if live is not None and not self.broken:
            live.unpop(chain)
            self._batch[queue] = self._batch.get(queue, live.num) + 1

    def started(self, queue: int) -> bool:
        """DRIVER_OK, `queue` live, and not halted by a broken rule."""
        return (not self.broken and bool(self.status & spec.S_DRIVER_OK)
                and 0 <= queue < self.nqueues and self.live[queue] is not None)

    def push(self, queue: int, chain: Chain, written: int) -> None:
        """Give `chain` back to the driver with `written` bytes written."""
        live = self.live[queue]
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

    # -- queues ------------------------------------------------------------------------
    def make_live(self, i: int, num: int, desc: int, avail: int, used: int) -> None:
        """The driver made queue `i` ready with this layout; a bad one is a
        broken rule. A re-layout of a live queue keeps its indices (QEMU)."""
        if self.broken:
            return
        old = self.live[i]
        try:
            live = SplitQueue(self.mem, num, desc, avail, used)
        except VirtqueueError as e:
            self.live[i] = None
            self.fail(f"queue {i}: {e}")
            return
        self._ring_features(live)
        if old is not None:
            live.adopt(old)
        self.live[i] = live

    def release(self, i: int) -> None:
        """The driver stopped using queue `i`."""
        self.live[i] = None

    def _ring_features(self, live: SplitQueue) -> None:
        live.indirect = self._has(spec.F_RING_INDIRECT_DESC)
        live.event_idx = self._has(spec.F_RING_EVENT_IDX)
        live.notify_on_empty = self._has(spec.F_NOTIFY_ON_EMPTY)

    def notify(self, queue: int) -> bool:
        """The driver notified `queue`; False if there is no such queue."""
        if not 0 <= queue < self.nqueues:
            return False
        self._stats["notifies"] += 1
        if not self.broken:
            self.kick(queue)
        return True

    def kick(self, queue: int) -> None:
        """Serve `queue` `notify_delay_ns` from now (once, however often asked)."""
        if self._events[queue] is None:
            self._events[queue] = self.clock.after(self.notify_delay_ns, self._service, queue)

    def _service(self, queue: int) -> None:
        self._events[queue] = None
        if self.broken or self.live[queue] is None or not self.status & spec.S_DRIVER_OK:
            return
        assert self.device is not None
        self.run(self.device.queue_notify, queue)

    # -- status and features ----------------------------------------------------------
    def set_legacy_features(self, value: int) -> None:
        """A legacy driver's features word 0: negotiated at once, bits not
        offered dropped (and logged), as QEMU's virtio_set_features."""
        offered = self.offered() & 0xFFFF_FFFF
        if value & ~offered:
            self.log("guest_errors", f"{self.name}: driver accepted features "
                     f"0x{value & ~offered:x} that were not offered: ignored")
        self.features = value & offered

    def set_status(self, value: int) -> None:
        """A Status write: 0 resets; FEATURES_OK (modern) latches or refuses
        the driver's features; DRIVER_OK starts the device."""
        value &= 0xFF
        if value == 0:
            self.reset()
            return
        old = self.status
        new = (value & ~spec.S_NEEDS_RESET) | (old & spec.S_NEEDS_RESET)   # device-owned bit
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
        wanted = self.driver_features
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
        for i, live in enumerate(self.live):
            if live is not None:
                self._ring_features(live)
                self.kick(i)
