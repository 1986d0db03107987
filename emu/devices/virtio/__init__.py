"""virtio devices on QEMU's virtio-mmio transport (docs/virtio.md).

spec.py holds the numbers of the virtio 1.2 spec the package uses; queue.py
is the split virtqueue; mmio.py the transport (a register file of both
versions, one device behind it or none); device.py what a device object
gives the transport; blk.py and image.py the block device and its backing
store.

Layer: devices (imports emu.core).
"""
