// Swap over AoE, and page reclaim.
//
// Swap area: the whole AoE device, slot s = sectors [8s, 8s+8). The swap
// map keeps per slot a count of the PTEs that hold it plus SWP_CACHE when a
// page of the swap cache is bound to it; a slot with count 0 is free - but
// it is handed out again only once SWAP_MSL (the longest a frame may live
// in the network, boot parameter swap_msl_ms) has passed since the last
// transmission of a write to it, so a delayed duplicate of an old write
// can never land after a newer write to the same sectors (docs/swap.md).
//
// Swap cache: page <-> slot (frame.swapslot, swapcache[]). A page is in it
// while it is being written out (FR_WRITEBACK), read in (FR_LOCKED: other
// faults on the slot wait for that one read), or resident with a valid
// copy on swap (clean pages are then dropped without I/O).
//
// Reclaim: one clock over the LRU list of private user pages, second
// chance from the PTE accessed bit (cleared with a fence). kswapd is woken
// below the low watermark and works up to high; an allocation that fails
// at min reclaims directly and waits for write-back.
#include "types.h"
#include "riscv.h"
#include "proc.h"
#include "mm.h"
#include "net.h"
#include "defs.h"
#include "swap.h"

#define SWP_CACHE 0x80
#define SWP_COUNT 0x7f
#define CLUSTER 32

static uint8 *mapp[MAXSLOTS / PGSIZE];        // swap map: count | SWP_CACHE
static uint32 *cachep[MAXSLOTS / 1024];       // slot -> frame number + 1
static uint16 *txp[MAXSLOTS / 2048];          // last write sent, ms (mod 65536)
static uint8 *hintp[MAXSLOTS / PGSIZE];       // 1 + proc index it went out from (swapoff=hint)
static uint32 nslots, maxslots, cursor, used;
static uint64 msl_ns;
int swapstate;                                 // SWAP_*
static int writeback;                          // pages being written
static int reclaim_chan, kswapd_chan, kswapd_idle, kswapd_wanted, kswapd_started;
static int swaptables(uint32 n);
static void swapready(int ok);
static uint32 lru_head = NOFRAME, lru_tail = NOFRAME;
static uint32 nlru;


static uint8 *smap(uint32 s) { return &mapp[s / PGSIZE][s % PGSIZE]; }
static uint32 *scache(uint32 s) { return &cachep[s / 1024][s % 1024]; }
static uint16 *stx(uint32 s) { return &txp[s / 2048][s % 2048]; }
static uint8 *shint(uint32 s) { return &hintp[s / PGSIZE][s % PGSIZE]; }
static uint32 fno(struct frame *f) { return f - frames; }

static void gauges(void) {
  kstats.swap_slots_used = used;
  kstats.lru_pages = nlru;
  kstats.swap_writeback = writeback;
}

// -- LRU list (frames linked through next/prev, newest at the head) ----------

static void lru_add(struct frame *f) {
  f->prev = NOFRAME;
  f->next = lru_head;
  if (lru_head != NOFRAME)
    frames[lru_head].prev = fno(f);
  else
    lru_tail = fno(f);
  lru_head = fno(f);
  f->flags |= FR_LRU;
  nlru++;
}

static void lru_del(struct frame *f) {
  if (!(f->flags & FR_LRU))
    panic("lru_del: not on the LRU");
  if (f->prev != NOFRAME)
    frames[f->prev].next = f->next;
  else
    lru_head = f->next;
  if (f->next != NOFRAME)
    frames[f->next].prev = f->prev;
  else
    lru_tail = f->prev;
  f->next = f->prev = NOFRAME;
  f->flags &= ~FR_LRU;
  nlru--;
}

// -- swap map and cache --------------------------------------------------------

static void slot_put(uint32 s) {
  if (*smap(s) == 0)
    used--;
}

// Drop one PTE reference to slot s (a process exits or unmaps).
void swap_free_pte(uint64 pte) {
  uint32 s = PTE2SLOT(pte);
  if (s >= nslots || (*smap(s) & SWP_COUNT) == 0)
    panic("swap_free_pte: bad slot");
  (*smap(s))--;
  slot_put(s);
  gauges();
}

static void cache_add(struct frame *f, uint32 s) {
  f->swapslot = s + 1;
  *scache(s) = fno(f) + 1;
  *smap(s) |= SWP_CACHE;
}

static void cache_del(struct frame *f) {
  uint32 s = f->swapslot - 1;
  f->swapslot = 0;
  *scache(s) = 0;
  *smap(s) &= ~SWP_CACHE;
  slot_put(s);
}

