// kmalloc: small kernel objects in power-of-two size classes, each class a
// list of partly used pages (slabs) whose free objects are chained through
// their first word. A slab goes back to the page allocator when its last
// object is freed. Kernel objects are never swapped. Slabs on pages from
// the reserve (FR_RESERVE, pfmemalloc) sit on their own partial lists, so
// their objects go only to callers entitled to the reserve; every object
// reports its page's mark (kmalloc_pfmemalloc).
#include "types.h"
#include "riscv.h"
#include "mm.h"
#include "defs.h"

#define KM_MIN 16
#define KM_MAX 2048          // bigger requests get a page of their own
#define NCLASS 8             // 16, 32, ..., 2048

static uint32 partial[NCLASS];  // frame lists of slabs with a free object
static uint32 rpartial[NCLASS]; // the same for slabs on reserve pages

void kmallocinit(void) {
  for (int i = 0; i < NCLASS; i++)
    partial[i] = rpartial[i] = NOFRAME;
}

static uint32 *slablist(struct frame *f, int c) {
  return f->flags & FR_RESERVE ? &rpartial[c] : &partial[c];
}

static int sizeclass(uint64 n) {
  int c = 0;
  for (uint64 s = KM_MIN; s < n; s <<= 1)
    c++;
  return c;
}

// Carve a fresh page (palloc_flags with gfp) into objects of class c and
// put it on its partial list. Returns 0 if out of memory.
static struct frame *newslab(int c, int gfp) {
  uint64 size = KM_MIN << c;
  uint8 *page = palloc_flags(FRAME_KMALLOC, gfp);
  if (!page)
    return 0;
  struct frame *f = pa2frame((uint64)page);
  f->slab.size = size;
  f->slab.free = 0;
  for (uint64 off = PGSIZE; off >= size; off -= size) {
    *(void **)(page + off - size) = f->slab.free;
    f->slab.free = page + off - size;
  }
  flist_push(slablist(f, c), f);
  return f;
}

// Returns `n` zeroed bytes (1 <= n <= PGSIZE) aligned to the size class
// (n rounded up to a power of two, at least 16), or 0 if out of memory or n
// is out of range.
void *kmalloc(uint64 n) { return kmalloc_flags(n, 0); }

// An object of n bytes, not zeroed (kmalloc_flags below zeroes it).
static void *kmalloc_raw_flags(uint64 n, int gfp) {
  if (n == 0 || n > PGSIZE)
    return 0;
  if (n > KM_MAX) {
    void *page = palloc_flags(FRAME_KMALLOC | PALLOC_NOZERO, gfp);
    if (page) {
      struct frame *f = pa2frame((uint64)page);
      f->slab.size = PGSIZE;
      f->ref = 1;
    }
    return page;
  }
  int c = sizeclass(n);
  struct frame *f = partial[c] != NOFRAME ? &frames[partial[c]]
                                           : newslab(c, gfp | GFP_NOMEMALLOC);
  if (!f && memalloc_entitled(gfp))
    f = rpartial[c] != NOFRAME ? &frames[rpartial[c]] : newslab(c, gfp);
  if (!f)
    return 0;
  void *obj = f->slab.free;
  f->slab.free = *(void **)obj;
  f->ref++;
  if (!f->slab.free)
    flist_del(slablist(f, c), f);
  return obj;
}

// kmalloc with allocation flags (GFP_*, mm.h): two steps, an ordinary slab
// or page first, the reserve only if that fails and the caller is entitled.
void *kmalloc_flags(uint64 n, int gfp) {
  void *p = kmalloc_raw_flags(n, gfp);
  if (p)
    memset(p, 0, n > KM_MAX ? PGSIZE : KM_MIN << sizeclass(n));
  return p;
}

// Returns 1 if the kmalloc object p lies on a page from the reserve.
int kmalloc_pfmemalloc(const void *p) {
  return (pa2frame((uint64)p)->flags & FR_RESERVE) != 0;
}

// Free an object kmalloc returned. Panics on a pointer that is not one.
void kfree(void *p) {
  uint64 a = (uint64)p;
  struct frame *f = pa2frame(a);
  if (f->use != FRAME_KMALLOC || f->ref == 0 || (a % PGSIZE) % f->slab.size)
    panic("kfree: not a kmalloc object");
  if (f->slab.size == PGSIZE) {
    pfree(p);
    return;
  }
  int c = sizeclass(f->slab.size);
  int wasfull = f->slab.free == 0;
  *(void **)p = f->slab.free;
  f->slab.free = p;
  if (--f->ref == 0) {
    if (!wasfull)
      flist_del(slablist(f, c), f);
    pfree((void *)PGROUNDDOWN(a));
  } else if (wasfull) {
    flist_push(slablist(f, c), f);
  }
}
