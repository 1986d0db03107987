// swapoff(2) and swapon(2): bring every page that is out on the swap device
// back into memory, fix every PTE that holds one of its slots, and leave the
// device unused until swapon. Four ways to find those PTEs, chosen by the
// boot parameter swapoff= (docs/swapoff.md tells their history):
//   scan  - Linux before 5.1 (try_to_unuse): slots in order; read each one,
//           then search the address spaces for the PTE that holds it,
//           starting with the one where the previous slot was found
//           (Linux's start_mm).
//   batch - Hugh Dickins' batching: read a run of used slots with one
//           request, then one search of every address space resolves the
//           whole run.
//   hint  - Hugh's hashing: the swap map remembers which address space a
//           slot went out from; search there first, everywhere if stale.
//   walk  - Linux 5.1 (unuse_mm): walk every address space once; a swap PTE
//           found is read with the read-ahead of its following slots, whose
//           pages wait in the swap cache until the walk reaches their PTEs.
//
// While it runs swap is DRAINING: pages come in (for swapoff and for other
// processes' faults) but none go out, and a page that comes in keeps no
// swap copy. It may sleep for memory (up to 100 ms: exits and write-backs
// free pages); if there is none it gives up as Linux does (ENOMEM) and swap
// is on again with what is still on it. Every sleep may change the process
// table, so nothing found before a sleep is trusted after it.
#include "types.h"
#include "riscv.h"
#include "proc.h"
#include "mm.h"
#include "net.h"
#include "defs.h"
#include "swap.h"

uint64 swapoffs;
static struct swapoffinfo so;  // the call in progress (one at a time: DRAINING)
static int wasidle;            // swapped off before the device was ever probed

static const char *const modenames[NSWAPOFF] = {
  [SWAPOFF_SCAN] = "scan", [SWAPOFF_BATCH] = "batch", [SWAPOFF_HINT] = "hint",
  [SWAPOFF_WALK] = "walk",
};

int swapoff_mode(const char *name) {
  for (int m = 0; m < NSWAPOFF; m++)
    if (strcmp(name, modenames[m]) == 0)
      return m;
  return -1;
}

// A process with a user address space (not a kernel thread, not exited).
static int isuser(struct proc *p) {
  return p->state != UNUSED && p->pagetable && p->pagetable != kernel_pagetable;
}

// From region *vi at address *va on, in p's regions in table order, find the
// next level-0 PTE that holds a swap slot: store where in *vi and *va and
// return it, or return 0 at the end. Every page-table entry read (at any
// level) counts in so.ptes: that is the search cost the strategies differ in.
static pte_t *nextswap(struct proc *p, int *vi, uint64 *va) {
  for (; *vi < NVMA; (*vi)++, *va = 0) {
    struct vma *v = &p->vma[*vi];
    if (v->kind == VMA_NONE)
      continue;
    uint64 a = *va < v->start ? v->start : *va;
    while (a < v->end) {
      pte_t l2 = p->pagetable[PX(2, a)];
      so.ptes++;
      if (!(l2 & PTE_V) || (l2 & (PTE_R | PTE_W | PTE_X))) {
        a = (a + (1UL << 30)) & ~((1UL << 30) - 1);
        continue;
      }
      pte_t l1 = ((pagetable_t)PTE2PA(l2))[PX(1, a)];
      so.ptes++;
      uint64 next = (a + MEGAPAGE) & ~(MEGAPAGE - 1);
      if (!(l1 & PTE_V) || (l1 & (PTE_R | PTE_W | PTE_X))) {
        a = next;
        continue;
      }
      pagetable_t t0 = (pagetable_t)PTE2PA(l1);
      uint64 stop = next < v->end ? next : v->end;
      for (; a < stop; a += PGSIZE) {
        pte_t *pte = &t0[PX(0, a)];
        so.ptes++;
        if (!(*pte & PTE_V) && (*pte & PTE_SWAP)) {
          *va = a;
          return pte;
        }
      }
    }
  }
  return 0;
}

// p's PTE for va in region vi holds a slot whose page is in the swap cache:
// map the page there.
static void resolve(struct proc *p, int vi, uint64 va, pte_t *pte) {
  if (swap_unuse(p, va, pte, p->vma[vi].perm) == 0)
    so.pages++;
}