// A speculative page (read ahead of a fault, or prefetched) is mapped: it
// was worth reading.
static void spec_used(struct frame *f) {
  if (f->flags & FR_READAHEAD)
    kstats.ra_hits++;
  if (f->flags & FR_PREFETCH)
    kstats.prefetch_hits++;
  f->flags &= ~(FR_READAHEAD | FR_PREFETCH);
}

// A speculative page is dropped before anyone mapped it: wasted I/O.
static void spec_dropped(struct frame *f) {
  if (f->flags & FR_READAHEAD)
    kstats.ra_dropped++;
  if (f->flags & FR_PREFETCH)
    kstats.prefetch_dropped++;
  f->flags &= ~(FR_READAHEAD | FR_PREFETCH);
}

// Next free slot from the cursor (writes cluster in slot order), skipping
// slots whose last write may still be in the network. Returns -1 if none.
static int quarantined;  // the last failed slot_alloc skipped young slots

static int64 slot_alloc(void) {
  uint64 now = now_ns();
  quarantined = 0;
  for (uint32 n = 0; n < nslots; n++) {
    uint32 s = cursor;
    cursor = cursor + 1 == nslots ? 0 : cursor + 1;
    if (*smap(s))
      continue;
    // Time since the last write was sent, mod 65.536 s: a wrap can only
    // make a slot look younger than it is (it waits longer), never older.
    uint16 since = (uint16)(now / 1000000) - *stx(s);
    if (msl_ns && (uint64)since * 1000000 < msl_ns + 1000000) {
      kstats.swap_slot_quarantined++;
      quarantined = 1;
      continue;
    }
    used++;
    return s;
  }
  return -1;
}

// A user page that loses its last mapping (exit, sbrk, munmap): leave the
// LRU and the swap cache, free it. Pages being written or read stay (the
// I/O completion frees them).
void swap_pagefree(struct frame *f) {
  if (f->flags & FR_LRU)
    lru_del(f);
  if (f->flags & (FR_WRITEBACK | FR_LOCKED))
    return;
  if (f->swapslot)
    cache_del(f);
  f->flags &= ~FR_DIRTY;
  pfree((void *)frame2pa(f));
  gauges();
}

// mapuser() calls this for a private user page it maps.
void swap_mapped(struct frame *f) {
  if (!(f->flags & FR_LRU))
    lru_add(f);
}

// -- page-out --------------------------------------------------------------

static void swapout_done(struct bio *b) {
  for (int i = 0; i < b->npages; i++) {
    struct frame *f = pa2frame((uint64)b->pages[i]);
    uint32 s = f->swapslot - 1;
    *stx(s) = (uint16)(b->last_tx_ns / 1000000);
    f->flags &= ~FR_WRITEBACK;
    writeback--;
    if (b->error) {
      // The copy on swap is not valid. An unmapped page stays in the swap
      // cache: a fault maps it back.
      kstats.swap_write_errors++;
      f->flags |= FR_DIRTY;
    } else if (f->ref == 0) {
      cache_del(f);         // the slot now holds the data; the PTE holds the slot
      f->flags &= ~FR_DIRTY;
      pfree((void *)frame2pa(f));
    }
  }
  bio_free(b);
  gauges();
  wakeup(&reclaim_chan);
}

// The write cluster reclaim is building: pages for consecutive slots go
// into one bio (two pages a frame at MTU 9000).
static struct bio *wbio;
static uint32 wnext;

static void wflush(void) {
  if (wbio)
    submit_bio(wbio);
  wbio = 0;
}

