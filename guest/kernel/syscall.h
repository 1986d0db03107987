// The user/kernel interface: system call numbers, the meminfo record and the
// user address-space layout. User programs (and usys.S) include this file
// too, so it holds only constants and, for C, plain structs.
#pragma once

// System call numbers (a7); arguments in a0..a5, result in a0, -1 = error.
// emu/guestview/kstats.py names them; tests/test_kernel.py checks the two agree.
#define SYS_write   1   // write(fd 1|2, buf, n) -> n
#define SYS_exit    2   // exit(status) -> no return
#define SYS_wait    3   // wait(int *status or 0) -> pid of a reaped child
#define SYS_getpid  4   // getpid() -> pid
#define SYS_sbrk    5   // sbrk(bytes) -> old break
#define SYS_yield   6   // yield() -> 0
#define SYS_sleep   7   // sleep(ms of virtual time) -> 0
#define SYS_spawn   8   // spawn(name, argv) -> pid of the new child
#define SYS_uptime  9   // uptime() -> virtual ns since boot
#define SYS_meminfo 10  // meminfo(struct meminfo *) -> 0
#define SYS_swapoff 11  // swapoff(struct swapoffinfo * or 0) -> 0, -1 (not on, busy, no memory)
#define SYS_swapon  12  // swapon() -> 0 (swap back on after swapoff), -1 if it is not off
#define NSYSCALL    16  // slots in kstats.syscalls; slot 0 counts unknown numbers

#define NPROC 32        // process table size
#define MAXARG 16       // spawn: at most this many argv strings
#define ARGMAX 1024     // spawn: bytes of argv strings, NULs included
#define PROCNAME 16     // process names (the program's name), NUL included

// User address space: the second GiB of Sv39, exactly one root page-table
// entry (index 1). Text and data sit at USER_BASE as the program's ELF says,
// the heap follows the data, the stack ends at USER_TOP with a never-mapped
// guard page below it.
#define USER_BASE   0x40000000UL
#define USER_TOP    0x80000000UL
#define USTACK_SIZE (256 * 1024UL)
#define USTACK_BASE (USER_TOP - USTACK_SIZE)
#define UGUARD_BASE (USTACK_BASE - 4096)

// Process states as meminfo reports them.
#define PS_UNUSED   0
#define PS_EMBRYO   1
#define PS_RUNNABLE 2
#define PS_RUNNING  3
#define PS_SLEEPING 4
#define PS_ZOMBIE   5

#ifndef __ASSEMBLER__
struct procinfo {
  int pid;
  int state;            // PS_*
  unsigned long rss;    // resident user pages
  unsigned long minflt, majflt;  // its page faults without I/O / reading swap
  char name[PROCNAME];
};

// What meminfo() fills in; page counts are 4 KiB pages.
#define MI_NRESERVE 3   // the reserve tree's entries, by RESERVE_* (kstats.h)
#define MI_NFRAMEUSE 12 // pages by use, by FRAME_* (kstats.h)
struct meminfo {
  unsigned long total;  // pages of RAM
  unsigned long free;   // pages on the free list
  unsigned long min, low, high;  // watermarks (pages of free memory)
  struct {
    unsigned long limit, usage, peak;  // pages
  } reserve[MI_NRESERVE];
  unsigned long reserve_allocs;     // pages handed out only thanks to the reserve
  unsigned long reserve_denied;     // refused: the reserve was at its limit
  unsigned long pfmemalloc_drop;    // non-swap frames in reserve-backed buffers, dropped
  unsigned long reclaim_throttled;  // direct reclaimers put to sleep below min/2
  int reserve_off;                  // booted with reserve=off
  int swap;                         // 1: a swap device is configured (0: swap=off, no network)
  unsigned long use[MI_NFRAMEUSE];  // pages by FRAME_* use (kstats.h)
  unsigned long nproc;  // entries used in procs[]
  struct procinfo procs[NPROC];
  int swapon;           // 1: pages may go out to swap now (configured, not swapped off)
  unsigned long swap_used;  // swap slots in use (held by a PTE or a cached page)
  unsigned long swapoffs;  // swapoff calls that have returned (either way)
};

// How swapoff finds the PTEs that hold the slots it brings back (boot
// parameter swapoff=; kernel/swapoff.c, docs/swapoff.md).
#define SWAPOFF_SCAN  0  // Linux before 5.1: slot order, search every address space per slot
#define SWAPOFF_BATCH 1  // a run of slots per read, one search for the whole run
#define SWAPOFF_HINT  2  // the swap map remembers the address space: search there first
#define SWAPOFF_WALK  3  // Linux 5.1: walk every address space once, read what it finds
#define NSWAPOFF      4

// What one swapoff call did (swapoff(&info)); the AoE figures are the
// device's during the call (other processes' faults meanwhile included).
struct swapoffinfo {
  int mode;                  // SWAPOFF_*
  int result;                // 0, or -1 (and the reason below)
  char why[32];              // "" or why it failed
  unsigned long slots;       // slots in use when it started
  unsigned long pages;       // pages brought back into their PTEs
  unsigned long freed;       // pages read whose PTE had gone meanwhile (exit): freed
  unsigned long ptes;        // page-table entries read while searching, all levels
  unsigned long mms;         // address-space searches begun
  unsigned long hint_hits, hint_misses;  // hint: the remembered space held the slot / did not
  unsigned long reads;       // read requests (bios) and their sectors
  unsigned long sectors;
  unsigned long frames, replies, retransmits;  // AoE frames sent, replies, retransmissions
  unsigned long ns;          // virtual time the call took
};
#endif