// Search p's regions for the PTE holding slot s and resolve it. Returns 1
// if found.
static int unuse_mm(struct proc *p, uint32 s) {
  so.mms++;
  int vi = 0;
  uint64 va = 0;
  pte_t *pte;
  while ((pte = nextswap(p, &vi, &va))) {
    if (PTE2SLOT(*pte) == s) {
      resolve(p, vi, va, pte);
      return 1;
    }
    va += PGSIZE;
  }
  return 0;
}

// Wait until slot s's page is in the swap cache and not being read (reading
// it ourselves if nobody is). Returns 1 when it is there, 0 if the slot is
// no longer held by a PTE, -1 if the read failed or memory ran out.
static int cached(uint32 s, uint32 ra) {
  for (;;) {
    if (!swap_count(s))
      return 0;
    struct frame *f = swap_cachepage(s);
    if (f && !(f->flags & FR_LOCKED))
      return 1;
    if (f)
      sleep_blocked(f);      // another fault is reading it
    else if (swap_readslots(s, ra, 0) < 0)
      return -1;
  }
}

// scan and hint: slots in order, one read and one search each.
static int by_slot(int hint) {
  struct proc *start = 0;
  for (uint32 s = 0; s < swap_nslots(); s++) {
    int r = cached(s, 1);
    if (r < 0)
      return -1;
    if (r == 0)
      continue;
    struct proc *first = start;
    if (hint) {
      int h = swap_hint(s);
      first = h ? &proc[h - 1] : 0;
    }
    int found = first && isuser(first) && unuse_mm(first, s);
    if (hint && found)
      so.hint_hits++;
    else if (hint)
      so.hint_misses++;
    for (struct proc *p = proc; !found && p < proc + NPROC; p++) {
      if (p != first && isuser(p) && unuse_mm(p, s)) {
        found = 1;
        start = p;           // Linux's start_mm: the next slot is likely here too
      }
    }
  }
  return 0;
}

// batch: runs of up to BIO_MAXPAGES used slots, one read per run (per part
// of it not in the cache yet), one search of every address space per run.
static int by_batch(void) {
  uint32 n = swap_nslots();
  for (uint32 lo = 0; lo < n;) {
    if (!swap_count(lo)) {
      lo++;
      continue;
    }
    uint32 hi = lo;
    while (hi < n && hi - lo < BIO_MAXPAGES && swap_count(hi))
      hi++;
    for (uint32 t = lo; t < hi;) {
      if (swap_count(t) && !swap_cachepage(t)) {
        int r = swap_readslots(t, hi - t, 0);
        if (r < 0)
          return -1;
        t += r ? r : 1;
      } else {
        t++;
      }
    }
    uint32 want = 0;         // (the reads slept: count again)
    for (uint32 t = lo; t < hi; t++) {
      struct frame *f = swap_cachepage(t);
      want += swap_count(t) && f && !(f->flags & FR_LOCKED);
    }
    for (struct proc *p = proc; want && p < proc + NPROC; p++) {
      if (!isuser(p))
        continue;
      so.mms++;
      int vi = 0;
      uint64 va = 0;
      pte_t *pte;
      while (want && (pte = nextswap(p, &vi, &va))) {
        uint32 s = PTE2SLOT(*pte);
        struct frame *f = s >= lo && s < hi ? swap_cachepage(s) : 0;
        if (f && !(f->flags & FR_LOCKED)) {
          resolve(p, vi, va, pte);
          want--;
        }
        va += PGSIZE;
      }
    }
    lo = hi;
  }
  return 0;
}

// walk: every address space once, in address order; each swap PTE is read
// with read-ahead (swap_readahead=, default 16 slots) and mapped.
static int by_walk(void) {
  uint32 ra = params.swap_readahead < 0 ? 1 : params.swap_readahead ? params.swap_readahead : 16;
  for (struct proc *p = proc; p < proc + NPROC; p++) {
    if (!isuser(p))
      continue;
    int pid = p->pid, vi = 0;
    uint64 va = 0;
    so.mms++;
    while (p->pid == pid && isuser(p)) {    // (it may exit while we sleep)
      pte_t *pte = nextswap(p, &vi, &va);
      if (!pte)
        break;
      uint32 s = PTE2SLOT(*pte);
      struct frame *f = swap_cachepage(s);
      if (f && !(f->flags & FR_LOCKED)) {
        resolve(p, vi, va, pte);
        va += PGSIZE;
        continue;
      }
      if (f)
        sleep_blocked(f);
      else if (swap_readslots(s, ra, 0) < 0)
        return -1;
      // slept: find the PTE again from va
    }
  }
  return 0;
}

