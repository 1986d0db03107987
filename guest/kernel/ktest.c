// In-kernel tests, run by the boot parameter `test` (or test=A,B for some):
// a kernel thread runs each test in the table, prints "PASS name",
// "FAIL name: why" or, for a test whose device the tree lacks, "SKIP name:
// why", and powers off with the number of failures as emu's exit status.
// tests/test_kernel.py (emu) and tests/test_kernel_qemu.py (QEMU) turn each
// line into a pytest result.
// Every test must give back all the memory it took: the runner fails a test
// that changes the number of free pages.
#include "types.h"
#include "riscv.h"
#include "memlayout.h"
#include "proc.h"
#include "trap.h"
#include "defs.h"
#include "net.h"

#define STR2(x) #x
#define STR(x) STR2(x)
// Fail the current test, naming the line and the condition.
#define CHECK(c)                                   \
  do {                                             \
    if (!(c))                                      \
      return "line " STR(__LINE__) ": " #c;        \
  } while (0)

#define NOSPAWN (-1000)
extern char etext[], erodata[], end[];

// Run the user program described by `cmd` (words separated by spaces) as a
// child of the test thread and wait for it. Returns its exit status, or
// NOSPAWN if it could not be started.
static int run(const char *cmd) {
  char buf[128], *argv[MAXARG + 1];
  int n = 0;
  strncpy(buf, cmd, sizeof buf - 1);
  buf[sizeof buf - 1] = 0;
  for (char *p = buf; *p && n < MAXARG;) {
    while (*p == ' ')
      *p++ = 0;
    if (!*p)
      break;
    argv[n++] = p;
    while (*p && *p != ' ')
      p++;
  }
  argv[n] = 0;
  int pid = spawn(argv[0], argv), st, w;
  if (pid < 0)
    return NOSPAWN;
  while ((w = wait(&st)) != pid)
    if (w < 0)
      return NOSPAWN;
  return st;
}

// -- physical memory ---------------------------------------------------------

static const char *t_kalloc(void) {
  uint64 before = nfree();
  uint8 *a = palloc(FRAME_KERNEL), *b = palloc(FRAME_KERNEL);
  CHECK(a && b && a != b);
  CHECK((uint64)a % PGSIZE == 0 && (uint64)b % PGSIZE == 0);
  CHECK((uint64)a >= (uint64)end && (uint64)b < platform.ram_base + kstats.pages_total * PGSIZE);
  CHECK(nfree() == before - 2);
  CHECK(pa2frame((uint64)a)->use == FRAME_KERNEL && frame2pa(pa2frame((uint64)a)) == (uint64)a);
  for (int i = 0; i < PGSIZE; i += 8)
    CHECK(*(uint64 *)(a + i) == 0);
  memset(a, 0xab, PGSIZE);
  pfree(a);
  CHECK(pa2frame((uint64)a)->use == FRAME_FREE);
  uint8 *c = palloc(FRAME_KSTACK);
  CHECK(c == a);  // the free list is LIFO
  CHECK(c[0] == 0 && c[PGSIZE - 1] == 0);
  CHECK(pa2frame((uint64)c)->use == FRAME_KSTACK);
  pfree(b);
  pfree(c);
  CHECK(nfree() == before);
  CHECK(pa2frame(platform.ram_base)->use == FRAME_RESERVED);
  CHECK(pa2frame(KERNEL_BASE)->use == FRAME_KIMAGE);
  CHECK(pa2frame(PGROUNDUP((uint64)end))->use == FRAME_FTABLE);  // the frame table itself
  uint64 sum = 0;
  for (int u = 0; u < NFRAMEUSE; u++)
    sum += kstats.pages[u];
  CHECK(sum == kstats.pages_total);
  return 0;
}

// Ordinary allocations stop at the min watermark: the reserve below it
// stays untouched.
static const char *t_kalloc_reserve(void) {
  uint64 before = nfree(), fails = kstats.alloc_fails, n = 0;
  void *list = 0, *p;
  while ((p = palloc(FRAME_KERNEL)) != 0) {
    *(void **)p = list;
    list = p;
    n++;
  }
  uint64 left = nfree();
  while (list) {
    p = list;
    list = *(void **)p;
    pfree(p);
  }
  CHECK(left == wmark.min);
  CHECK(n == before - wmark.min);
  CHECK(kstats.alloc_fails == fails + 1);
  CHECK(nfree() == before);
  return 0;
}

// -- memory reserves (docs/reserves.md) ---------------------------------------

// Take every page an ordinary allocation can get (down to min); chained
// through their first word. undrain() gives them back.
static void *drain(void) {
  void *list = 0, *p;
  while ((p = palloc(FRAME_KERNEL)) != 0) {
    *(void **)p = list;
    list = p;
  }
  return list;
}

static void undrain(void *list) {
  while (list) {
    void *p = list;
    list = *(void **)p;
    pfree(p);
  }
}

static void pfree0(void *p) {
  if (p)
    pfree(p);
}

static int pfm(void *p) { return p && (pa2frame((uint64)p)->flags & FR_RESERVE); }

// Entitlement: at min an ordinary allocation fails; GFP_MEMALLOC and a task
// in PF_MEMALLOC state get a pfmemalloc page; GFP_NOMEMALLOC wins over
// both; user pages never come from the reserve; reserve=off entitles nobody.
static const char *t_memalloc(void) {
  uint64 before = nfree(), allocs = kstats.reserve_allocs;
  uint64 use0 = kstats.reserve_usage[RESERVE_SWAP_IO];
  struct proc *me = myproc();
  void *list = drain();
  uint64 atmin = nfree();
  void *a = palloc(FRAME_KERNEL);
  void *b = palloc_flags(FRAME_KERNEL, GFP_MEMALLOC);
  uint64 charged = kstats.reserve_usage[RESERVE_SWAP_IO];
  void *c = palloc_flags(FRAME_KERNEL, GFP_MEMALLOC | GFP_NOMEMALLOC);
  int old = memalloc_save(RESERVE_SWAP_IO);
  int inmem = (me->flags & PF_MEMALLOC) != 0;
  void *d = palloc(FRAME_KERNEL);
  void *e = palloc_flags(FRAME_KERNEL, GFP_NOMEMALLOC);
  void *u = palloc(FRAME_USER);
  memalloc_restore(old);
  int outmem = (me->flags & PF_MEMALLOC) != 0;
  void *g = palloc(FRAME_KERNEL);
  params.reserve_off = 1;
  void *h = palloc_flags(FRAME_KERNEL, GFP_MEMALLOC);
  params.reserve_off = 0;
  uint64 left = nfree(), allocs1 = kstats.reserve_allocs;
  int pb = pfm(b), pd = pfm(d);
  pfree0(a), pfree0(b), pfree0(c), pfree0(d), pfree0(e), pfree0(u), pfree0(g), pfree0(h);
  undrain(list);
  CHECK(atmin == wmark.min);
  CHECK(!a && !c && !e && !u && !g && !h);
  CHECK(b && pb && d && pd);
  CHECK(inmem && !outmem);
  CHECK(charged == use0 + 1);
  CHECK(left == wmark.min - 2 && allocs1 == allocs + 2);
  CHECK(kstats.reserve_usage[RESERVE_SWAP_IO] == use0);
  CHECK(nfree() == before);
  return 0;
}

