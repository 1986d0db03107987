// Every kernel function other files may call, grouped by file (xv6 style).
// Structures live with their subsystem: mm.h (frames, regions), proc.h
// (processes), trap.h (trapframe), kstats.h (host-visible counters),
// syscall.h (the user interface).
#pragma once
#include "types.h"
#include "syscall.h"

struct trapframe;
struct proc;
struct frame;
struct vma;
struct context;
struct wmark;

// fdt.c
uint32 fdt32(const void *p);
uint64 fdt64(const void *p);
int fdt_check(const void *p);
int fdt_init(const void *p);
uint64 fdt_totalsize(void);
int fdt_memreserve(int i, uint64 *base, uint64 *size);
int fdt_next_node(int node, int *depth);
const char *fdt_name(int node);
const void *fdt_getprop(int node, const char *name, int *len);
uint32 fdt_getu32(int node, const char *name, uint32 dflt);
int fdt_is_compatible(int node, const char *compat);
int fdt_find_compatible(int from, const char *compat);
int fdt_find_phandle(uint32 phandle);
int fdt_subnode(int parent, const char *name);
int fdt_parent(int node);
int fdt_reg(int node, int i, uint64 *base, uint64 *size);

// platform.c: what the device tree says about the machine.
struct platdev {
  uint64 base, size;  // reg (base 0: no such device)
  uint32 irq;         // interrupts: its PLIC source
};
#define NRESV 8
struct platform {
  uint64 hartid;               // a0 at entry
  uint64 fdt;                  // the tree (a1 at entry), kept in place
  uint64 ram_base, ram_size;   // the /memory range holding the kernel
  uint64 timebase_hz;          // the time CSR's frequency
  char bootargs[1024];         // /chosen bootargs, "" if none
  struct platdev uart;         // ns16550a
  struct platdev enic;         // emu,enic (base 0: not in the tree)
  struct {
    uint64 base, size;
    uint32 ndev;               // riscv,ndev: sources 1..ndev
    int ctx;                   // our hart's S-mode context
  } plic;
  int nresv;                   // memory kalloc must not hand out
  struct {
    uint64 base, size;
  } resv[NRESV];
};
extern struct platform platform;
void platforminit(uint64 hartid, uint64 dtb);
void platformprint(void);

// time.c
uint64 now_ns(void);
uint64 tb2ns(uint64 tb);
uint64 ns2tb(uint64 ns);

// plic.c
void plicinit(void);
void plic_enable(uint32 irq);
void devintr(void);

// sbi.c
void sbi_putchar(int c);
void sbi_set_timer(uint64 stime);
void sbi_shutdown(uint32 reason) __attribute__((noreturn));
long sbi_probe(long ext);
long sbi_spec_version(void);

// uart.c
void uartinit(uint64 base);
void uartputc(int c);

// printf.c
void consputc(int c);
void printf(const char *fmt, ...);
void panic(const char *msg) __attribute__((noreturn));

// string.c
void *memset(void *dst, int c, uint64 n);
void *memcpy(void *dst, const void *src, uint64 n);
int memcmp(const void *a, const void *b, uint64 n);
int strncmp(const char *a, const char *b, uint64 n);
int strcmp(const char *a, const char *b);
uint64 strlen(const char *s);
char *strncpy(char *dst, const char *src, uint64 n);

// param.c
struct params {
  int test;             // run the in-kernel tests
  const char *tests;    // test=A,B: only these (0 or "": all)
  int panic;
  uint64 tick_us;       // 0: default
  uint64 min_free_kb;   // 0: Linux's rule
  int noswap;           // swap=off
  int swapoff_mode;     // swapoff=scan|batch|hint|walk: SWAPOFF_* (syscall.h), default walk
  uint64 swap_slots;    // 0: the whole device
  int64 swap_msl_ms;    // -1: default (100)
  int swap_readahead;   // pages per swap-in read (0: default 16, -1: off)
  int readahead_vma;    // readahead=vma: by virtual address (Linux 4.14), not by slot
  int prefetch;         // prefetch=on: kprefetchd (docs/prefetch.md)
  int64 prefetch_delay_ms;  // idle time before it starts (-1: default 1000)
  uint64 aoe_deadtime_ms, aoe_minrto_us;  // 0: defaults
  int reserve_off;      // reserve=off: no memory reserves (docs/reserves.md)
  int initargc;
  char *initargv[MAXARG + 1];
};
extern struct params params;
int paraminit(const char *cmdline);

// kalloc.c
extern struct frame *frames;
extern struct wmark wmark;
void kinit(uint64 start, uint64 min_kb);
void *palloc(int use);
void *palloc_flags(int use, int gfp);
int memalloc_entitled(int gfp);
int memalloc_save(int res);
void memalloc_restore(int old);
void pfree(void *pa);
uint64 nfree(void);
struct frame *pa2frame(uint64 pa);
uint64 frame2pa(struct frame *f);
void flist_push(uint32 *head, struct frame *f);
void flist_del(uint32 *head, struct frame *f);
uint64 min_free_kbytes(uint64 lowmem_kb);
void kmeminfo(struct meminfo *mi);
int throttle_direct_reclaim(void);