// Unmap f from its one process and write it out, or drop it if its copy on
// swap is valid. Returns 1 (freed or being written), 0 if it cannot now.
static int pageout(struct frame *f, pte_t *pte) {
  struct proc *p = f->user.proc;
  int dirty = !f->swapslot || (*pte & PTE_D) || (f->flags & FR_DIRTY);
  if (!dirty) {
    uint32 s = f->swapslot - 1;
    lru_del(f);
    *pte = SWAPPTE(s);
    (*smap(s))++;
    *shint(s) = (uint8)(p - proc + 1);
    f->ref = 0;
    p->rss--;
    cache_del(f);
    pfree((void *)frame2pa(f));
    kstats.swap_clean_drops++;
    prefetch_swapout(s);
    return 1;
  }
  if ((!wbio && !bio_avail()) || !aoe_can_queue((wbio ? wbio->nsect : 0) + SLOT_SECT))
    return 0;
  if (f->swapslot)
    cache_del(f);           // the old copy is stale
  int64 s = slot_alloc();
  if (s < 0) {
    f->flags |= FR_DIRTY;
    return 0;
  }
  if (wbio && ((uint32)s != wnext || wbio->npages == BIO_MAXPAGES))
    wflush();
  if (!wbio) {
    if (!(wbio = bio_alloc())) {   // cannot happen: checked above
      slot_put(s);
      return 0;
    }
    wbio->sector = (uint64)s * SLOT_SECT;
    wbio->write = 1;
    wbio->done = swapout_done;
  }
  lru_del(f);
  *smap(s) = 1;             // the PTE
  *shint(s) = (uint8)(p - proc + 1);
  cache_add(f, s);
  f->flags = (f->flags | FR_WRITEBACK) & ~FR_DIRTY;
  *pte = SWAPPTE(s);
  f->ref = 0;
  p->rss--;
  writeback++;
  kstats.swap_outs++;
  kstats.swap_bytes_out += PGSIZE;
  wbio->pages[wbio->npages++] = (uint8 *)frame2pa(f);
  wbio->nsect += SLOT_SECT;
  wnext = s + 1;
  prefetch_swapout(s);
  return 1;
}

// Drop an unmapped swap-cache page (read ahead, never mapped) from the
// LRU. Returns 1 if freed.
static int dropcached(struct frame *f) {
  if (f->flags & (FR_LOCKED | FR_WRITEBACK))
    return 0;
  lru_del(f);
  spec_dropped(f);
  cache_del(f);
  f->flags &= ~FR_DIRTY;
  pfree((void *)frame2pa(f));
  kstats.swap_clean_drops++;
  return 1;
}

// Scan the clock for up to `want` pages to evict. Returns how many were
// freed or put under write-back. Runs in PF_MEMALLOC state (reclaim()).
static int reclaim1(int want) {
  if (swapstate != SWAP_UP || aoedev.state != AOE_UP)
    return 0;
  int got = 0, fence = 0;
  uint32 budget = 2 * nlru + 1;
  while (got < want && budget-- > 0 && lru_tail != NOFRAME) {
    struct frame *f = &frames[lru_tail];
    kstats.reclaim_scanned++;
    if (f->flags & FR_WRITEBACK) {  // mapped back while its write is in flight
      lru_del(f);
      lru_add(f);
      continue;
    }
    if (f->ref == 0) {       // read ahead, not mapped yet
      if (dropcached(f)) {
        got++;
      } else {
        lru_del(f);
        lru_add(f);
      }
      continue;
    }
    pte_t *pte = walk(f->user.proc->pagetable, f->user.va, 0);
    if (!pte || !(*pte & PTE_V) || PTE2PA(*pte) != frame2pa(f))
      panic("reclaim: reverse map");
    if (*pte & PTE_A) {
      *pte &= ~PTE_A;       // second chance; the fence below makes it count
      fence = 1;
      lru_del(f);
      lru_add(f);
      kstats.reclaim_rotated++;
      continue;
    }
    if (pageout(f, pte)) {
      got++;
      fence = 1;
    } else {
      break;
    }
  }
  if (fence)
    sfence_vma();           // before any write leaves: no stale translation
  wflush();
  gauges();
  return got;
}

// reclaim1 in PF_MEMALLOC state, charging reserve pages to swap_io.
int reclaim(int want) {
  int old = memalloc_save(RESERVE_SWAP_IO);
  int n = reclaim1(want);
  memalloc_restore(old);
  return n;
}

// palloc for user pages and their page tables: when free memory is at min,
// reclaim directly and wait for write-back (throttled first when the
// reserve is running out: kalloc.c throttle_direct_reclaim). Returns 0 only when nothing
// can be reclaimed (no swap, swap full, device dead): the caller's OOM.
void *palloc_reclaim(int use) {
  int idle = 0;
  for (;;) {
    void *pa = palloc(use);
    if (pa)
      return pa;
    if (swapstate == SWAP_IDLE)
      swap_lowmem();
    if (swapstate == SWAP_PROBING) {
      sleep_blocked(&swapstate);
      continue;
    }
    if (swapstate == SWAP_DRAINING && ++idle <= 100) {
      // swapoff runs: nothing may go out, but exiting processes and
      // write-backs still free pages. Wait up to 100 ms for them.
      kstats.tasks_blocked++;
      sleepuntil(now_ns() + 1000000);
      kstats.tasks_blocked--;
      continue;
    }
    if (swapstate != SWAP_UP || aoedev.state != AOE_UP)
      return 0;
    if (throttle_direct_reclaim())
      continue;
    kstats.direct_reclaims++;
    int n = reclaim(CLUSTER);
    if (nfree() > wmark.min)
      continue;
    if (writeback > 0) {
      sleep_blocked(&reclaim_chan);
      continue;
    }
    if (n == 0 && quarantined) {
      kstats.tasks_blocked++;
      sleepuntil(now_ns() + 1000000);  // young free slots come of age with time
      kstats.tasks_blocked--;
      continue;
    }
    if (n == 0 && ++idle > 4)
      return 0;
    if (n == 0)
      sleepuntil(now_ns() + 1000000);
  }
}

