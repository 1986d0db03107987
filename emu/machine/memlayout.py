"""What guest/kernel/memlayout.h mirrors: only what the device tree does not
say - where the kernel is linked (KERNEL_BASE) and the PLIC's register
layout (the PLIC spec's: priorities, pending bits, per-context enables and
threshold/claim) - each under its C name. RAM, the devices' addresses and
interrupt sources and the timebase reach the kernel in the tree.
tests/test_platform.py checks that the header and this list agree.

Layer: machine.
"""

from __future__ import annotations

from emu.devices import plic
from emu.machine import board

# The PLIC spec's strides: context c's enables at ENABLE + 0x80 * c, its
# threshold and claim/complete at CONTEXT + 0x1000 * c. plic.py serves hart
# 0's S-mode context, context 1 on QEMU's virt, so its offsets give the bases.
PLIC_ENABLE_STRIDE = 0x80
PLIC_CONTEXT_STRIDE = 0x1000
PLIC_S_CONTEXT = 1


def c_constants() -> dict[str, int]:
    """Every constant memlayout.h defines, by its C name."""
    return {
        "KERNEL_BASE": board.KERNEL_BASE,
        "PLIC_PRIORITY": plic.PLIC_PRIORITY,
        "PLIC_PENDING": plic.PLIC_PENDING,
        "PLIC_ENABLE": plic.PLIC_SENABLE - PLIC_S_CONTEXT * PLIC_ENABLE_STRIDE,
        "PLIC_ENABLE_STRIDE": PLIC_ENABLE_STRIDE,
        "PLIC_CONTEXT": plic.PLIC_STHRESHOLD - PLIC_S_CONTEXT * PLIC_CONTEXT_STRIDE,
        "PLIC_CONTEXT_STRIDE": PLIC_CONTEXT_STRIDE,
        "PLIC_THRESHOLD": 0,
        "PLIC_CLAIM": plic.PLIC_SCLAIM - plic.PLIC_STHRESHOLD,
    }