// Tagging: a kmalloc object from a reserve page reports it, and reserve
// slabs serve only entitled callers (an ordinary kmalloc at min fails even
// with a free object on a reserve slab).
static const char *t_pfmemalloc_tag(void) {
  uint64 before = nfree(), use0 = kstats.reserve_usage[RESERVE_AOE_RX];
  void *list = drain(), *objs = 0, *o;
  while ((o = kmalloc(2048)) != 0) {   // use up the ordinary 2048-byte slabs
    *(void **)o = objs;
    objs = o;
  }
  int ordinary = objs == 0 || !kmalloc_pfmemalloc(objs);
  void *r = kmalloc_flags(2048, GFP_MEMALLOC | GFP_RES(RESERVE_AOE_RX));
  uint64 charged = kstats.reserve_usage[RESERVE_AOE_RX];
  void *s = kmalloc(2048);
  void *t = kmalloc_flags(2048, GFP_MEMALLOC);
  void *big = kmalloc_flags(3000, GFP_MEMALLOC | GFP_RES(RESERVE_AOE_RX));
  void *bigo = kmalloc(3000);
  int rp = r && kmalloc_pfmemalloc(r), tp = t && kmalloc_pfmemalloc(t);
  int same = r && t && PGROUNDDOWN((uint64)r) == PGROUNDDOWN((uint64)t);
  int bp = big && kmalloc_pfmemalloc(big);
  if (r) kfree(r);
  if (s) kfree(s);
  if (t) kfree(t);
  if (big) kfree(big);
  if (bigo) kfree(bigo);
  while (objs) {
    o = objs;
    objs = *(void **)o;
    kfree(o);
  }
  undrain(list);
  CHECK(ordinary);
  CHECK(rp && tp && same && !s);
  CHECK(bp && !bigo);
  CHECK(charged == use0 + 1);
  CHECK(kstats.reserve_usage[RESERVE_AOE_RX] == use0);
  CHECK(nfree() == before);
  return 0;
}

// The reserve tree: limits split min; a reserve page is charged to the
// reserve its caller names (or the current memalloc section's), the peak
// keeps the high-water mark after the pages are freed.
static const char *t_reserve_tree(void) {
  CHECK(kstats.reserve_limit[RESERVE_SWAP_IO] + kstats.reserve_limit[RESERVE_AOE_TX] +
            kstats.reserve_limit[RESERVE_AOE_RX] == wmark.min);
  CHECK(kstats.reserve_limit[RESERVE_AOE_RX] > 0 && kstats.reserve_limit[RESERVE_SWAP_IO] > 0);
  // aoe_rx covers the RX ring (net.h), or all of min on a machine too small
  CHECK(kstats.reserve_limit[RESERVE_AOE_RX] ==
        (RX_RESERVE_PAGES < wmark.min ? RX_RESERVE_PAGES : wmark.min));
  uint64 before = nfree(), tx0 = kstats.reserve_usage[RESERVE_AOE_TX];
  uint64 io0 = kstats.reserve_usage[RESERVE_SWAP_IO];
  void *list = drain(), *p[3];
  for (int i = 0; i < 3; i++)
    p[i] = palloc_flags(FRAME_KERNEL, GFP_MEMALLOC | GFP_RES(RESERVE_AOE_TX));
  uint64 tx3 = kstats.reserve_usage[RESERVE_AOE_TX], peak3 = kstats.reserve_peak[RESERVE_AOE_TX];
  int old = memalloc_save(RESERVE_AOE_TX);
  int old2 = memalloc_save(RESERVE_SWAP_IO);   // sections nest
  void *q = palloc(FRAME_KERNEL);
  memalloc_restore(old2);
  void *q2 = palloc(FRAME_KERNEL);
  memalloc_restore(old);
  uint64 io1 = kstats.reserve_usage[RESERVE_SWAP_IO], tx5 = kstats.reserve_usage[RESERVE_AOE_TX];
  for (int i = 0; i < 3; i++)
    pfree0(p[i]);
  pfree0(q), pfree0(q2);
  undrain(list);
  CHECK(p[0] && p[1] && p[2] && q && q2);
  CHECK(tx3 == tx0 + 3 && peak3 >= tx3);
  CHECK(io1 == io0 + 1 && tx5 == tx0 + 4);
  CHECK(kstats.reserve_usage[RESERVE_AOE_TX] == tx0);
  CHECK(kstats.reserve_peak[RESERVE_AOE_TX] >= tx0 + 4);
  CHECK(kstats.reserve_usage[RESERVE_SWAP_IO] == io0);
  CHECK(nfree() == before);
  return 0;
}

// Reserve limits are enforced: a reserve at its limit gives no more pages
// (counted as reserve_denied), while another reserve still does.
static const char *t_reserve_limit(void) {
  uint64 before = nfree(), denied = kstats.reserve_denied;
  uint64 room = kstats.reserve_limit[RESERVE_AOE_TX] - kstats.reserve_usage[RESERVE_AOE_TX];
  void *list = drain(), *got = 0, *p;
  uint64 n = 0;
  while ((p = palloc_flags(FRAME_KERNEL, GFP_MEMALLOC | GFP_RES(RESERVE_AOE_TX))) != 0) {
    *(void **)p = got;
    got = p;
    n++;
  }
  uint64 usage = kstats.reserve_usage[RESERVE_AOE_TX], denied1 = kstats.reserve_denied;
  void *other = palloc_flags(FRAME_KERNEL, GFP_MEMALLOC | GFP_RES(RESERVE_SWAP_IO));
  pfree0(other);
  undrain(got);
  undrain(list);
  CHECK(n == room && usage == kstats.reserve_limit[RESERVE_AOE_TX]);
  CHECK(denied1 == denied + 1);
  CHECK(other != 0);
  CHECK(nfree() == before);
  return 0;
}