// Returns 1 while swap is up (fault-around is on only then).
int swap_active(void) { return swapstate == SWAP_UP && aoedev.state == AOE_UP; }

// palloc calls this when free memory nears the watermarks: kswapd is
// started (by the scheduler) the first time, and woken below low.
void swap_lowmem(void) {
  if (swapstate == SWAP_IDLE) {
    swapstate = SWAP_PROBING;
    if (aoe_start(swapready) != 0)
      swapready(0);
    return;
  }
  if (swapstate == SWAP_UP && !kswapd_started)
    kswapd_wanted = 1;
  if (swapstate == SWAP_UP && kswapd_idle && nfree() < wmark.low) {
    kswapd_idle = 0;
    kstats.kswapd_wakeups++;
    wakeup(&kswapd_chan);
  }
}

// -- page-in -----------------------------------------------------------------

static void swapin_done(struct bio *b) {
  for (int i = 0; i < b->npages; i++) {
    struct frame *f = pa2frame((uint64)b->pages[i]);
    f->flags &= ~FR_LOCKED;
    wakeup(f);
    if (i == 0)
      continue;             // the faulting process takes the first page
    if (b->error) {
      cache_del(f);
      pfree(b->pages[i]);
    } else {
      lru_add(f);           // an unmapped swap-cache page, reclaimable
    }
  }
  wakeup(&reclaim_chan);     // a bio and AoE request slots are coming free
  wakeup(b);
}

// Read-ahead: the slots after s that hold swapped pages not in the cache,
// up to RA_PAGES, while memory is above the low watermark (swap writes
// cluster in slot order, so they are likely the next pages wanted).
#define RA_PAGES 16

// Add a page read ahead for slot t to bio b (locked in the swap cache
// until the read completes). Returns 0, or -1 if no page could be had.
static int ra_page(struct bio *b, uint32 t) {
  void *pa = palloc(FRAME_USER | PALLOC_NOZERO);
  if (!pa)
    return -1;
  struct frame *f = pa2frame((uint64)pa);
  cache_add(f, t);
  f->flags |= FR_LOCKED | FR_READAHEAD;
  b->pages[b->npages++] = pa;
  b->nsect += SLOT_SECT;
  kstats.swap_readahead++;
  return 0;
}

static void readahead(struct bio *b, uint32 s) {
  if (params.swap_readahead < 0)
    return;
  uint32 ra = params.swap_readahead > 0 ? params.swap_readahead : RA_PAGES;
  if (ra > BIO_MAXPAGES)
    ra = BIO_MAXPAGES;
  for (uint32 t = s + 1; t < nslots && (uint32)b->npages < ra; t++) {
    if ((*smap(t) & SWP_COUNT) == 0 || *scache(t) || nfree() <= wmark.low ||
        !aoe_can_queue(b->nsect + SLOT_SECT))
      break;
    if (ra_page(b, t) != 0)
      break;
  }
}

// Map f, the swap-cache page of slot t, at a in p with the faulting page
// (fault-around): the PTE's reference to the slot becomes the page's, and
// when swap is filling up or going off the page keeps no swap copy.
// Returns 0, or -1 if it could not be mapped.
static int map_ahead(struct proc *p, uint64 a, struct frame *f, uint32 t, int perm) {
  if (mapuser(p, a, frame2pa(f), perm) != 0)
    return -1;
  (*smap(t))--;
  spec_used(f);
  kstats.swap_faultaround++;
  if (used * 2 > nslots || swapstate == SWAP_DRAINING) {
    cache_del(f);
    f->flags |= FR_DIRTY;
  }
  return 0;
}

