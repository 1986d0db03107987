"""virtio devices on QEMU's virtio-mmio transport (docs/virtio.md).

spec.py holds the numbers of the virtio 1.2 spec the package uses; queue.py
is the split virtqueue; core.py the transport-independent half of a
transport (status, negotiation, live queues, interrupts, time, the
hostile-guest boundary) and mmio.py the virtio-mmio register file of both
versions on top of it, with one device behind it or none; device.py what a
device object gives the transport; blk.py and image.py the block device
and its backing store.

Layer: devices (imports emu.core).
"""