// Page fragments (RX buffers): carved from a page, the page goes back when
// the cache has moved on and its last fragment is freed; a fragment of a
// reserve page carries the mark, and a caller not entitled never gets one.
static const char *t_pfrag(void) {
  struct fragcache c = {0}, rc = {0};
  uint64 before = nfree(), nb0 = kstats.pages[FRAME_NETBUF];
  void *a = frag_alloc(&c, 1500, 0), *b = frag_alloc(&c, 1500, 0);
  void *d = frag_alloc(&c, 1500, 0);   // 2 x 1536 used: the third needs a new page
  int same = PGROUNDDOWN((uint64)a) == PGROUNDDOWN((uint64)b);
  int moved = PGROUNDDOWN((uint64)d) != PGROUNDDOWN((uint64)a);
  uint64 pages2 = kstats.pages[FRAME_NETBUF];
  frag_free(a);
  frag_free(b);
  uint64 after_ab = nfree();
  void *bad0 = frag_alloc(&c, 0, 0), *bad1 = frag_alloc(&c, PGSIZE + 1, 0);
  frag_free(d);
  frag_drain(&c);
  uint64 after_all = nfree();
  CHECK(a && b && d && same && moved && ((uint64)b - (uint64)a) % 64 == 0);
  CHECK(pages2 == nb0 + 2);
  CHECK(after_ab == before - 1);      // the first page is back
  CHECK(!bad0 && !bad1);
  CHECK(after_all == before && kstats.pages[FRAME_NETBUF] == nb0);
  // At min: an ordinary fragment needs a new page and fails; an entitled
  // one comes from the reserve and reports it; an ordinary caller then does
  // not get the rest of that reserve page.
  uint64 use0 = kstats.reserve_usage[RESERVE_AOE_RX];
  void *list = drain();
  void *o = frag_alloc(&rc, 2048, 0);
  void *r = frag_alloc(&rc, 2048, GFP_MEMALLOC | GFP_RES(RESERVE_AOE_RX));
  uint64 charged = kstats.reserve_usage[RESERVE_AOE_RX];
  int rp = r && frag_pfmemalloc(r);
  void *o2 = frag_alloc(&rc, 2048, 0);
  if (o) frag_free(o);
  if (o2) frag_free(o2);
  if (r) frag_free(r);
  frag_drain(&rc);
  undrain(list);
  CHECK(!o && rp && !o2);
  CHECK(charged == use0 + 1 && kstats.reserve_usage[RESERVE_AOE_RX] == use0);
  CHECK(nfree() == before);
  return 0;
}

// Throttling: below min/2 an ordinary task about to reclaim sleeps until
// free memory is back above min; PF_MEMALLOC tasks and reserve=off are
// never throttled. A kernel thread plays the background reclaimer.
static void *room_list;
static volatile int room_go;

static void room_maker(void) {
  while (!room_go)
    sleep((void *)&room_go);
  undrain(room_list);
  room_list = 0;
}

static const char *t_throttle(void) {
  uint64 before = nfree(), th0 = kstats.reclaim_throttled;
  room_go = 0;
  int pid = kthread("roommaker", room_maker), st;   // its stack before memory runs out
  CHECK(pid > 0);
  void *list = drain(), *res = 0, *p;
  int ok_above = throttle_direct_reclaim() == 0;      // at min, not below min/2
  for (int r = 0; r < NRESERVE && nfree() >= wmark.min / 2; r++)
    while (nfree() >= wmark.min / 2 && (p = palloc_flags(FRAME_KERNEL, GFP_MEMALLOC | GFP_RES(r)))) {
      *(void **)p = res;
      res = p;
    }
  uint64 low = nfree();
  int old = memalloc_save(RESERVE_SWAP_IO);
  int ok_memalloc = throttle_direct_reclaim() == 0;
  memalloc_restore(old);
  params.reserve_off = 1;
  int ok_off = throttle_direct_reclaim() == 0;
  params.reserve_off = 0;
  uint64 th1 = kstats.reclaim_throttled;
  // The room maker gives back the reserve pages and one more: above min.
  room_list = res;
  p = list;
  list = *(void **)list;
  *(void **)p = room_list;
  room_list = p;
  room_go = 1;
  wakeup((void *)&room_go);
  int slept = throttle_direct_reclaim();
  uint64 woke = nfree();
  CHECK(wait(&st) == pid && st == 0);
  undrain(list);
  CHECK(ok_above && ok_memalloc && ok_off && th1 == th0);
  CHECK(low < wmark.min / 2);
  CHECK(slept == 1 && kstats.reclaim_throttled == th0 + 1 && woke > wmark.min);
  CHECK(nfree() == before);
  return 0;
}

// Pools: AoE request state and frame headers come from the initiator's
// fixed pool (bios from the block layer's), so I/O - retransmits included
// - allocates nothing: kmalloc and kernel pages stay as they were. A full
// pool refuses at once (the I/O fails, nothing is allocated) and is whole
// again once the I/O completes. Run under a lossy link
// (tests/test_reserves.py) this covers retransmits too.
#define POOL_BIOS 33
static void pool_done(struct bio *b) { wakeup(b); }

static const char *t_aoe_pool(void) {
  CHECK(swap_active());
  static struct bio *b[POOL_BIOS];
  static uint8 *pg[POOL_BIOS][8];
  uint64 before = nfree();
  for (int i = 0; i < POOL_BIOS; i++) {
    b[i] = bio_alloc();
    CHECK(b[i]);
    for (int j = 0; j < 8; j++) {
      pg[i][j] = palloc(FRAME_KERNEL);
      CHECK(pg[i][j]);
      for (int k = 0; k < PGSIZE / 8; k++)
        ((uint64 *)pg[i][j])[k] = (uint64)i << 32 | j << 16 | k;
    }
  }
  uint64 km = kstats.pages[FRAME_KMALLOC], kern = kstats.pages[FRAME_KERNEL];
  uint64 allocs = kstats.reserve_allocs;
  // 8 pages a bio: at MTU 9000 four frames (2 pages each), at 1500 32; the
  // pool (128 requests) takes 32 bios at 9000 or 4 at 1500.
  int queued = 0, refused = 0;
  for (int i = 0; i < POOL_BIOS; i++) {
    b[i]->write = 1;
    b[i]->sector = 4096 + i * 64;
    b[i]->nsect = 64;
    b[i]->npages = 8;
    b[i]->done = pool_done;
    for (int j = 0; j < 8; j++)
      b[i]->pages[j] = pg[i][j];
    int room = aoe_can_queue(64);
    submit_bio(b[i]);
    if (room)
      queued++;
    else if (b[i]->complete && b[i]->error)
      refused++;
  }
  int full = !aoe_can_queue(64);
  for (int i = 0; i < POOL_BIOS; i++)
    bio_wait(b[i]);
  int werr = 0;
  for (int i = 0; i < queued; i++)
    werr += b[i]->error != 0;
  // Read the written bios back into cleared pages.
  for (int i = 0; i < queued; i++) {
    for (int j = 0; j < 8; j++)
      memset(pg[i][j], 0, PGSIZE);
    b[i]->write = 0;
    b[i]->complete = 0;
    submit_bio(b[i]);
  }
  int rerr = 0, bad = 0;
  for (int i = 0; i < queued; i++) {
    bio_wait(b[i]);
    rerr += b[i]->error != 0;
    for (int j = 0; j < 8; j++)
      for (int k = 0; k < PGSIZE / 8; k++)
        bad += ((uint64 *)pg[i][j])[k] != ((uint64)i << 32 | j << 16 | k);
  }
  int whole = aoe_can_queue(64 * queued);  // all the room the pool had
  uint64 km1 = kstats.pages[FRAME_KMALLOC], kern1 = kstats.pages[FRAME_KERNEL];
  for (int i = 0; i < POOL_BIOS; i++) {
    for (int j = 0; j < 8; j++)
      pfree(pg[i][j]);
    bio_free(b[i]);
  }
  CHECK(queued >= 4 && refused == POOL_BIOS - queued && full);
  CHECK(werr == 0 && rerr == 0 && bad == 0);
  CHECK(whole);
  CHECK(km1 == km && kern1 == kern && kstats.reserve_allocs == allocs);
  CHECK(nfree() == before);
  return 0;
}