// kmalloc.c
void kmallocinit(void);
void *kmalloc(uint64 n);
void *kmalloc_flags(uint64 n, int gfp);
int kmalloc_pfmemalloc(const void *p);
void kfree(void *p);

// pfrag.c
struct fragcache {
  uint8 *page;   // current page (0: none yet)
  uint32 off;    // bytes of it handed out
};
void *frag_alloc(struct fragcache *c, uint32 size, int gfp);
void frag_free(void *p);
int frag_pfmemalloc(const void *p);
void frag_drain(struct fragcache *c);

// vm.c
extern pagetable_t kernel_pagetable;
void kvminit(uint64 ramend);
void vmswitch(pagetable_t pt);
pte_t *walk(pagetable_t pt, uint64 va, int alloc);
pte_t *walkleaf(pagetable_t pt, uint64 va, int *level);
pagetable_t uvmcreate(void);
void uvmfree(struct proc *p);
void uvmunmap(struct proc *p, uint64 va, uint64 npages);
int vmfault(struct proc *p, uint64 va, uint64 cause);
int mapuser(struct proc *p, uint64 va, uint64 pa, int perm);
uint64 uvmaddr(struct proc *p, uint64 va, int need);
int copyout(struct proc *p, uint64 dstva, const void *src, uint64 len);
int copyin(struct proc *p, void *dst, uint64 srcva, uint64 len);
int copyinstr(struct proc *p, char *dst, uint64 srcva, uint64 max);
int64 uvmsbrk(struct proc *p, int64 n);

// spawn.c
struct prog {
  const char *name;
  const uint8 *start, *end;  // the program's ELF image
};
extern const struct prog progs[];
extern const uint64 nprogs;
extern const uint8 progimg_start[], progimg_end[];  // progs.S: all images, page aligned
const struct prog *findprog(const char *name);
int loadprog(struct proc *p, const struct prog *pg, char **argv);

// proc.c
struct proc *myproc(void);
int spawn(const char *name, char **argv);
int kthread(const char *name, void (*fn)(void));
void exit(int status) __attribute__((noreturn));
int wait(int *status);
void yield(void);
void sched(void);
void sleep(void *chan);
void sleep_blocked(void *chan);
void wakeup(void *chan);
void sleepuntil(uint64 deadline);
uint64 nextdeadline(void);
int anyrunnable(void);
void procinfo(struct meminfo *mi);
void poweroff(int status) __attribute__((noreturn));
void scheduler(void) __attribute__((noreturn));

// swtch.S
void swtch(struct context *old, struct context *new);

// trap.c
extern volatile uint64 ticks;
extern uint64 tick_ns;
extern uint64 timer_fired;
void trapinit(void);
void timer_program(int busy);

// syscall.c
void syscallinit(void);
void syscall(struct trapframe *tf);

// netdev.c
struct iov;
struct nbuf;
struct bio;
struct aoedev;
extern uint8 netmac[6];
extern uint32 netmtu;
extern int netup;
int netinit(void);
int net_tx(const struct iov *v, int n);
void nic_intr(void);

// net.c
int nb_copy(const struct nbuf *nb, uint32 off, void *dst, uint32 len);
void net_rx(struct nbuf *nb);

// aoe.c
extern struct aoedev aoedev;
int aoe_start(void (*ready)(int ok));
void aoe_timer(void);
uint64 aoe_deadline(void);
void aoe_rx(struct nbuf *nb);
void aoe_submit(struct bio *b);
int aoe_can_queue(uint32 nsect);
void bio_wait(struct bio *b);

// bio.c
struct bio *bio_alloc(void);
void bio_free(struct bio *b);
int bio_avail(void);
void submit_bio(struct bio *b);

// swap.c
extern int swapstate;    // SWAP_*
#define SWAP_OFF 0
#define SWAP_PROBING 1
#define SWAP_UP 2
#define SWAP_IDLE 3      // configured; the target is probed at the first memory pressure
#define SWAP_DRAINING 4  // swapoff is bringing the pages back: reads only, no page-out
#define SWAP_DISABLED 5  // turned off by swapoff; swapon turns it on again
void swapinit(void);
void swap_sched(void);
int swap_active(void);
void swap_lowmem(void);
void swap_mapped(struct frame *f);
void swap_pagefree(struct frame *f);
void swap_free_pte(uint64 pte);
int swapin(struct proc *p, uint64 va, int perm, uint64 end);
// prefetch.c
extern uint64 last_activity_ns;          // a user process or kswapd last scheduled
int prefetch_init(uint32 slots);
void prefetch_sched(void);
void prefetch_swapout(uint32 slot);
// swapoff.c
int swapoff_mode(const char *name);      // SWAPOFF_* for a name, -1 if none
int swapoff(struct swapoffinfo *info);   // 0, or -1 (info->why says why)
int swapon(void);
extern uint64 swapoffs;                  // swapoff calls that have returned
int reclaim(int want);
void *palloc_reclaim(int use);

// ktest.c
void ktest(void);