// Slots still held by a PTE.
static uint32 held(void) {
  uint32 n = 0;
  for (uint32 s = 0; s < swap_nslots(); s++)
    n += swap_count(s) != 0;
  return n;
}

static int fail(const char *why) {
  so.result = -1;
  strncpy(so.why, why, sizeof so.why - 1);
  return -1;
}

// Bring everything back (swapstate DRAINING, no write-back in flight).
// Returns 0, or -1 with so.why set.
static int drain(void) {
  uint32 left = held(), before;
  do {                       // another round only for what faults raced with
    before = left;
    int r = so.mode == SWAPOFF_WALK    ? by_walk()
            : so.mode == SWAPOFF_BATCH ? by_batch()
                                       : by_slot(so.mode == SWAPOFF_HINT);
    so.freed += swap_uncache();
    if (r < 0)
      return fail(aoedev.state != AOE_UP ? "I/O error" : "out of memory");
    left = held();
  } while (left && left < before);
  if (left)
    return fail("a slot's PTE not found");
  if (swap_used())
    return fail("swap cache busy");
  return 0;
}

// swapoff(2). Fills *info (if not 0) with what the call did and returns 0,
// or -1: swap was not on, another swapoff runs, memory ran out or the
// device failed (swap then stays on with what is still on it).
int swapoff(struct swapoffinfo *info) {
  memset(&so, 0, sizeof so);
  so.mode = params.swapoff_mode;
  uint64 t0 = now_ns(), reads = kstats.bio_reads, bytes = kstats.swap_bytes_in;
  uint64 frames0 = kstats.aoe_requests, replies = kstats.aoe_replies;
  uint64 retx = kstats.aoe_retransmits;
  while (swapstate == SWAP_PROBING)
    sleep_blocked(&swapstate);
  if (swapstate == SWAP_IDLE) {     // configured, never used: nothing to bring back
    wasidle = 1;
    swapstate = SWAP_DISABLED;
  } else if (swapstate == SWAP_DRAINING) {
    fail("swapoff already running");
  } else if (swapstate != SWAP_UP) {
    fail("swap is not on");
  } else {
    wasidle = 0;
    kstats.swapoff_active = 1;
    swapstate = SWAP_DRAINING;
    swap_wait_writeback();
    so.slots = swap_used();
    swapstate = drain() == 0 ? SWAP_DISABLED : SWAP_UP;
  }
  kstats.swapoff_active = 0;
  so.ns = now_ns() - t0;
  so.reads = kstats.bio_reads - reads;
  so.sectors = (kstats.swap_bytes_in - bytes) / 512;
  so.frames = kstats.aoe_requests - frames0;
  so.replies = kstats.aoe_replies - replies;
  so.retransmits = kstats.aoe_retransmits - retx;
  kstats.swapoff_runs++;
  kstats.swapoff_fails += so.result != 0;
  kstats.swapoff_pages += so.pages;
  kstats.swapoff_freed += so.freed;
  kstats.swapoff_ptes += so.ptes;
  kstats.swapoff_mms += so.mms;
  kstats.swapoff_hint_hits += so.hint_hits;
  kstats.swapoff_hint_misses += so.hint_misses;
  kstats.swapoff_reads += so.reads;
  kstats.swapoff_sectors += so.sectors;
  kstats.swapoff_ns += so.ns;
  kstats.swapoff_frames += so.frames;
  kstats.swapoff_replies += so.replies;
  kstats.swapoff_retransmits += so.retransmits;
  kstats.swap_slots_used = swap_used();
  swapoffs++;
  if (info)
    *info = so;
  return so.result;
}

// swapon(2): swap on again after swapoff. Returns 0, or -1 if it is not off.
int swapon(void) {
  if (swapstate != SWAP_DISABLED)
    return -1;
  swapstate = wasidle ? SWAP_IDLE : aoedev.state == AOE_UP ? SWAP_UP : SWAP_OFF;
  return 0;
}