static const char *t_watermarks(void) {
  CHECK(min_free_kbytes(16384) == 512);      // 16 MiB -> 512 KiB (Linux's table)
  CHECK(min_free_kbytes(1024) == 128);       // clamped up
  CHECK(min_free_kbytes(1UL << 40) == 65536);  // clamped down
  CHECK(min_free_kbytes(65536) == 1024);
  CHECK(wmark.min > 0 && wmark.low == wmark.min + wmark.min / 4);
  CHECK(wmark.high == wmark.min + wmark.min / 2);
  CHECK(kstats.wmark_min == wmark.min && kstats.wmark_high == wmark.high);
  if (!params.min_free_kb)
    CHECK(wmark.min <= min_free_kbytes(kstats.pages_total * 4) / 4);
  return 0;
}

static const char *t_kmalloc(void) {
  uint64 before = nfree(), slabs = kstats.pages[FRAME_KMALLOC];
  static const uint64 sizes[] = {1, 8, 16, 17, 100, 128, 500, 1024, 2048};
  void *obj[9];
  for (int i = 0; i < 9; i++) {
    uint64 n = sizes[i], cls = 16;
    while (cls < n)
      cls <<= 1;
    uint8 *p = obj[i] = kmalloc(n);
    CHECK(p != 0);
    CHECK((uint64)p % cls == 0);
    CHECK(pa2frame((uint64)p)->use == FRAME_KMALLOC);
    for (uint64 j = 0; j < n; j++)
      CHECK(p[j] == 0);
    memset(p, 0x5a, n);
  }
  for (int i = 0; i < 9; i++)
    for (int j = 0; j < 9; j++)
      CHECK(i == j || obj[i] != obj[j]);
  for (int i = 0; i < 9; i++)
    kfree(obj[i]);
  CHECK(kstats.pages[FRAME_KMALLOC] == slabs);

  // 300 objects of 32 bytes span three slabs; freeing them all gives every
  // slab back, and a freed object is the next one handed out.
  void *list = 0;
  for (int i = 0; i < 300; i++) {
    void **p = kmalloc(32);
    CHECK(p != 0);
    *p = list;
    list = p;
  }
  CHECK(kstats.pages[FRAME_KMALLOC] >= slabs + 3);
  void *first = list;
  list = *(void **)first;
  kfree(first);
  CHECK(kmalloc(32) == first);
  kfree(first);
  while (list) {
    void *p = list;
    list = *(void **)p;
    kfree(p);
  }
  CHECK(kstats.pages[FRAME_KMALLOC] == slabs);
  CHECK(nfree() == before);
  return 0;
}

static const char *t_kmalloc_page(void) {
  uint64 before = nfree();
  void *a = kmalloc(3000), *b = kmalloc(PGSIZE);
  CHECK(a && b && (uint64)a % PGSIZE == 0 && (uint64)b % PGSIZE == 0);
  CHECK(kmalloc(PGSIZE + 1) == 0);
  CHECK(kmalloc(0) == 0);
  kfree(a);
  kfree(b);
  CHECK(nfree() == before);
  return 0;
}

// -- address spaces ------------------------------------------------------------

static const char *t_kernel_map(void) {
  pagetable_t k = kernel_pagetable;
  int level;
  pte_t *pte = walkleaf(k, KERNEL_BASE, &level);
  CHECK(pte && (*pte & (PTE_R | PTE_X)) == (PTE_R | PTE_X) && !(*pte & PTE_W));
  pte = walkleaf(k, (uint64)etext, &level);
  CHECK(pte && (*pte & PTE_R) && !(*pte & (PTE_W | PTE_X)));
  pte = walkleaf(k, (uint64)erodata, &level);
  CHECK(pte && (*pte & (PTE_R | PTE_W)) == (PTE_R | PTE_W) && !(*pte & PTE_X));
  uint64 ramend = platform.ram_base + kstats.pages_total * PGSIZE;
  pte = walkleaf(k, ramend - 1, &level);
  CHECK(pte && (*pte & PTE_W) && !(*pte & PTE_X));
  CHECK(ramend < 2 * MEGAPAGE + (uint64)end || level == 1);
  CHECK(walkleaf(k, platform.ram_base, &level) == 0);   // the firmware's region
  CHECK(walkleaf(k, KERNEL_BASE - 1, &level) == 0);
  pte = walkleaf(k, platform.uart.base, &level);
  CHECK(pte && (*pte & PTE_W) && !(*pte & PTE_X));
  pte = walkleaf(k, platform.plic.base + platform.plic.size - 1, &level);
  CHECK(pte && (*pte & PTE_W) && !(*pte & PTE_X));
  CHECK(walkleaf(k, 0, &level) == 0);
  CHECK(walkleaf(k, USER_BASE, &level) == 0);
  CHECK(walkleaf(k, ramend, &level) == 0);
  CHECK(!(k[PX(2, USER_BASE)] & PTE_V));
  // No kernel leaf is user-accessible, and all are global.
  for (int i = 0; i < 512; i++) {
    if (!(k[i] & PTE_V))
      continue;
    pagetable_t l1 = (pagetable_t)PTE2PA(k[i]);
    for (int j = 0; j < 512; j++) {
      if (!(l1[j] & PTE_V))
        continue;
      if (l1[j] & (PTE_R | PTE_W | PTE_X)) {
        CHECK(!(l1[j] & PTE_U) && (l1[j] & PTE_G));
        continue;
      }
      pagetable_t l0 = (pagetable_t)PTE2PA(l1[j]);
      for (int m = 0; m < 512; m++)
        CHECK(!(l0[m] & PTE_V) || (!(l0[m] & PTE_U) && (l0[m] & PTE_G)));
    }
  }
  return 0;
}

static struct proc fake;  // an address space without a process around it
static const uint8 image[6000] = {[0] = 1, [1000] = 2, [4096] = 3, [5999] = 4};

static void fakeinit(void) {
  memset(&fake, 0, sizeof fake);
  strncpy(fake.name, "fake", PROCNAME - 1);
  fake.pagetable = uvmcreate();
  fake.vma[0] = (struct vma){.kind = VMA_DATA, .perm = PTE_R | PTE_W, .start = USER_BASE,
                             .end = USER_BASE + 4 * PGSIZE, .file = image,
                             .fileva = USER_BASE + 100, .filesz = sizeof image};
  fake.vma[1] = (struct vma){.kind = VMA_TEXT, .perm = PTE_R | PTE_X,
                             .start = USER_BASE + 8 * PGSIZE, .end = USER_BASE + 9 * PGSIZE};
}

