// Physical page allocator: the frame table (one struct frame per page of
// RAM), a free list threaded through it, and the free-memory watermarks.
#include "types.h"
#include "riscv.h"
#include "mm.h"
#include "defs.h"
#include "proc.h"
#include "net.h"
#include "memlayout.h"

struct frame *frames;       // frames[(pa - rambase) >> PGSHIFT]
struct wmark wmark;
static uint64 rambase;      // platform.ram_base
static uint64 nframes;
static uint64 managed_lo;   // first page the allocator hands out
static uint32 freelist = NOFRAME;
static int throttled;       // tasks sleeping in throttle_direct_reclaim

struct frame *pa2frame(uint64 pa) {
  if (pa < rambase || pa >= rambase + nframes * PGSIZE)
    panic("pa2frame");
  return &frames[(pa - rambase) >> PGSHIFT];
}

uint64 frame2pa(struct frame *f) { return rambase + ((uint64)(f - frames) << PGSHIFT); }

static uint32 fnum(struct frame *f) { return f - frames; }

// Push `f` on the front of the doubly linked frame list at *head.
void flist_push(uint32 *head, struct frame *f) {
  f->prev = NOFRAME;
  f->next = *head;
  if (*head != NOFRAME)
    frames[*head].prev = fnum(f);
  *head = fnum(f);
}

// Unlink `f` from the frame list at *head.
void flist_del(uint32 *head, struct frame *f) {
  if (f->prev != NOFRAME)
    frames[f->prev].next = f->next;
  else if (*head == fnum(f))
    *head = f->next;
  else
    panic("flist_del: not on the list");
  if (f->next != NOFRAME)
    frames[f->next].prev = f->prev;
  f->next = f->prev = NOFRAME;
}

static uint64 isqrt(uint64 x) {
  uint64 r = 0;
  for (uint64 bit = 1UL << 62; bit; bit >>= 2) {
    if (x >= r + bit) {
      x -= r + bit;
      r = (r >> 1) + bit;
    } else {
      r >>= 1;
    }
  }
  return r;
}

// Linux's rule for min_free_kbytes: sqrt(lowmem_kbytes * 16), clamped to
// [128, 65536] KiB (mm/page_alloc.c, init_per_zone_wmark_min).
uint64 min_free_kbytes(uint64 lowmem_kb) {
  uint64 kb = isqrt(lowmem_kb * 16);
  return kb < 128 ? 128 : kb > 65536 ? 65536 : kb;
}

// Set the watermarks from min_kb: low = min * 5/4, high = min * 3/2 (the
// classic zone rule). The min never exceeds half of the managed pages, so a
// tiny machine keeps memory to run in.
static void setwmark(uint64 min_kb) {
  uint64 min = min_kb / 4, cap = (nframes - (managed_lo - rambase) / PGSIZE) / 2;
  if (min > cap)
    min = cap;
  wmark.min = min;
  wmark.low = min + min / 4;
  wmark.high = min + min / 2;
  kstats.wmark_min = wmark.min;
  kstats.wmark_low = wmark.low;
  kstats.wmark_high = wmark.high;
  // The reserve tree's limits split the pages below min; a reserve page
  // past its reserve's limit is refused (reserve_denied). aoe_rx gets what
  // the RX ring can hold (net.h), aoe_tx an eighth (its request state and
  // headers are pooled), swap_io the rest.
  uint64 rx = RX_RESERVE_PAGES < min ? RX_RESERVE_PAGES : min;
  uint64 tx = min / 8 < min - rx ? min / 8 : min - rx;
  kstats.reserve_limit[RESERVE_AOE_RX] = rx;
  kstats.reserve_limit[RESERVE_AOE_TX] = tx;
  kstats.reserve_limit[RESERVE_SWAP_IO] = min - rx - tx;
}

// Returns 1 if the page at pa overlaps a range the device tree reserves.
static int inresv(uint64 pa) {
  for (int i = 0; i < platform.nresv; i++)
    if (pa < platform.resv[i].base + platform.resv[i].size &&
        platform.resv[i].base < pa + PGSIZE)
      return 1;
  return 0;
}