// Map the pages read ahead with the one at `va` that sit at the next
// virtual addresses (below `end`) of the same process: their PTEs still
// hold exactly the slots that follow. Saves a fault each.
static void faultaround(struct proc *p, uint64 va, uint64 end, uint32 s, int n, int perm) {
  for (int i = 1; i < n; i++) {
    uint64 a = va + (uint64)i * PGSIZE;
    if (a >= end || s + i >= nslots)
      break;
    pte_t *pte = walk(p->pagetable, a, 0);
    uint32 fn = *scache(s + i);
    if (!pte || *pte != SWAPPTE(s + i) || !fn)
      break;
    struct frame *f = &frames[fn - 1];
    if (f->flags & (FR_LOCKED | FR_WRITEBACK) || f->ref)
      break;
    if (map_ahead(p, a, f, s + i, perm) != 0)
      break;
  }
}

// VMA read-ahead (readahead=vma; Linux 4.14's swap_vma_readahead): the
// swap PTEs at the virtual addresses after va in p (below end, within the
// read-ahead window), whatever their slots. A page whose slot follows the
// previous one joins b, the fault's own read; the others go in read-ahead
// bios of their own (at most RA_EXTRA, stored in extra[]), which the
// caller submits after b and does not wait for. Returns how many.
#define RA_EXTRA 4
static void readslots_done(struct bio *b);

static void ra_done(struct bio *b) {
  readslots_done(b);        // unlocked, on the LRU (or freed on error)
  bio_free(b);
}

static int vma_readahead(struct proc *p, uint64 va, uint64 end, struct bio *b, uint32 s,
                         struct bio **extra) {
  if (params.swap_readahead < 0)
    return 0;
  uint32 ra = params.swap_readahead > 0 ? params.swap_readahead : RA_PAGES;
  int n = 0;
  uint32 next = s + 1, xnext = 0;   // the slots that would extend b / extra[n - 1]
  for (uint32 i = 1; i < ra; i++) {
    uint64 a = va + (uint64)i * PGSIZE;
    if (a >= end || nfree() <= wmark.low)
      break;
    pte_t *pte = walk(p->pagetable, a, 0);
    if (!pte || (*pte & PTE_V) || !(*pte & PTE_SWAP))
      continue;               // resident, or never touched: nothing to read
    uint32 t = PTE2SLOT(*pte);
    if (t >= nslots || *scache(t))
      continue;
    struct bio *into = b;
    if (t != next || b->npages == BIO_MAXPAGES || !aoe_can_queue(b->nsect + SLOT_SECT)) {
      into = n ? extra[n - 1] : 0;
      if (!into || t != xnext || into->npages == BIO_MAXPAGES) {
        if (n == RA_EXTRA || bio_avail() < 8 || !(into = bio_alloc()))
          break;
        into->sector = (uint64)t * SLOT_SECT;
        into->done = ra_done;
        extra[n++] = into;
      }
    }
    if (ra_page(into, t) != 0)
      break;
    if (into == b)
      next = t + 1;
    else
      xnext = t + 1;
  }
  if (n && extra[n - 1]->npages == 0)
    bio_free(extra[--n]);     // allocated, then no page for it
  return n;
}

// Submit a read-ahead bio from vma_readahead, or give its pages back if
// the AoE device cannot take it now (read-ahead is only a guess).
static void ra_submit(struct bio *x) {
  if (aoe_can_queue(x->nsect)) {
    kstats.swap_ins += x->npages;
    kstats.swap_bytes_in += (uint64)PGSIZE * x->npages;
    submit_bio(x);
    return;
  }
  for (int i = 0; i < x->npages; i++) {
    struct frame *f = pa2frame((uint64)x->pages[i]);
    f->flags &= ~(FR_LOCKED | FR_READAHEAD);
    cache_del(f);
    pfree(x->pages[i]);
  }
  bio_free(x);
}

// Fault-around for VMA read-ahead: map the pages after va (within n pages,
// below end) whose PTEs hold slots now in the swap cache and read.
static void vma_faultaround(struct proc *p, uint64 va, uint64 end, int n, int perm) {
  for (int i = 1; i < n; i++) {
    uint64 a = va + (uint64)i * PGSIZE;
    if (a >= end)
      break;
    pte_t *pte = walk(p->pagetable, a, 0);
    if (!pte || (*pte & PTE_V) || !(*pte & PTE_SWAP))
      continue;
    uint32 t = PTE2SLOT(*pte);
    uint32 fn = t < nslots ? *scache(t) : 0;
    struct frame *f = fn ? &frames[fn - 1] : 0;
    if (!f || (f->flags & (FR_LOCKED | FR_WRITEBACK)) || f->ref)
      continue;
    if (map_ahead(p, a, f, t, perm) != 0)
      break;
  }
}