static const char *t_pagetable(void) {
  uint64 before = nfree();
  uint64 zero = kstats.faults[FAULT_ZERO], img = kstats.faults[FAULT_IMAGE];
  uint64 bad = kstats.faults[FAULT_BAD], prot = kstats.faults[FAULT_PROT];
  fakeinit();
  pagetable_t pt = fake.pagetable;
  CHECK(pt != 0);
  for (int i = 0; i < 512; i++)
    CHECK(i == PX(2, USER_BASE) ? pt[i] == 0 : pt[i] == kernel_pagetable[i]);

  // First touch: the page holding image bytes 0..3995 at offset 100.
  CHECK(vmfault(&fake, USER_BASE + 8, CAUSE_LOAD_PF) == VMF_OK);
  pte_t *pte = walk(pt, USER_BASE, 0);
  CHECK(pte && (*pte & (PTE_V | PTE_U | PTE_R | PTE_W)) == (PTE_V | PTE_U | PTE_R | PTE_W));
  CHECK(!(*pte & (PTE_X | PTE_G)));
  uint8 *page = (uint8 *)PTE2PA(*pte);
  struct frame *f = pa2frame((uint64)page);
  CHECK(f->use == FRAME_USER && f->ref == 1 && (f->flags & FR_IMAGE));
  CHECK(f->user.proc == &fake && f->user.va == USER_BASE);
  CHECK(page[99] == 0 && page[100] == 1 && page[1100] == 2);
  CHECK(fake.rss == 1 && kstats.faults[FAULT_IMAGE] == img + 1);
  // The second page ends the image 1904 bytes in; the third is all zero.
  CHECK(vmfault(&fake, USER_BASE + PGSIZE, CAUSE_STORE_PF) == VMF_OK);
  page = (uint8 *)PTE2PA(*walk(pt, USER_BASE + PGSIZE, 0));
  CHECK(page[4196 - PGSIZE] == 3 && page[6099 - PGSIZE] == 4 && page[6100 - PGSIZE] == 0);
  CHECK(vmfault(&fake, USER_BASE + 2 * PGSIZE + 5, CAUSE_STORE_PF) == VMF_OK);
  CHECK(kstats.faults[FAULT_ZERO] == zero + 1 && kstats.faults[FAULT_IMAGE] == img + 2);
  CHECK(!(pa2frame(PTE2PA(*walk(pt, USER_BASE + 2 * PGSIZE, 0)))->flags & FR_IMAGE));
  // Bad and forbidden accesses.
  CHECK(vmfault(&fake, USER_BASE + 4 * PGSIZE, CAUSE_LOAD_PF) == VMF_SEGV);
  CHECK(vmfault(&fake, 0, CAUSE_LOAD_PF) == VMF_SEGV);
  CHECK(vmfault(&fake, KERNEL_BASE, CAUSE_LOAD_PF) == VMF_SEGV);
  CHECK(vmfault(&fake, USER_BASE, CAUSE_FETCH_PF) == VMF_SEGV);
  CHECK(vmfault(&fake, USER_BASE + 8 * PGSIZE, CAUSE_STORE_PF) == VMF_SEGV);
  CHECK(kstats.faults[FAULT_BAD] == bad + 3 && kstats.faults[FAULT_PROT] == prot + 2);
  CHECK(fake.rss == 3);
  // Unmapping frees the page; the region still demand-zeroes it again.
  uint64 mid = nfree();
  uvmunmap(&fake, USER_BASE + PGSIZE, 1);
  CHECK(nfree() == mid + 1 && fake.rss == 2 && !(*walk(pt, USER_BASE + PGSIZE, 0) & PTE_V));
  uvmfree(&fake);
  CHECK(fake.pagetable == 0 && fake.rss == 0);
  CHECK(nfree() == before);
  return 0;
}

// copyin/copyout validate every byte against the regions, fault pages in,
// and fail cleanly on anything else.
static const char *t_copyio(void) {
  uint64 before = nfree();
  fakeinit();
  char buf[64], in[64];
  for (int i = 0; i < 64; i++)
    buf[i] = i + 1;
  uint64 edge = USER_BASE + 3 * PGSIZE - 32;  // straddles pages 2 and 3
  CHECK(copyout(&fake, edge, buf, 64) == 0);
  CHECK(fake.rss == 2);
  pte_t *pte = walk(fake.pagetable, edge, 0);
  CHECK((*pte & (PTE_A | PTE_D)) == (PTE_A | PTE_D));  // the kernel wrote it
  CHECK(copyin(&fake, in, edge, 64) == 0 && memcmp(in, buf, 64) == 0);
  CHECK(copyout(&fake, USER_BASE + 4 * PGSIZE - 8, buf, 16) == -1);  // runs off the region
  uint8 *last = (uint8 *)PTE2PA(*walk(fake.pagetable, USER_BASE + 3 * PGSIZE, 0));
  CHECK(last[PGSIZE - 8] == 0 && last[PGSIZE - 1] == 0);  // nothing was written
  CHECK(copyout(&fake, USER_BASE, buf, 1) == 0 && fake.rss == 3);
  CHECK(copyout(&fake, 0, buf, 1) == -1);
  CHECK(copyout(&fake, KERNEL_BASE, buf, 1) == -1);
  CHECK(copyout(&fake, USER_BASE + 8 * PGSIZE, buf, 1) == -1);  // text: not writable
  CHECK(copyin(&fake, in, USER_BASE + 8 * PGSIZE, 8) == 0);    // but readable
  CHECK(copyout(&fake, ~0UL - 8, buf, 64) == -1);              // wraps around
  CHECK(copyin(&fake, in, USER_BASE + 4 * PGSIZE, 1) == -1);
  CHECK(copyout(&fake, edge, "hello", 6) == 0);
  CHECK(copyinstr(&fake, in, edge, sizeof in) == 5 && strcmp(in, "hello") == 0);
  CHECK(copyinstr(&fake, in, edge, 5) == -1);  // no NUL within 5 bytes
  CHECK(copyout(&fake, USER_BASE + 4 * PGSIZE - 1, "x", 1) == 0);
  CHECK(copyinstr(&fake, in, USER_BASE + 4 * PGSIZE - 1, 8) == -1);  // runs off the region
  uvmfree(&fake);
  CHECK(nfree() == before);
  return 0;
}

// -- processes from user programs ------------------------------------------

// Text is mapped from the embedded image, shared and read-only; data is a
// private copy made on first touch.
static const char *t_image_map(void) {
  uint64 before = nfree();
  const struct prog *pg = findprog("hello");
  CHECK(pg && (uint64)pg->start % PGSIZE == 0 && pa2frame((uint64)pg->start)->use == FRAME_IMAGE);
  static struct proc two[2];
  char *argv[] = {"hello", 0};
  uint64 text = 0;
  for (int i = 0; i < 2; i++) {
    fakeinit();
    fake.tf = kmalloc(sizeof *fake.tf);
    CHECK(fake.tf && loadprog(&fake, pg, argv) == 0);
    CHECK(vmfault(&fake, fake.tf->sepc, CAUSE_FETCH_PF) == VMF_OK);
    pte_t *pte = walk(fake.pagetable, fake.tf->sepc, 0);
    CHECK(pte && (*pte & (PTE_R | PTE_X | PTE_U)) == (PTE_R | PTE_X | PTE_U) && !(*pte & PTE_W));
    struct frame *f = pa2frame(PTE2PA(*pte));
    CHECK(f->use == FRAME_IMAGE && f->ref == i + 1);
    CHECK(i == 0 || PTE2PA(*pte) == text);  // the same image page for both
    text = PTE2PA(*pte);
    kfree(fake.tf);
    two[i] = fake;
  }
  CHECK(nfree() < before);  // page tables and the argv page, not text
  for (int i = 0; i < 2; i++)
    uvmfree(&two[i]);
  CHECK(pa2frame(text)->ref == 0);
  CHECK(nfree() == before);
  return 0;
}

