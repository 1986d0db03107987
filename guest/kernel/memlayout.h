// Physical address map of the emu machine. Mirrors the board table
// (emu/machine/board.py, listed by emu/machine/memlayout.py);
// tests/test_platform.py checks that every constant here matches.
#pragma once

#define RAM_BASE        0x80000000UL
#define BOOTINFO_ADDR   0x80001000UL
#define KERNEL_BASE     0x80200000UL

#define TIMER_BASE      0x02000000UL
#define TIMER_SIZE      0x10000UL
#define TIMER_MTIME     0xBFF8UL
#define PLIC_BASE       0x0C000000UL
#define PLIC_SIZE       0x400000UL
#define UART_BASE       0x10000000UL
#define UART_SIZE       0x1000UL
#define NIC_BASE        0x10001000UL
#define NIC_SIZE        0x1000UL

#define IRQ_NIC         1
#define IRQ_UART        10
#define PLIC_NUM_SOURCES 96
#define PLIC_PRIORITY   0x0UL
#define PLIC_PENDING    0x1000UL
#define PLIC_SENABLE    0x2080UL
#define PLIC_STHRESHOLD 0x201000UL
#define PLIC_SCLAIM     0x201004UL

#define TIMEBASE_HZ     1000000000UL

#define BOOTINFO_MAGIC  0x31544F4F42554D45UL
#define BOOTINFO_CMDLINE_OFF 64
#define BOOTINFO_CMDLINE_MAX 1024
