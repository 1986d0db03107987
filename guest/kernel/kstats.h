// Counters the host reads from guest memory after a run (emu/guestview/kstats.py,
// through the symbol `kstats`). The layout is a flat array of u64s; the host
// mirrors it field by field, so append fields at the end and bump
// KSTATS_VERSION when changing it.
#pragma once
#include "types.h"
#include "syscall.h"

#define KSTATS_MAGIC 0x313053544154534bUL  // "KSTATS01"
#define KSTATS_VERSION 6

// Page faults by how they were resolved (or why they were not).
#define FAULT_ZERO     0  // demand-zero page for heap/stack/bss
#define FAULT_IMAGE    1  // page filled from the program's embedded image
#define FAULT_PROT     2  // inside a region that forbids the access: killed
#define FAULT_BAD      3  // no region at all (guard page, kernel, null): killed
#define FAULT_SPURIOUS 4  // already mapped and allowed (a stale TLB entry)
#define FAULT_SWAPIN   5  // major: read back from swap
#define FAULT_SWAPCACHE 6 // minor: found in the swap cache (no I/O)
#define NFAULTKIND     8  // slots; later kinds (swap-in) take the free ones

// Frame uses (struct frame.use) - pages by use are kept as gauges.
#define FRAME_FREE     0
#define FRAME_RESERVED 1  // the firmware's region, ranges the device tree reserves
#define FRAME_KERNEL   2  // other kernel pages (tests)
#define FRAME_PTABLE   3  // page-table pages
#define FRAME_KSTACK   4  // kernel stacks
#define FRAME_KMALLOC  5  // kmalloc slabs
#define FRAME_USER     6  // private user pages (the only kind swap will ever evict)
#define FRAME_IMAGE    7  // embedded program images, mapped read-only into processes
#define FRAME_NETBUF   8  // network buffers: RX pages (pfrag.c), the NIC's rings
#define FRAME_KIMAGE   9  // the kernel image (text, data, bss) but the program images
#define FRAME_FTABLE  10  // the frame table: one struct frame per RAM page
#define FRAME_SWAPMAP 11  // the swap map, the swap cache's index and the swap-out table
#define NFRAMEUSE     12
_Static_assert(NFRAMEUSE == MI_NFRAMEUSE, "meminfo mirrors the frame uses");

// Named memory reserves (the reserve tree of docs/reserves.md): what the
// pages taken from below the min watermark were for.
#define RESERVE_SWAP_IO 0  // reclaim and swap-out (PF_MEMALLOC by default)
#define RESERVE_AOE_TX  1  // the AoE initiator sending requests
#define RESERVE_AOE_RX  2  // RX buffers refilled while a network swap device is up
#define NRESERVE        3
_Static_assert(NRESERVE == MI_NRESERVE, "meminfo mirrors the reserve tree");

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
  // version 2: swap, reclaim, AoE, the NIC driver (docs/swap.md)
  uint64 swap_outs, swap_ins, swapcache_hits, swapcache_waits, swap_clean_drops;
  uint64 swap_bytes_out, swap_bytes_in, swap_write_errors, swap_read_errors;
  uint64 swap_slots_total, swap_slots_used, swap_slot_quarantined, swap_writeback;
  uint64 lru_pages, reclaim_scanned, reclaim_rotated, kswapd_wakeups, direct_reclaims;
  uint64 bio_reads, bio_writes;
  uint64 aoe_requests, aoe_retransmits, aoe_timeouts, aoe_replies, aoe_stale, aoe_unknown;
  uint64 aoe_errors, aoe_dead, aoe_srtt_ns, aoe_rttvar_ns, aoe_rto_ns, aoe_cwnd, aoe_ssthresh;
  uint64 aoe_inflight_max, aoe_maxwin, aoe_bufcnt, aoe_scnt, aoe_capacity_sectors;
  uint64 net_irqs, net_rx_frames, net_rx_bytes, net_tx_frames, net_tx_bytes;
  uint64 net_drop_unknown_type, net_drop_runt, net_drop_toolong, net_refill_fails;
  uint64 net_rx_overruns, net_tx_full, net_nic_errors;
  uint64 aoe_stale_age_max_ms;   // oldest late reply seen (age from its tag's send tick)
  uint64 swap_readahead;         // pages read ahead of a fault (in swap_ins too)
  uint64 swap_faultaround;       // read-ahead pages mapped with the faulting one
  uint64 zero_faultaround;       // heap zero pages mapped ahead while swapping
  // version 3: memory reserves (docs/reserves.md), deadlock-detector gauges
  uint64 reserve_limit[NRESERVE];  // pages, by RESERVE_*
  uint64 reserve_usage[NRESERVE];  // gauge: reserve pages charged now
  uint64 reserve_peak[NRESERVE];   // highest usage seen
  uint64 reserve_allocs;         // pages handed out only thanks to the reserve
  uint64 pfmemalloc_drop;        // frames in reserve-backed RX buffers not for swap: dropped
  uint64 tasks_blocked;          // gauge: processes sleeping on memory or I/O
  uint64 aoe_inflight;           // gauge: AoE requests outstanding now
  // version 4: reserve limits enforced, throttling, the free-memory low point
  uint64 reserve_denied;         // reserve pages refused: the reserve was at its limit
  uint64 reclaim_throttled;      // direct reclaimers put to sleep below min/2
  uint64 free_low;               // fewest free pages seen (after boot)
  // version 6: swapoff (docs/swapoff.md), summed over the calls
  uint64 swapoff_runs, swapoff_fails;  // calls, of which failed
  uint64 swapoff_pages;          // pages brought back into their PTEs
  uint64 swapoff_freed;          // pages read whose PTE had gone (exit): freed
  uint64 swapoff_ptes;           // page-table entries read while searching
  uint64 swapoff_mms;            // address-space searches begun
  uint64 swapoff_hint_hits, swapoff_hint_misses;  // swapoff=hint
  uint64 swapoff_reads, swapoff_sectors;  // read requests and sectors during the calls
  uint64 swapoff_ns;             // virtual time in swapoff
  uint64 swapoff_frames, swapoff_replies, swapoff_retransmits;  // AoE, during the calls
  uint64 swapoff_active;         // gauge: 1 while a swapoff call runs (the host times it)
  // swap prefetch and read-ahead (docs/prefetch.md)
  uint64 prefetch_runs, prefetch_yields;  // idle sessions begun, of which ended by other work
  uint64 prefetch_pages, prefetch_reads;  // pages kprefetchd read, in how many requests
  uint64 prefetch_hits;          // prefetched pages later mapped (a fault found them cached)
  uint64 prefetch_dropped;       // prefetched pages reclaimed or freed unused
  uint64 ra_hits, ra_dropped;    // read-ahead pages later mapped / dropped unused
};
#define KSTATS_V2_FIELDS 54
#define KSTATS_V3_FIELDS (3 * NRESERVE + 4)
#define KSTATS_V4_FIELDS 3
#define KSTATS_V6_FIELDS 23

_Static_assert(sizeof(struct kstats) ==
                   8 * (11 + NSYSCALL + NFAULTKIND + NFRAMEUSE + 3 + KSTATS_V2_FIELDS +
                        KSTATS_V3_FIELDS + KSTATS_V4_FIELDS + KSTATS_V6_FIELDS),
               "struct kstats must stay a flat u64 array (emu/guestview/kstats.py reads it)");

extern struct kstats kstats;
