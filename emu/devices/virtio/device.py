"""What a virtio device object is, seen from the transport, and what the
transport offers it: the split that lets virtio-blk (and later virtio-net)
be a small object on one shared virtio-mmio transport.

A device owns its device ID, its queues' maximum sizes, its feature bits
and configuration space, and what a queue notification means; the transport
(mmio.py) owns registers, feature negotiation, queue layout, interrupts,
time and the hostile-guest boundary. Device code runs only inside a
transport call (`queue_notify` from a Clock event, or `Transport.run` for
host-side input such as a frame arriving), so a VirtqueueError it raises -
or lets through from `pop` - always lands at that boundary.

Layer: devices (imports emu.core).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from emu.core.clock import Clock
from emu.core.memory import PhysMem
from emu.devices.virtio.queue import Chain


class Transport(Protocol):
    """The transport as a device sees it (VirtioMmio implements it)."""

    mem: PhysMem
    clock: Clock
    log: Callable[[str, str], None]

    def pop(self, queue: int) -> Chain | None:
        """The next available chain of `queue`, or None (none, not ready,
        or this batch's budget spent). Raises VirtqueueError."""

    def unpop(self, queue: int, chain: Chain) -> None:
        """Put back `chain`, the last one popped from `queue`, unused: it is
        the next one `pop` returns (QEMU's virtqueue_unpop)."""

    def started(self, queue: int) -> bool:
        """Whether the driver set DRIVER_OK, `queue` is live and the device
        is not halted by a broken rule: input for it can be taken now."""

    def push(self, queue: int, chain: Chain, written: int) -> None:
        """Give `chain` back with `written` bytes written; the interrupt
        decision follows when the current transport call ends."""

    def config_changed(self) -> None:
        """Raise a configuration change notification."""

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call `fn(*args)` inside the hostile-guest boundary (for work that
        does not start from a queue notification)."""


class VirtioDevice:
    """Base of device objects: the defaults every hook has.

    Subclasses set `device_id`, `queue_max` (one maximum size per queue)
    and override the hooks they need.
    """

    name = "virtio"
    device_id = 0
    queue_max: tuple[int, ...] = ()

    def __init__(self) -> None:
        self.transport: Transport | None = None

    def attach(self, transport: Transport) -> None:
        """Called once by the transport that serves this device."""
        self.transport = transport

    def features(self, modern: bool) -> int:
        """Feature bits offered, device-specific and ring ones; the
        transport adds VIRTIO_F_VERSION_1 (modern) or NOTIFY_ON_EMPTY
        (legacy) itself."""
        return 0

    def config(self) -> bytes:
        """The configuration space as it reads now (its length is the
        device's config_len: reads past it return all ones)."""
        return b""

    def config_write(self, offset: int, data: bytes) -> None:
        """The driver wrote `data` at `offset` of the configuration space."""

    def validate_features(self, features: int) -> str | None:
        """Why the driver's accepted `features` are refused, or None."""
        return None

    def activate(self, features: int) -> None:
        """DRIVER_OK: the driver is ready; `features` were negotiated."""

    def reset(self) -> None:
        """Device reset (status 0): forget everything the driver set up."""

    def queue_notify(self, queue: int) -> None:
        """The driver notified `queue` (called from a Clock event, after
        the transport's notification delay). Raises VirtqueueError."""

    def stats(self) -> dict[str, int]:
        """The device's own counters (the transport keeps its own)."""
        return {}

    def close(self) -> None:
        """The machine is done: release host resources (idempotent)."""