static const char *t_demand_zero(void) {
  uint64 zero = kstats.faults[FAULT_ZERO];
  CHECK(run("memtouch pages=32") == 0);
  CHECK(kstats.faults[FAULT_ZERO] >= zero + 32);
  return 0;
}

static const char *t_image_paging(void) {
  uint64 img = kstats.faults[FAULT_IMAGE];
  CHECK(run("hello image") == 0);
  uint64 once = kstats.faults[FAULT_IMAGE] - img;
  CHECK(once >= 2);  // text mapped and data copied, each on first touch
  CHECK(run("hello again") == 0);
  CHECK(kstats.faults[FAULT_IMAGE] - img == 2 * once);  // each process maps its own
  CHECK(kstats.faults[FAULT_SPURIOUS] == 0);
  return 0;
}

static const char *t_segfault(void) {
  uint64 segv = kstats.segfaults, bad = kstats.faults[FAULT_BAD];
  uint64 prot = kstats.faults[FAULT_PROT];
  CHECK(run("segv null") == -1);
  CHECK(run("segv kernel") == -1);
  CHECK(run("segv guard") == -1);
  CHECK(run("segv text") == -1);
  CHECK(run("segv exec") == -1);
  CHECK(kstats.segfaults == segv + 5);
  CHECK(kstats.faults[FAULT_BAD] == bad + 3 && kstats.faults[FAULT_PROT] == prot + 2);
  CHECK(run("hello after segfaults") == 0);
  return 0;
}

static const char *t_oom(void) {
  uint64 kills = kstats.oom_kills;
  CHECK(run("memtouch pages=100000") == -1);  // more than RAM: killed, not hung
  CHECK(kstats.oom_kills == kills + 1);
  CHECK(run("memtouch pages=16") == 0);  // and the memory came back
  return 0;
}

static const char *t_sched_rr(void) {
  uint64 preempt = kstats.preempt, ctxsw = kstats.ctxsw, quantum = tick_ns;
  char *argv[] = {"spin", "300000", 0};
  int pids[3], st, ok = 1;
  // A 100 us quantum: each child computes for many of them on emu (2.4 ms
  // of virtual time) and on QEMU (about 1 ms of real time) alike.
  tick_ns = 100000;
  for (int i = 0; i < 3; i++)
    ok &= (pids[i] = spawn("spin", argv)) > 0;
  for (int i = 0; i < 3; i++)
    ok &= wait(&st) > 0 && st == 0;
  tick_ns = quantum;
  CHECK(ok);
  CHECK(wait(&st) == -1);
  // Three CPU-bound children with no system calls: only the timer can have
  // moved the hart between them.
  CHECK(kstats.preempt >= preempt + 3);
  CHECK(kstats.ctxsw >= ctxsw + 6);
  return 0;
}

static const char *t_sleep(void) {
  uint64 t0 = now_ns();
  sleepuntil(t0 + 5000000);
  uint64 t1 = now_ns();
  CHECK(t1 >= t0 + 5000000);
  // The interrupt that woke us was the one set for the deadline itself (how
  // late it came is the machine's: none on emu, the host's on QEMU).
  CHECK(timer_fired == t0 + 5000000);
  return 0;
}

static volatile int pingpong;

static void ponger(void) {
  for (int i = 0; i < 3; i++) {
    while (pingpong % 2 == 0)
      sleep((void *)&pingpong);
    pingpong++;
    wakeup((void *)&pingpong);
  }
}

static const char *t_wakeup(void) {
  pingpong = 0;
  int pid = kthread("ponger", ponger), st;
  CHECK(pid > 0);
  for (int i = 0; i < 3; i++) {
    pingpong++;
    wakeup((void *)&pingpong);
    while (pingpong % 2)
      sleep((void *)&pingpong);
  }
  CHECK(pingpong == 6);
  CHECK(wait(&st) == pid && st == 0);
  return 0;
}

static const char *t_syscalls(void) {
  uint64 unknown = kstats.syscalls[0], sleeps = kstats.syscalls[SYS_sleep];
  CHECK(run("systest syscalls") == 0);
  CHECK(kstats.syscalls[0] == unknown + 2);
  CHECK(kstats.syscalls[SYS_sleep] == sleeps + 3);
  return 0;
}

static const char *t_badptr(void) {
  CHECK(run("systest badptr") == 0);
  return 0;
}

static const char *t_spawn_args(void) {
  CHECK(run("systest args a bb ccc dddd eeeee") == 0);
  CHECK(run("nosuch") == NOSPAWN);
  char *many[MAXARG + 2];
  for (int i = 0; i <= MAXARG; i++)
    many[i] = "x";
  many[MAXARG + 1] = 0;
  CHECK(spawn("hello", many) == -1);
  static char big[ARGMAX];
  memset(big, 'a', sizeof big - 1);
  char *toobig[] = {"hello", big, 0};
  CHECK(spawn("hello", toobig) == -1);
  return 0;
}

static const char *t_proc_limit(void) {
  char *argv[] = {"spin", "1", 0};
  int used = 0, n = 0, st;
  for (int i = 0; i < NPROC; i++)
    used += proc[i].state != UNUSED;
  while (spawn("spin", argv) > 0)
    n++;
  CHECK(n == NPROC - used);
  while (n > 0 && wait(&st) > 0 && st == 0)
    n--;
  CHECK(n == 0);
  int after = 0;
  for (int i = 0; i < NPROC; i++)
    after += proc[i].state != UNUSED;
  CHECK(after == used);
  return 0;
}

static const char *t_forktest(void) {
  CHECK(run("forktest workers=4 work=50000") == 0);
  return 0;
}

static const char *t_params(void) {
  struct params saved = params;
  CHECK(paraminit("tick_us=500 test=a,b ktest_unknown=1 init=hello x y") == 1);
  CHECK(params.tick_us == 500 && params.test && strcmp(params.tests, "a,b") == 0);
  CHECK(params.initargc == 3 && strcmp(params.initargv[0], "hello") == 0);
  CHECK(strcmp(params.initargv[2], "y") == 0 && params.initargv[3] == 0);
  CHECK(paraminit("tick_us=fast min_free_kb=1") == 2);
  CHECK(params.tick_us == 0 && params.min_free_kb == 0);
  CHECK(paraminit("  panic   min_free_kb=1024 reserve=off") == 0);
  CHECK(params.panic && params.min_free_kb == 1024 && params.reserve_off);
  CHECK(paraminit("") == 0 && !params.test && params.initargc == 0);
  params = saved;
  return 0;
}

// -- the device tree and the platform ------------------------------------------

