// Every kernel function other files may call, grouped by file (xv6 style).
#pragma once
#include "types.h"

struct trapframe;

// bootinfo.c
struct bootinfo {
  uint64 magic, version, ram_base, ram_size, timebase_hz, hartid, seed, cmdline_len;
};
extern struct bootinfo *bootinfo;
extern const char *cmdline;
void bootinfo_init(uint64 addr);

// sbi.c
void sbi_putchar(int c);
void sbi_set_timer(uint64 when);
void sbi_shutdown(uint32 reason) __attribute__((noreturn));
long sbi_probe(long ext);
long sbi_spec_version(void);

// uart.c
void uartinit(void);
void uartputc(int c);

// printf.c
void printf(const char *fmt, ...);
void panic(const char *msg) __attribute__((noreturn));

// string.c
void *memset(void *dst, int c, uint64 n);
void *memcpy(void *dst, const void *src, uint64 n);
int strncmp(const char *a, const char *b, uint64 n);
uint64 strlen(const char *s);

// kalloc.c
void kinit(uint64 start, uint64 end);
void *kalloc(void);
void kfree(void *pa);
uint64 kfreepages(void);

// vm.c
extern pagetable_t kernel_pagetable;
void kvminit(void);
void kvminithart(void);
pte_t *walk(pagetable_t pt, uint64 va, int alloc);
int mappages(pagetable_t pt, uint64 va, uint64 size, uint64 pa, int perm);

// trap.c
extern volatile uint64 ticks;
void trapinit(void);
void timer_arm(void);
void usertrapret_first(uint64 entry, uint64 kstack_top) __attribute__((noreturn));