// Build the frame table at `start` (the end of the kernel image) for the
// RAM the device tree gives (platform.ram_base, ram_size), free every page
// after it except the ranges the tree reserves (its own pages among them),
// and set the watermarks (min_kb, or Linux's rule if 0). Below the first
// free page: the firmware's region (FRAME_RESERVED, as the ranges the tree
// reserves), the kernel image (FRAME_KIMAGE) with the embedded program
// images in it (FRAME_IMAGE), and the frame table (FRAME_FTABLE).
void kinit(uint64 start, uint64 min_kb) {
  rambase = platform.ram_base;
  nframes = platform.ram_size / PGSIZE;
  frames = (struct frame *)PGROUNDUP(start);
  managed_lo = PGROUNDUP((uint64)(frames + nframes));
  memset(frames, 0, managed_lo - (uint64)frames);
  kstats.pages_total = nframes;
  for (uint64 i = 0; i < nframes; i++) {
    frames[i].use = FRAME_RESERVED;
    frames[i].next = frames[i].prev = NOFRAME;
  }
  kstats.pages[FRAME_RESERVED] = nframes;
  for (uint64 pa = KERNEL_BASE; pa < managed_lo; pa += PGSIZE) {
    struct frame *f = pa2frame(pa);
    f->use = pa >= (uint64)frames                                    ? FRAME_FTABLE
             : pa >= (uint64)progimg_start && pa < (uint64)progimg_end ? FRAME_IMAGE
                                                                       : FRAME_KIMAGE;
    kstats.pages[FRAME_RESERVED]--;
    kstats.pages[f->use]++;
  }
  // Push from the top so the lowest pages are handed out first.
  for (uint64 pa = rambase + (nframes - 1) * PGSIZE; pa >= managed_lo; pa -= PGSIZE) {
    if (inresv(pa))
      continue;
    struct frame *f = pa2frame(pa);
    f->use = FRAME_FREE;
    f->next = freelist;
    freelist = fnum(f);
    kstats.pages[FRAME_RESERVED]--;
    kstats.pages[FRAME_FREE]++;
  }
  kstats.free_low = nfree();
  setwmark(min_kb ? min_kb : min_free_kbytes(kstats.pages[FRAME_FREE] * (PGSIZE / 1024)));
}

uint64 nfree(void) { return kstats.pages[FRAME_FREE]; }

// The memalloc state of code running without a process (an interrupt taken
// in the scheduler), and the reserve the current memalloc section charges.
static int noproc_flags;
static int memalloc_res = RESERVE_SWAP_IO;

static int *curflags(void) {
  struct proc *p = myproc();
  return p ? &p->flags : &noproc_flags;
}

// Returns 1 if an allocation with flags `gfp` may take pages below the min
// watermark: GFP_NOMEMALLOC never (it wins), GFP_MEMALLOC or a task in
// PF_MEMALLOC state yes - unless reserve=off.
int memalloc_entitled(int gfp) {
  if (params.reserve_off || (gfp & GFP_NOMEMALLOC))
    return 0;
  return (gfp & GFP_MEMALLOC) || (*curflags() & PF_MEMALLOC);
}

// Enter PF_MEMALLOC state, charging reserve pages to `res` (RESERVE_*).
// Returns the state to give memalloc_restore() when the section ends
// (sections nest).
int memalloc_save(int res) {
  int *fl = curflags(), old = (*fl & PF_MEMALLOC) | memalloc_res << 8;
  *fl |= PF_MEMALLOC;
  memalloc_res = res;
  return old;
}

void memalloc_restore(int old) {
  int *fl = curflags();
  *fl = (*fl & ~PF_MEMALLOC) | (old & PF_MEMALLOC);
  memalloc_res = old >> 8;
}

static void reserve_charge(int r, int64 pages) {
  kstats.reserve_usage[r] += pages;
  if (kstats.reserve_usage[r] > kstats.reserve_peak[r])
    kstats.reserve_peak[r] = kstats.reserve_usage[r];
}

void *palloc(int use) { return palloc_flags(use, 0); }