// The reader on the live tree, and what platform.c took from it.
static const char *t_fdt(void) {
  const uint8 *blob = (const uint8 *)platform.fdt;
  CHECK(fdt_check(blob) == 0 && fdt32(blob) == 0xd00dfeed);
  uint64 ramend = platform.ram_base + platform.ram_size;
  CHECK(platform.fdt < platform.ram_base || platform.fdt >= ramend ||
        pa2frame(platform.fdt)->use == FRAME_RESERVED);   // kept where it is
  // A damaged header is refused: magic, a version before 17, a block
  // running past totalsize.
  static uint8 hdr[40];
  memcpy(hdr, blob, sizeof hdr);
  hdr[3] ^= 1;
  CHECK(fdt_check(hdr) == -1);
  memcpy(hdr, blob, sizeof hdr);
  hdr[23] = 16;
  CHECK(fdt_check(hdr) == -1);
  memcpy(hdr, blob, sizeof hdr);
  hdr[4] = hdr[5] = hdr[6] = 0;
  hdr[7] = 64;
  CHECK(fdt_check(hdr) == -1);
  int depth = 0, root = fdt_next_node(-1, &depth);
  CHECK(root >= 0 && depth == 0 && fdt_name(root)[0] == 0 && fdt_parent(root) == -1);
  int cpus = fdt_subnode(root, "cpus");
  CHECK(cpus >= 0 && fdt_parent(cpus) == root);
  CHECK(fdt_getu32(cpus, "timebase-frequency", 0) == platform.timebase_hz);
  CHECK(fdt_getprop(cpus, "no-such-property", 0) == 0 && fdt_getu32(cpus, "no-such", 7) == 7);
  CHECK(fdt_subnode(root, "no-such-node") == -1);
  // "memory" finds memory@...; its reg is the RAM the kernel runs in.
  uint64 base, size;
  int mem = fdt_subnode(root, "memory");
  CHECK(mem >= 0 && fdt_reg(mem, 0, &base, &size) == 0);
  CHECK(base == platform.ram_base && size == platform.ram_size);
  // One UART, on a bus under the root; its interrupt parent is the PLIC.
  int uart = fdt_find_compatible(-1, "ns16550a");
  CHECK(uart >= 0 && fdt_find_compatible(uart, "ns16550a") == -1);
  CHECK(fdt_parent(uart) != root && fdt_parent(fdt_parent(uart)) == root);
  CHECK(fdt_reg(uart, 0, &base, &size) == 0 && base == platform.uart.base);
  CHECK(fdt_reg(uart, 1, &base, &size) == -1);
  CHECK(fdt_getu32(uart, "interrupts", 0) == platform.uart.irq);
  int plic = fdt_find_phandle(fdt_getu32(uart, "interrupt-parent", 0));
  CHECK(plic >= 0 && fdt_reg(plic, 0, &base, &size) == 0 && base == platform.plic.base);
  CHECK(fdt_find_phandle(0) == -1);
  int len;
  const char *args = fdt_getprop(fdt_subnode(root, "chosen"), "bootargs", &len);
  CHECK(args && len == (int)strlen(platform.bootargs) + 1 && strcmp(args, platform.bootargs) == 0);
  // The whole walk: every node is its parent's child of that name.
  int n = 0;
  depth = 0;
  for (int x = fdt_next_node(-1, &depth); x >= 0; x = fdt_next_node(x, &depth), n++)
    CHECK(x == root || fdt_subnode(fdt_parent(x), fdt_name(x)) == x);
  CHECK(n >= 8 && depth == 0);
  return 0;
}

// tb2ns and ns2tb at timebase hz: exact on whole seconds and a year, and
// ns2tb(t) is the first unit at or after t (a timer never fires early,
// never a unit late).
static const char *timebase_at(uint64 hz) {
  static const uint64 ts[] = {0, 1, 99, 100, 101, 999999999, 1000000001, 31536000000012345UL};
  CHECK(tb2ns(hz) == 1000000000UL && ns2tb(1000000000UL) == hz);
  CHECK(tb2ns(hz * 31536000) == 31536000000000000UL);   // a year, no overflow
  for (uint64 i = 0; i < sizeof ts / sizeof ts[0]; i++) {
    uint64 tb = ns2tb(ts[i]);
    CHECK(tb2ns(tb) >= ts[i]);
    CHECK(tb == 0 || tb2ns(tb - 1) < ts[i]);
  }
  return 0;
}

// Time at any timebase: the tree's, QEMU's and emu's 10 MHz, emu's old
// 1 GHz, a 32768 Hz clock, 3 Hz; and the clock moves forward.
static const char *t_timebase(void) {
  static const uint64 hz[] = {0, 10000000, 1000000000, 32768, 3};
  uint64 saved = platform.timebase_hz;
  for (uint64 i = 0; i < sizeof hz / sizeof hz[0]; i++) {
    platform.timebase_hz = hz[i] ? hz[i] : saved;
    const char *why = timebase_at(platform.timebase_hz);
    platform.timebase_hz = saved;
    if (why)
      return why;
  }
  uint64 a = now_ns();
  for (volatile int i = 0; i < 100000; i++)
    ;
  CHECK(now_ns() > a);
  return 0;
}

// plic_enable sets one bit in our context's enable word for the source
// (source / 32: with 96 sources, three words) and its priority to 1.
static const char *t_plic(void) {
  static const uint32 srcs[] = {1, 31, 32, 63, 64, 95};
  volatile uint32 *en = (volatile uint32 *)(platform.plic.base + PLIC_ENABLE +
                                            PLIC_ENABLE_STRIDE * platform.plic.ctx);
  volatile uint32 *prio = (volatile uint32 *)(platform.plic.base + PLIC_PRIORITY);
  int tried = 0;
  for (uint64 i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
    uint32 s = srcs[i], w = s / 32, bit = 1U << (s % 32);
    if (s > platform.plic.ndev || (en[w] & bit))
      continue;   // not on this PLIC, or a driver's
    uint32 before[3] = {en[0], en[1], en[2]}, p = prio[s];
    plic_enable(s);
    uint32 after[3] = {en[0], en[1], en[2]}, q = prio[s];
    en[w] = before[w];
    prio[s] = p;
    for (uint32 k = 0; k < 3; k++)
      CHECK(after[k] == (k == w ? before[k] | bit : before[k]));
    CHECK(q == 1);
    tried++;
  }
  CHECK(tried >= 2);
  return 0;
}

// The table: tests/test_kernel.py reads the names from here.

// nb_copy gathers across RX fragments and refuses to read past the frame.
static const char *t_nbuf(void) {
  static uint8 a[5] = {1, 2, 3, 4, 5}, b[3] = {6, 7, 8}, c[2] = {9, 10};
  struct nbuf nb = {3, {a, b, c}, {5, 3, 2}, 10};
  uint8 out[10];
  CHECK(nb_copy(&nb, 0, out, 10) == 0);
  for (int i = 0; i < 10; i++)
    CHECK(out[i] == i + 1);
  CHECK(nb_copy(&nb, 4, out, 3) == 0 && out[0] == 5 && out[1] == 6 && out[2] == 7);
  CHECK(nb_copy(&nb, 8, out, 2) == 0 && out[0] == 9 && out[1] == 10);
  CHECK(nb_copy(&nb, 8, out, 3) == -1);
  CHECK(nb_copy(&nb, 0xffffffffU, out, 2) == -1);
  return 0;
}

