"""The numbers of the virtio spec (OASIS virtio v1.2) this package uses:
device status bits, reserved feature bits, split-virtqueue layout, the
virtio-mmio register offsets of both transport versions, and QEMU's
virtio-mmio identity and its `virt` board placement.

Names follow the spec (and Linux's/QEMU's headers) so that a reader can
grep them there. Only numbers live here: behaviour is in mmio.py/queue.py.

Layer: devices (imports nothing from emu).
"""

from __future__ import annotations

# --- QEMU's virtio-mmio identity and the virt board's eight slots -------------
MAGIC = 0x7472_6976             # "virt" as a little-endian u32
VENDOR_QEMU = 0x554D_4551       # "QEMU"
VERSION_LEGACY = 1              # QEMU's default (virtio-mmio.force-legacy=true)
VERSION_MODERN = 2              # -global virtio-mmio.force-legacy=false
MMIO_BASE = 0x1000_1000         # slot i at MMIO_BASE + i * MMIO_STRIDE
MMIO_STRIDE = 0x1000
MMIO_SLOTS = 8
MMIO_IRQ_BASE = 1               # slot i raises PLIC source MMIO_IRQ_BASE + i
REGION_SIZE = 0x200             # QEMU's register window; config space is 0x100..0x1ff

# --- device IDs (spec 5) ----------------------------------------------------
DEVICE_ID_NONE = 0              # an empty slot: no driver claims it
DEVICE_ID_NET = 1
DEVICE_ID_BLOCK = 2

# --- virtio-mmio registers (spec 4.2.2; legacy 4.2.4) ------------------------
MAGIC_VALUE = 0x000
VERSION = 0x004
DEVICE_ID = 0x008
VENDOR_ID = 0x00C
DEVICE_FEATURES = 0x010
DEVICE_FEATURES_SEL = 0x014
DRIVER_FEATURES = 0x020
DRIVER_FEATURES_SEL = 0x024
GUEST_PAGE_SIZE = 0x028         # legacy only
QUEUE_SEL = 0x030
QUEUE_NUM_MAX = 0x034
QUEUE_NUM = 0x038
QUEUE_ALIGN = 0x03C             # legacy only
QUEUE_PFN = 0x040               # legacy only
QUEUE_READY = 0x044             # modern only
QUEUE_NOTIFY = 0x050
INTERRUPT_STATUS = 0x060
INTERRUPT_ACK = 0x064
STATUS = 0x070
QUEUE_DESC_LOW = 0x080          # modern only, as are the five below
QUEUE_DESC_HIGH = 0x084
QUEUE_DRIVER_LOW = 0x090        # the available ring
QUEUE_DRIVER_HIGH = 0x094
QUEUE_DEVICE_LOW = 0x0A0        # the used ring
QUEUE_DEVICE_HIGH = 0x0A4
SHM_SEL = 0x0AC
SHM_LEN_LOW = 0x0B0
SHM_LEN_HIGH = 0x0B4
SHM_BASE_LOW = 0x0B8
SHM_BASE_HIGH = 0x0BC
QUEUE_RESET = 0x0C0             # virtio 1.2 (VIRTIO_F_RING_RESET); not in QEMU 7.2's transport
CONFIG_GENERATION = 0x0FC       # modern only
CONFIG = 0x100                  # device-specific configuration space

# --- interrupt status bits ----------------------------------------------------
INT_VRING = 0x1                 # used buffer notification
INT_CONFIG = 0x2                # configuration change notification

# --- device status bits (spec 2.1) ----------------------------------------------
S_ACKNOWLEDGE = 0x01
S_DRIVER = 0x02
S_DRIVER_OK = 0x04
S_FEATURES_OK = 0x08
S_NEEDS_RESET = 0x40
S_FAILED = 0x80

# --- reserved feature bits (spec 6) ---------------------------------------------
F_NOTIFY_ON_EMPTY = 24          # legacy
F_ANY_LAYOUT = 27               # legacy
F_RING_INDIRECT_DESC = 28
F_RING_EVENT_IDX = 29
F_VERSION_1 = 32
F_ACCESS_PLATFORM = 33
F_RING_PACKED = 34
F_RING_RESET = 40

# --- split virtqueue (spec 2.7) -------------------------------------------------
DESC_SIZE = 16                  # le64 addr, le32 len, le16 flags, le16 next
DESC_F_NEXT = 0x1
DESC_F_WRITE = 0x2
DESC_F_INDIRECT = 0x4
AVAIL_F_NO_INTERRUPT = 0x1
USED_F_NO_NOTIFY = 0x1
USED_ELEM_SIZE = 8              # le32 id, le32 len
DESC_ALIGN = 16                 # alignment of each part (spec 2.7, table)
AVAIL_ALIGN = 2
USED_ALIGN = 4
QUEUE_SIZE_LIMIT = 32768        # the largest split queue the spec allows
LEGACY_QUEUE_ALIGN = 4096       # QEMU's default QueueAlign


def bit(n: int) -> int:
    """The feature mask of feature bit `n`."""
    return 1 << n


def avail_size(num: int) -> int:
    """Bytes of an available ring of `num` entries, used_event included."""
    return 6 + 2 * num


def used_size(num: int) -> int:
    """Bytes of a used ring of `num` entries, avail_event included."""
    return 6 + USED_ELEM_SIZE * num


def need_event(event_idx: int, new_idx: int, old: int) -> bool:
    """vring_need_event (spec 2.7.10): True if moving an index from `old` to
    `new_idx` passes `event_idx` (all u16 arithmetic)."""
    return (new_idx - event_idx - 1) & 0xFFFF < (new_idx - old) & 0xFFFF
