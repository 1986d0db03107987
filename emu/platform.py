"""THE address map and interrupt numbers of the emu machine.

Modelled on QEMU's `virt` board so that what students know from xv6 carries
over. guest/kernel/memlayout.h mirrors every constant here and
tests/test_platform.py checks that the two agree.
"""

from __future__ import annotations

# Physical memory: one RAM region; the first 2 MiB play the firmware's part
# (OpenSBI's region on real boards): the boot-info block lives there and the
# kernel is linked at KERNEL_BASE just above it.
RAM_BASE = 0x8000_0000
DEFAULT_RAM_SIZE = 16 << 20
MIN_RAM_SIZE = 4 << 20
MAX_RAM_SIZE = 2 << 30
BOOTINFO_ADDR = RAM_BASE + 0x1000
KERNEL_BASE = RAM_BASE + 0x20_0000

# Devices (MMIO). Sizes are page multiples as unicorn's mmio_map requires.
TIMER_BASE = 0x0200_0000   # CLINT-like: mtime at +0xBFF8 (read-only to S)
TIMER_SIZE = 0x1_0000
TIMER_MTIME = 0xBFF8
PLIC_BASE = 0x0C00_0000
PLIC_SIZE = 0x40_0000
UART_BASE = 0x1000_0000
UART_SIZE = 0x1000
NIC_BASE = 0x1000_1000
NIC_SIZE = 0x1000

# PLIC interrupt sources (QEMU virt numbering: virtio slots from 1, UART 10).
IRQ_NIC = 1
IRQ_UART = 10
PLIC_NUM_SOURCES = 32
# PLIC context for hart 0 supervisor mode (context 1 on QEMU virt).
PLIC_PRIORITY = 0x0
PLIC_PENDING = 0x1000
PLIC_SENABLE = 0x2080
PLIC_STHRESHOLD = 0x20_1000
PLIC_SCLAIM = 0x20_1004

# Virtual time: mtime counts nanoseconds of virtual time.
TIMEBASE_HZ = 1_000_000_000

# Boot-info block at BOOTINFO_ADDR (little-endian u64 fields, then cmdline).
BOOTINFO_MAGIC = 0x3154_4F4F_4255_4D45  # "EMUBOOT1" read as little-endian u64
BOOTINFO_CMDLINE_OFF = 64
BOOTINFO_CMDLINE_MAX = 1024

# Trap causes (RISC-V privileged spec, scause values).
CAUSE_MISALIGNED_FETCH = 0
CAUSE_FETCH_ACCESS = 1
CAUSE_ILLEGAL_INSN = 2
CAUSE_BREAKPOINT = 3
CAUSE_LOAD_ACCESS = 5
CAUSE_STORE_ACCESS = 7
CAUSE_ECALL_U = 8
CAUSE_ECALL_S = 9
CAUSE_FETCH_PAGE_FAULT = 12
CAUSE_LOAD_PAGE_FAULT = 13
CAUSE_STORE_PAGE_FAULT = 15
INTERRUPT_BIT = 1 << 63
IRQ_S_SOFT = 1
IRQ_S_TIMER = 5
IRQ_S_EXT = 9

CAUSE_NAMES = {
    CAUSE_MISALIGNED_FETCH: "misaligned fetch",
    CAUSE_FETCH_ACCESS: "fetch access fault",
    CAUSE_ILLEGAL_INSN: "illegal instruction",
    CAUSE_BREAKPOINT: "breakpoint",
    CAUSE_LOAD_ACCESS: "load access fault",
    CAUSE_STORE_ACCESS: "store access fault",
    CAUSE_ECALL_U: "ecall from U",
    CAUSE_ECALL_S: "ecall from S",
    CAUSE_FETCH_PAGE_FAULT: "fetch page fault",
    CAUSE_LOAD_PAGE_FAULT: "load page fault",
    CAUSE_STORE_PAGE_FAULT: "store page fault",
}
INTERRUPT_NAMES = {IRQ_S_SOFT: "supervisor software", IRQ_S_TIMER: "supervisor timer",
                   IRQ_S_EXT: "supervisor external"}