// Returns a zeroed page tagged `use` (a FRAME_* value; | PALLOC_NOZERO: not
// zeroed, for a page about to be overwritten whole), or 0. Two steps: an
// ordinary allocation stops at the min watermark; below it only an
// entitled one (memalloc_entitled(gfp)) gets a page, which is marked
// FR_RESERVE (pfmemalloc) and charged to its reserve. User pages never
// come from the reserve (they are what reclaim frees, not what it needs),
// and a reserve at its limit gives no more (counted as reserve_denied).
void *palloc_flags(int use, int gfp) {
  int zero = !(use & PALLOC_NOZERO), reserve = 0;
  use &= ~PALLOC_NOZERO;
  if (use == FRAME_FREE || use == FRAME_RESERVED || use == FRAME_IMAGE || use == FRAME_KIMAGE ||
      use == FRAME_FTABLE || use >= NFRAMEUSE)
    panic("palloc: bad use");
  if (freelist != NOFRAME && nfree() <= wmark.min)
    reserve = use != FRAME_USER && memalloc_entitled(gfp);
  int r = gfp & GFP_RESMASK ? ((gfp & GFP_RESMASK) >> 4) - 1 : memalloc_res;
  if (r < 0 || r >= NRESERVE)
    panic("palloc_flags: bad reserve");
  if (reserve && kstats.reserve_usage[r] >= kstats.reserve_limit[r]) {
    kstats.reserve_denied++;
    reserve = 0;
  }
  if (freelist == NOFRAME || (nfree() <= wmark.min && !reserve)) {
    kstats.alloc_fails++;
    return 0;
  }
  struct frame *f = &frames[freelist];
  freelist = f->next;
  memset(f, 0, sizeof *f);
  f->use = use;
  f->next = f->prev = NOFRAME;
  if (reserve) {
    f->flags = FR_RESERVE;
    f->swapslot = r;
    kstats.reserve_allocs++;
    reserve_charge(r, 1);
  }
  kstats.pages[FRAME_FREE]--;
  kstats.pages[use]++;
  if (nfree() < kstats.free_low)
    kstats.free_low = nfree();
  void *pa = (void *)frame2pa(f);
  if (zero)
    memset(pa, 0, PGSIZE);
  if (nfree() < 4 * wmark.high)
    swap_lowmem();
  return pa;
}

// Free the page at `pa`, which palloc returned. Panics on a page that is
// not allocated (double free) or that the allocator does not manage.
void pfree(void *pa) {
  uint64 a = (uint64)pa;
  if (a % PGSIZE || a < managed_lo)
    panic("pfree: bad address");
  struct frame *f = pa2frame(a);
  if (f->use == FRAME_FREE || f->use == FRAME_RESERVED || f->use == FRAME_IMAGE)
    panic("pfree: page not allocated");
  if (f->flags & FR_LRU)
    panic("pfree: page on an LRU list");
  if (f->flags & FR_RESERVE)
    reserve_charge(f->swapslot, -1);
  kstats.pages[f->use]--;
  kstats.pages[FRAME_FREE]++;
  memset(f, 0, sizeof *f);
  f->use = FRAME_FREE;
  f->prev = NOFRAME;
  f->next = freelist;
  freelist = fnum(f);
  if (throttled && nfree() > wmark.min)
    wakeup(&throttled);
}

// Throttling (Linux: throttle_direct_reclaim): once free memory is below
// half of min the reserve is running out, so an ordinary task about to
// reclaim directly sleeps until background reclaim (kswapd, write-back
// completions) has brought free memory back above min. Tasks in
// PF_MEMALLOC state - kswapd, the swap path - are never throttled, and
// reserve=off throttles nobody. Returns 1 if the caller slept.
int throttle_direct_reclaim(void) {
  struct proc *p = myproc();
  if (params.reserve_off || !p || (p->flags & PF_MEMALLOC) || nfree() >= wmark.min / 2)
    return 0;
  kstats.reclaim_throttled++;
  throttled++;
  while (nfree() <= wmark.min && !p->killed) {
    swap_lowmem();  // kswapd must be awake to make the room
    sleep_blocked(&throttled);
  }
  throttled--;
  return 1;
}

// Fill the memory part of a meminfo record.
void kmeminfo(struct meminfo *mi) {
  mi->total = kstats.pages_total;
  mi->free = nfree();
  mi->min = wmark.min;
  mi->low = wmark.low;
  mi->high = wmark.high;
  for (int r = 0; r < NRESERVE; r++) {
    mi->reserve[r].limit = kstats.reserve_limit[r];
    mi->reserve[r].usage = kstats.reserve_usage[r];
    mi->reserve[r].peak = kstats.reserve_peak[r];
  }
  mi->reserve_allocs = kstats.reserve_allocs;
  mi->reserve_denied = kstats.reserve_denied;
  mi->pfmemalloc_drop = kstats.pfmemalloc_drop;
  mi->reclaim_throttled = kstats.reclaim_throttled;
  mi->reserve_off = params.reserve_off;
  mi->swap = swapstate != SWAP_OFF;
  mi->swapon = swapstate == SWAP_UP || swapstate == SWAP_IDLE || swapstate == SWAP_PROBING;
  mi->swap_used = kstats.swap_slots_used;
  mi->swapoffs = swapoffs;
  for (int u = 0; u < NFRAMEUSE; u++)
    mi->use[u] = kstats.pages[u];
}