// The net core drops and counts runts and unknown ethertypes; AoE replies
// whose tag is not a live request's are dropped and counted.
static const char *t_net_drops(void) {
  static uint8 f[64];
  struct nbuf nb = {1, {f}, {60}, 60};
  uint64 unk = kstats.net_drop_unknown_type, runt = kstats.net_drop_runt;
  memset(f, 0, sizeof f);
  f[12] = 0x08;  // IPv4: nobody here takes it
  net_rx(&nb);
  CHECK(kstats.net_drop_unknown_type == unk + 1);
  nb.len = nb.flen[0] = 10;
  net_rx(&nb);
  CHECK(kstats.net_drop_runt == runt + 1);
  // An AoE response with a tag from request slot 3, generation 7: not live.
  uint64 stale = kstats.aoe_stale, unknown = kstats.aoe_unknown, replies = kstats.aoe_replies;
  nb.len = nb.flen[0] = 60;
  f[12] = 0x88;
  f[13] = 0xa2;
  f[14] = 0x18;             // version 1, response
  f[19] = 0;                // ATA
  f[20] = 3;
  f[21] = 7;
  net_rx(&nb);
  CHECK(kstats.aoe_stale == stale + 1);
  f[20] = 200;              // no such request slot
  net_rx(&nb);
  CHECK(kstats.aoe_unknown == unknown + 1);
  f[14] = 0x10;             // a request, not a response (someone's broadcast)
  net_rx(&nb);
  CHECK(kstats.aoe_unknown == unknown + 2 && kstats.aoe_replies == replies);
  return 0;
}

// The drop rule: a frame in a reserve-backed buffer goes only to AoE
// (processed in PF_MEMALLOC state, which ends with it); anything else is
// dropped and counted as pfmemalloc_drop, not as an unknown ethertype.
static const char *t_pfmemalloc_drop(void) {
  static uint8 f[64];
  struct nbuf nb = {1, {f}, {60}, 60, 1};
  uint64 unk = kstats.net_drop_unknown_type, drop = kstats.pfmemalloc_drop;
  uint64 stale = kstats.aoe_stale;
  memset(f, 0, sizeof f);
  f[12] = 0x08;  // IPv4
  net_rx(&nb);
  CHECK(kstats.pfmemalloc_drop == drop + 1 && kstats.net_drop_unknown_type == unk);
  nb.pfmemalloc = 0;
  net_rx(&nb);
  CHECK(kstats.pfmemalloc_drop == drop + 1 && kstats.net_drop_unknown_type == unk + 1);
  nb.pfmemalloc = 1;
  f[12] = 0x88;
  f[13] = 0xa2;
  f[14] = 0x18;  // an AoE response with a dead tag: AoE takes (and counts) it
  f[20] = 3;
  f[21] = 7;
  net_rx(&nb);
  CHECK(kstats.aoe_stale == stale + 1 && kstats.pfmemalloc_drop == drop + 1);
  CHECK(!(myproc()->flags & PF_MEMALLOC));
  return 0;
}

// Swap PTEs: not valid, PTE_SWAP set, the slot in bits 63:10.
static const char *t_swap_pte(void) {
  uint64 pte = ((uint64)12345 << 10) | PTE_SWAP;
  CHECK(!(pte & PTE_V) && (pte & PTE_SWAP) && (uint32)(pte >> 10) == 12345);
  CHECK(PTE_SWAP == (1UL << 8));
  return 0;
}

#define NEEDS_SWAP 1   // the runner brings up the NIC and swap first (once)

static const struct {
  const char *name;
  const char *(*fn)(void);
  int needs;
} tests[] = {
  {"kalloc", t_kalloc},
  {"kalloc_reserve", t_kalloc_reserve},
  {"memalloc", t_memalloc},
  {"pfmemalloc_tag", t_pfmemalloc_tag},
  {"reserve_tree", t_reserve_tree},
  {"reserve_limit", t_reserve_limit},
  {"pfrag", t_pfrag},
  {"throttle", t_throttle},
  {"watermarks", t_watermarks},
  {"kmalloc", t_kmalloc},
  {"kmalloc_page", t_kmalloc_page},
  {"kernel_map", t_kernel_map},
  {"pagetable", t_pagetable},
  {"copyio", t_copyio},
  {"image_map", t_image_map},
  {"demand_zero", t_demand_zero},
  {"image_paging", t_image_paging},
  {"segfault", t_segfault},
  {"oom", t_oom},
  {"sched_rr", t_sched_rr},
  {"sleep", t_sleep},
  {"wakeup", t_wakeup},
  {"syscalls", t_syscalls},
  {"badptr", t_badptr},
  {"spawn_args", t_spawn_args},
  {"proc_limit", t_proc_limit},
  {"forktest", t_forktest},
  {"params", t_params},
  {"fdt", t_fdt},
  {"timebase", t_timebase},
  {"plic", t_plic},
  {"nbuf", t_nbuf},
  {"net_drops", t_net_drops},
  {"pfmemalloc_drop", t_pfmemalloc_drop},
  {"swap_pte", t_swap_pte},
  {"aoe_pool", t_aoe_pool, NEEDS_SWAP},   // last: the others run without a NIC
};
#define NTESTS (sizeof tests / sizeof tests[0])

// Returns 1 if `name` is in the comma-separated list (an empty list has all).
static int selected(const char *list, const char *name) {
  if (!*list)
    return 1;
  uint64 n = strlen(name);
  for (const char *p = list; *p;) {
    if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
      return 1;
    while (*p && *p != ',')
      p++;
    if (*p)
      p++;
  }
  return 0;
}

// The test thread's body: run the selected tests, power off with the count
// of failures (0: emu exits 0).
void ktest(void) {
  static char list[256];
  strncpy(list, params.tests ? params.tests : "", sizeof list - 1);
  int pass = 0, fail = 0, skip = 0;
  for (uint64 i = 0; i < NTESTS; i++) {
    if (!selected(list, tests[i].name))
      continue;
    if ((tests[i].needs & NEEDS_SWAP) && !platform.enic.base) {
      printf("SKIP %s: no eNIC in the device tree\n", tests[i].name);
      skip++;
      continue;
    }
    if ((tests[i].needs & NEEDS_SWAP) && !netup && netinit() == 0) {
      swapinit();
      swap_lowmem();   // probe the target now, and wait (up to 2 s) for swap
      for (int t = 0; t < 2000 && !swap_active(); t++)
        sleepuntil(now_ns() + 1000000);
    }
    uint64 before = nfree();
    const char *why = tests[i].fn();
    if (!why && nfree() != before) {
      printf("FAIL %s: %d pages leaked\n", tests[i].name, (int)(before - nfree()));
      fail++;
    } else if (why) {
      printf("FAIL %s: %s\n", tests[i].name, why);
      fail++;
    } else {
      printf("PASS %s\n", tests[i].name);
      pass++;
    }
  }
  // Names in the list that match no test are failures too.
  for (const char *p = list; *p;) {
    const char *e = p;
    while (*e && *e != ',')
      e++;
    int known = 0;
    for (uint64 i = 0; i < NTESTS; i++)
      known |= strlen(tests[i].name) == (uint64)(e - p) && strncmp(p, tests[i].name, e - p) == 0;
    if (!known) {
      printf("FAIL %s: no such test\n", p);  // prints the rest of the list, enough to see
      fail++;
    }
    p = *e ? e + 1 : e;
  }
  printf("ktest: %d passed, %d failed, %d skipped\n", pass, fail, skip);
  poweroff(fail);
}