// Bring in the page of p at `va` whose PTE holds a swap slot and map it
// with `perm` (its region ends at `end`). Returns VMF_OK, VMF_OOM or
// VMF_IOERR.
int swapin(struct proc *p, uint64 va, int perm, uint64 end) {
  va = PGROUNDDOWN(va);
  void *spare = 0;
  for (;;) {
    pte_t *pte = walk(p->pagetable, va, 0);
    if (!pte || !(*pte & PTE_SWAP) || (*pte & PTE_V)) {
      if (spare)
        pfree(spare);
      kstats.faults[FAULT_SPURIOUS]++;
      return VMF_OK;         // someone else resolved it
    }
    uint32 s = PTE2SLOT(*pte);
    if (s >= nslots)
      panic("swapin: bad slot");
    uint32 fn = *scache(s);
    struct frame *f;
    int major = 0, nread = 0;
    if (fn) {
      f = &frames[fn - 1];
      if (f->flags & FR_LOCKED) {
        kstats.swapcache_waits++;
        sleep_blocked(f);    // one read per slot: wait for it
        continue;
      }
    } else {
      if (!spare) {
        spare = palloc_reclaim(FRAME_USER | PALLOC_NOZERO);  // the read fills it
        if (!spare)
          return VMF_OOM;
        continue;            // we slept: look again
      }
      f = pa2frame((uint64)spare);
      spare = 0;
      cache_add(f, s);
      f->flags |= FR_LOCKED;
      struct bio *b;
      while (!(b = bio_alloc()) || !aoe_can_queue(SLOT_SECT)) {
        if (b)
          bio_free(b);
        sleep_blocked(&reclaim_chan);
      }
      b->sector = (uint64)s * SLOT_SECT;
      b->nsect = SLOT_SECT;
      b->pages[0] = (uint8 *)frame2pa(f);
      b->npages = 1;
      b->done = swapin_done;
      struct bio *extra[RA_EXTRA];
      int nextra = 0;
      if (params.readahead_vma)
        nextra = vma_readahead(p, va, end, b, s, extra);
      else
        readahead(b, s);
      kstats.swap_ins += b->npages;
      kstats.swap_bytes_in += (uint64)PGSIZE * b->npages;
      submit_bio(b);
      for (int i = 0; i < nextra; i++)
        ra_submit(extra[i]);
      bio_wait(b);
      int err = b->error;
      nread = b->npages;
      bio_free(b);
      if (err) {
        kstats.swap_read_errors++;
        cache_del(f);
        pfree((void *)frame2pa(f));
        wakeup(f);
        return VMF_IOERR;
      }
      major = 1;
    }
    // Map it: the PTE's reference to the slot becomes the page's.
    pte = walk(p->pagetable, va, 0);
    if (!pte || *pte != SWAPPTE(s))
      continue;
    if (mapuser(p, va, frame2pa(f), perm) != 0)
      return VMF_OOM;
    (*smap(s))--;
    spec_used(f);
    kstats.faults[major ? FAULT_SWAPIN : FAULT_SWAPCACHE]++;
    if (major)
      p->majflt++;
    else
      p->minflt++;
    if (!major)
      kstats.swapcache_hits++;
    if (!(f->flags & FR_WRITEBACK) && (used * 2 > nslots || swapstate == SWAP_DRAINING)) {
      cache_del(f);          // swap is getting full or going off: keep only the page
      f->flags |= FR_DIRTY;
    }
    if (major && params.readahead_vma)
      vma_faultaround(p, va, end, params.swap_readahead > 0 ? params.swap_readahead : RA_PAGES,
                      perm);
    else if (nread > 1)
      faultaround(p, va, end, s, nread, perm);
    gauges();
    return VMF_OK;
  }
}

// -- for swapoff (swap.h) -----------------------------------------------------

uint32 swap_nslots(void) { return nslots; }
uint32 swap_used(void) { return used; }
int swap_count(uint32 s) { return *smap(s) & SWP_COUNT; }
int swap_hint(uint32 s) { return *shint(s); }

struct frame *swap_cachepage(uint32 s) {
  uint32 fn = *scache(s);
  return fn ? &frames[fn - 1] : 0;
}

void swap_wait_writeback(void) {
  while (writeback > 0)
    sleep_blocked(&reclaim_chan);
}

