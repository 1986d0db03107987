// What the device tree does not say: where the kernel is linked, and the
// PLIC's register layout. Everything else - RAM, the devices' addresses and
// interrupt sources, the timebase - comes from the tree (platform.c).
// tests/test_platform.py checks every constant here against
// emu/machine/memlayout.py.
#pragma once

#define KERNEL_BASE         0x80200000UL   // kernel.ld; the firmware's region is below

// PLIC registers (RISC-V PLIC spec 1.0.0, "Memory Map"): a priority word
// per source, the pending bits, then for context c an enable bitmap at
// PLIC_ENABLE + PLIC_ENABLE_STRIDE * c (source s is bit s % 32 of word
// s / 32) and a threshold and claim/complete pair at PLIC_CONTEXT +
// PLIC_CONTEXT_STRIDE * c.
#define PLIC_PRIORITY       0x0UL
#define PLIC_PENDING        0x1000UL
#define PLIC_ENABLE         0x2000UL
#define PLIC_ENABLE_STRIDE  0x80UL
#define PLIC_CONTEXT        0x200000UL
#define PLIC_CONTEXT_STRIDE 0x1000UL
#define PLIC_THRESHOLD      0x0UL
#define PLIC_CLAIM          0x4UL
