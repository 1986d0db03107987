// Counters the host reads from guest memory after a run (emu/kstats.py,
// through the symbol `kstats`). The layout is a flat array of u64s; the host
// mirrors it field by field, so append fields at the end and bump
// KSTATS_VERSION when changing it.
#pragma once
#include "types.h"
#include "syscall.h"

#define KSTATS_MAGIC 0x313053544154534bUL  // "KSTATS01"
#define KSTATS_VERSION 1

// Page faults by how they were resolved (or why they were not).
#define FAULT_ZERO     0  // demand-zero page for heap/stack/bss
#define FAULT_IMAGE    1  // page filled from the program's embedded image
#define FAULT_PROT     2  // inside a region that forbids the access: killed
#define FAULT_BAD      3  // no region at all (guard page, kernel, null): killed
#define FAULT_SPURIOUS 4  // already mapped and allowed (a stale TLB entry)
#define NFAULTKIND     8  // slots; later kinds (swap-in) take the free ones

// Frame uses (struct frame.use) - pages by use are kept as gauges.
#define FRAME_FREE     0
#define FRAME_RESERVED 1  // firmware region, kernel image, frame table
#define FRAME_KERNEL   2  // other kernel pages (tests)
#define FRAME_PTABLE   3  // page-table pages
#define FRAME_KSTACK   4  // kernel stacks
#define FRAME_KMALLOC  5  // kmalloc slabs
#define FRAME_USER     6  // private user pages (the only kind swap will ever evict)
#define FRAME_IMAGE    7  // embedded program images, mapped read-only into processes
#define NFRAMEUSE      8

struct kstats {
  uint64 magic;                  // KSTATS_MAGIC once the kernel has booted
  uint64 version;                // KSTATS_VERSION
  uint64 ctxsw;                  // switches from the scheduler into a process
  uint64 preempt;                // of which forced by the timer (round-robin)
  uint64 procs_created;          // processes and kernel threads
  uint64 ticks;                  // timer interrupts taken
  uint64 syscalls[NSYSCALL];     // by number; [0] counts unknown numbers
  uint64 faults[NFAULTKIND];     // by FAULT_* kind
  uint64 copyfills;              // of those, pages copyin/copyout brought in (no trap)
  uint64 segfaults;              // processes killed for a bad access
  uint64 oom_kills;              // processes killed for want of a page
  uint64 alloc_fails;            // palloc refusals at the min watermark
  uint64 pages_total;            // RAM pages
  uint64 pages[NFRAMEUSE];       // gauge: pages by FRAME_* use
  uint64 wmark_min, wmark_low, wmark_high;  // pages
};

_Static_assert(sizeof(struct kstats) == 8 * (11 + NSYSCALL + NFAULTKIND + NFRAMEUSE + 3),
               "struct kstats must stay a flat u64 array (emu/kstats.py reads it)");

extern struct kstats kstats;