static void readslots_done(struct bio *b) {
  for (int i = 0; i < b->npages; i++) {
    struct frame *f = pa2frame((uint64)b->pages[i]);
    f->flags &= ~FR_LOCKED;
    wakeup(f);
    if (b->error) {
      cache_del(f);          // nobody may map what was not read
      pfree(b->pages[i]);
    } else {
      lru_add(f);            // an unmapped swap-cache page until its PTE is found
    }
  }
  wakeup(&reclaim_chan);
  wakeup(b);
}

// Read up to n slots from s - the run of them that are held by a PTE and
// not in the swap cache - into new swap-cache pages with one request, and
// wait for it. The pages stay in the cache, unmapped, until swap_unuse()
// maps them. Returns the number of slots read (0: slot s needs no read),
// or -1 if no page could be had or the read failed.
int swap_readslots(uint32 s, uint32 n, int how) {
  if (n > BIO_MAXPAGES)
    n = BIO_MAXPAGES;
  void *pg[BIO_MAXPAGES];
  uint32 got = 0;
  // The pages first (for swapoff the first may wait for memory): after any
  // sleep the run is measured again below.
  for (; got < n; got++)
    if (!(pg[got] = got || (how & RS_PREFETCH) ? palloc(FRAME_USER | PALLOC_NOZERO)
                                               : palloc_reclaim(FRAME_USER | PALLOC_NOZERO)))
      break;
  if (got == 0)
    return -1;
  struct bio *b;
  while (!(b = bio_alloc()) || !aoe_can_queue(SLOT_SECT)) {
    if (b)
      bio_free(b);
    sleep_blocked(&reclaim_chan);
  }
  b->sector = (uint64)s * SLOT_SECT;
  b->done = readslots_done;
  for (uint32 t = s; t < nslots && (uint32)b->npages < got; t++) {
    if (!(*smap(t) & SWP_COUNT) || *scache(t) || !aoe_can_queue(b->nsect + SLOT_SECT))
      break;
    struct frame *f = pa2frame((uint64)pg[b->npages]);
    cache_add(f, t);
    f->flags |= FR_LOCKED | (how & RS_PREFETCH ? FR_PREFETCH : 0);
    b->pages[b->npages] = pg[b->npages];
    b->npages++;
    b->nsect += SLOT_SECT;
  }
  int n_read = b->npages;
  for (uint32 i = n_read; i < got; i++)
    pfree(pg[i]);
  if (n_read == 0) {
    bio_free(b);
    wakeup(&reclaim_chan);
    return 0;
  }
  kstats.swap_ins += n_read;
  kstats.swap_bytes_in += (uint64)PGSIZE * n_read;
  if (how & RS_PREFETCH) {
    kstats.prefetch_pages += n_read;
    kstats.prefetch_reads++;
  }
  submit_bio(b);
  bio_wait(b);
  int err = b->error;
  bio_free(b);
  wakeup(&reclaim_chan);
  gauges();
  if (err) {
    kstats.swap_read_errors++;
    return -1;
  }
  return n_read;
}

// Map the swap-cache page of the slot *pte holds (pte is p's PTE for va)
// with `perm`: the PTE's reference to the slot ends and the page leaves
// the swap cache (dirty: swap will not keep its copy). Returns 0, or -1 if
// the slot's page is not in the cache, is busy, or is mapped already.
int swap_unuse(struct proc *p, uint64 va, pte_t *pte, int perm) {
  uint32 s = PTE2SLOT(*pte);
  struct frame *f = s < nslots ? swap_cachepage(s) : 0;
  if (!f || (f->flags & (FR_LOCKED | FR_WRITEBACK)) || f->ref)
    return -1;
  if (mapuser(p, va, frame2pa(f), perm) != 0)
    return -1;
  (*smap(s))--;
  spec_used(f);
  cache_del(f);
  f->flags |= FR_DIRTY;
  gauges();
  return 0;
}

// End every swap-cache binding: unmapped cache pages (read, but their PTE
// went away) are freed, mapped ones keep their page and lose the slot.
// Returns the number of pages freed. Called with no write-back in flight.
int swap_uncache(void) {
  int freed = 0;
  for (uint32 s = 0; s < nslots; s++) {
    struct frame *f = swap_cachepage(s);
    if (!f || (f->flags & (FR_LOCKED | FR_WRITEBACK)))
      continue;
    if (f->ref == 0 && !(*smap(s) & SWP_COUNT)) {
      if (f->flags & FR_LRU)
        lru_del(f);
      spec_dropped(f);
      cache_del(f);
      f->flags &= ~FR_DIRTY;
      pfree((void *)frame2pa(f));
      freed++;
    } else if (f->ref) {
      cache_del(f);
      f->flags |= FR_DIRTY;
    }
  }
  gauges();
  return freed;
}

