// Swap prefetch (boot parameter prefetch=on; docs/prefetch.md): Con
// Kolivas' kprefetchd, never merged into Linux. When the machine has been
// idle for prefetch_delay_ms (no user process or kswapd has run, default
// 1000 ms, Kolivas' 1 s) and free memory is above 4 x the high watermark,
// it reads back the most recently swapped-out pages into the swap cache -
// keeping their copy on swap, so that reclaim can drop them again without a
// write - until something else wants the hart, free memory falls below
// 3 x high, or nothing is left. A fault on a prefetched page then finds it
// in the swap cache (a minor fault): "the morning after" a batch job the
// interactive programs are not sluggish.
//
// What went out most recently is kept in a ring of slots, one entry per
// slot of the swap area (so a batch job's own swap-outs, freed when it
// exits, cannot push the interactive program's entries out), filled at
// swap-out and read from the newest end; an entry whose slot is free again
// or whose page is back already is skipped. (Kolivas kept a list of live
// entries instead, ~40 bytes each; the ring costs 4 bytes a slot.)
#include "types.h"
#include "riscv.h"
#include "proc.h"
#include "mm.h"
#include "net.h"
#include "defs.h"
#include "swap.h"

#define RINGPAGE (PGSIZE / 4)   // entries a ring page
static uint32 *ringp[MAXSLOTS / RINGPAGE];  // slots, most recent at head - 1
static uint32 ringsize, head, count;
static int started;
uint64 last_activity_ns;        // last time a user process or kswapd was scheduled

static uint32 *ring(uint32 i) { return &ringp[i / RINGPAGE][i % RINGPAGE]; }

// At boot, with prefetch=on: the ring for a swap area of at most `slots`
// slots (pages of FRAME_SWAPMAP). Returns 0, or -1 if memory ran out.
int prefetch_init(uint32 slots) {
  ringsize = slots < MAXSLOTS ? slots : MAXSLOTS;
  return swap_table((void **)ringp, RINGPAGE, ringsize);
}

// swap.c: slot s went out (written, or dropped clean with its copy valid).
void prefetch_swapout(uint32 s) {
  if (!ringsize)
    return;
  *ring(head) = s;
  head = head + 1 == ringsize ? 0 : head + 1;
  if (count < ringsize)
    count++;
}

// The newest entry, removed; -1 if none.
static int64 pop(void) {
  if (!count)
    return -1;
  head = head ? head - 1 : ringsize - 1;
  count--;
  return *ring(head);
}

// Another process wants the hart (or has run since `since`): prefetch
// yields. (A sleeper the timer tick woke early to check its deadline does
// not count.)
static int busy(uint64 since) {
  if (last_activity_ns > since)
    return 1;
  uint64 now = now_ns();
  for (struct proc *p = proc; p < proc + NPROC; p++)
    if (p->state == RUNNABLE && p != myproc() && (!p->wake_at || now >= p->wake_at))
      return 1;
  return 0;
}

static void kprefetchd(void) {
  uint64 delay = (uint64)(params.prefetch_delay_ms >= 0 ? params.prefetch_delay_ms : 1000) *
                 1000000;
  for (;;) {
    uint64 now = now_ns(), quiet = last_activity_ns + delay;
    if (now < quiet) {
      sleepuntil(quiet);
      continue;
    }
    if (!count || !swap_active() || nfree() < 4 * wmark.high) {
      sleepuntil(now + delay);
      continue;
    }
    kstats.prefetch_runs++;
    for (;;) {
      if (busy(now)) {
        kstats.prefetch_yields++;
        break;
      }
      if (nfree() < 3 * wmark.high || !swap_active())
        break;
      int64 s = pop();
      if (s < 0)
        break;
      if ((uint32)s >= swap_nslots() || !swap_count(s) || swap_cachepage(s))
        continue;              // freed, reused and back, or in memory already
      // Swap-out wrote in slot order: read the run of slots that ends at s.
      uint32 lo = s;
      while (lo > 0 && s - lo + 1 < BIO_MAXPAGES && swap_count(lo - 1) && !swap_cachepage(lo - 1))
        lo--;
      if (swap_readslots(lo, s - lo + 1, RS_PREFETCH) < 0)
        break;
    }
    sleepuntil(now_ns() + delay);
  }
}

// The scheduler calls this between processes (swap_sched): start kprefetchd
// once swap is up, if prefetch=on (a failed start is retried).
void prefetch_sched(void) {
  if (ringsize && !started && swap_active() && kthread("kprefetchd", kprefetchd) > 0)
    started = 1;
}