// -- bring-up ------------------------------------------------------------------

// kswapd: reclaim from the low watermark up to high whenever woken.
static void kswapd(void) {
  myproc()->flags |= PF_MEMALLOC;  // kswapd is reclaim: entitled to the reserve
  for (;;) {
    while (swapstate == SWAP_UP && aoedev.state == AOE_UP &&
           nfree() + writeback < wmark.high) {
      int got = reclaim(CLUSTER);
      if (got <= 0 || !bio_avail()) {
        if (writeback)
          sleep_blocked(&reclaim_chan);
        else if (quarantined)
          sleepuntil(now_ns() + 1000000);
        else
          break;
      }
    }
    kswapd_idle = 1;
    sleep(&kswapd_chan);
  }
}

// The AoE device is up (or not): size the swap area (interrupt context).
static void swapready(int ok) {
  if (!ok) {
    swapstate = SWAP_OFF;
    swaptables(0);
    wakeup(&swapstate);
    return;
  }
  uint64 n = aoedev.nsectors / SLOT_SECT;
  nslots = n < maxslots ? n : maxslots;
  swaptables(nslots);  // give back what the device does not need
  uint16 old = (uint16)(now_ns() / 1000000 - 30000);  // "written long ago"
  for (uint32 i = 0; i < nslots; i++)
    *stx(i) = old;
  msl_ns = params.swap_msl_ms >= 0 ? (uint64)params.swap_msl_ms * 1000000 : 100000000;
  kstats.swap_slots_total = nslots;
  printf("swap: %d slots (%d MiB) on e%d.%d; slot reuse after %d ms quiet\n", (int)nslots,
         (int)(nslots / 256), (int)aoedev.shelf, (int)aoedev.slot, (int)(msl_ns / 1000000));
  swapstate = SWAP_UP;
  wakeup(&swapstate);
}

// The scheduler calls this between processes: start kswapd the first time
// memory ran low (so runs that never swap have no extra process).
void swap_sched(void) {
  if (kswapd_wanted && !kswapd_started && kthread("kswapd", kswapd) > 0)
    kswapd_started = 1;  // (a failed start is retried at the next pass)
  prefetch_sched();
}

// One two-level table of per-slot entries (per_page a page, MAXSLOTS in
// all): keep the pages that n slots need (allocating missing ones as
// FRAME_SWAPMAP), free the pages beyond. Returns 0, or -1 if memory ran out.
int swap_table(void **tab, uint32 per_page, uint32 n) {
  for (uint32 i = 0; i < MAXSLOTS / per_page; i++) {
    int want = i < (n + per_page - 1) / per_page;
    if (want && !tab[i] && !(tab[i] = palloc(FRAME_SWAPMAP)))
      return -1;
    if (!want && tab[i]) {
      pfree(tab[i]);
      tab[i] = 0;
    }
  }
  return 0;
}

// Size the swap map, the cache's index, the hints and the swap-out table
// for n slots. Returns 0, or -1 if memory ran out.
static int swaptables(uint32 n) {
  if (swap_table((void **)mapp, PGSIZE, n) || swap_table((void **)cachep, 1024, n) ||
      swap_table((void **)hintp, PGSIZE, n) || swap_table((void **)txp, 2048, n))
    return -1;
  return 0;
}

// Configure swap (unless swap=off): the swap map is allocated now, before
// user processes take the memory, for at most min(32768, 8 x RAM pages,
// swap_slots=) slots (trimmed to the device later). The target is probed
// the first time free memory nears the watermarks (swap_lowmem), so a run
// that never needs swap sends no frame at all.
void swapinit(void) {
  if (params.noswap || !netup) {
    printf("swap: off (%s)\n", params.noswap ? "swap=off" : "no network");
    return;
  }
  maxslots = kstats.pages_total * 8;
  if (maxslots > MAXSLOTS)
    maxslots = MAXSLOTS;
  if (params.swap_slots && params.swap_slots < maxslots)
    maxslots = params.swap_slots;
  if (swaptables(maxslots) != 0 || (params.prefetch && prefetch_init(maxslots) != 0))
    panic("swapinit: no memory for the swap map");
  swapstate = SWAP_IDLE;
}
