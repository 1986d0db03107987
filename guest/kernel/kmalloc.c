// kmalloc: small kernel objects in power-of-two size classes, each class a
// list of partly used pages (slabs) whose free objects are chained through
// their first word. A slab goes back to the page allocator when its last
// object is freed. Kernel objects are never swapped.
#include "types.h"
#include "riscv.h"
#include "mm.h"
#include "defs.h"

#define KM_MIN 16
#define KM_MAX 2048          // bigger requests get a page of their own
#define NCLASS 8             // 16, 32, ..., 2048

static uint32 partial[NCLASS];  // frame lists of slabs with a free object

void kmallocinit(void) {
  for (int i = 0; i < NCLASS; i++)
    partial[i] = NOFRAME;
}

static int sizeclass(uint64 n) {
  int c = 0;
  for (uint64 s = KM_MIN; s < n; s <<= 1)
    c++;
  return c;
}

// Carve a fresh page into objects of class c and put it on the partial list.
// Returns 0 if out of memory.
static struct frame *newslab(int c) {
  uint64 size = KM_MIN << c;
  uint8 *page = palloc(FRAME_KMALLOC);
  if (!page)
    return 0;
  struct frame *f = pa2frame((uint64)page);
  f->slab.size = size;
  f->slab.free = 0;
  for (uint64 off = PGSIZE; off >= size; off -= size) {
    *(void **)(page + off - size) = f->slab.free;
    f->slab.free = page + off - size;
  }
  flist_push(&partial[c], f);
  return f;
}

// Returns `n` zeroed bytes (1 <= n <= PGSIZE) aligned to the size class
// (n rounded up to a power of two, at least 16), or 0 if out of memory or n
// is out of range.
void *kmalloc(uint64 n) {
  void *p = kmalloc_raw(n);
  if (p)
    memset(p, 0, n > KM_MAX ? PGSIZE : KM_MIN << sizeclass(n));
  return p;
}

// kmalloc without the zeroing (the caller overwrites the object - the NIC's
// RX buffers, which the device fills).
void *kmalloc_raw(uint64 n) {
  if (n == 0 || n > PGSIZE)
    return 0;
  if (n > KM_MAX) {
    void *page = palloc(FRAME_KMALLOC | PALLOC_NOZERO);
    if (page) {
      struct frame *f = pa2frame((uint64)page);
      f->slab.size = PGSIZE;
      f->ref = 1;
    }
    return page;
  }
  int c = sizeclass(n);
  struct frame *f = partial[c] != NOFRAME ? &frames[partial[c]] : newslab(c);
  if (!f)
    return 0;
  void *obj = f->slab.free;
  f->slab.free = *(void **)obj;
  f->ref++;
  if (!f->slab.free)
    flist_del(&partial[c], f);
  return obj;
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
      flist_del(&partial[c], f);
    pfree((void *)PGROUNDDOWN(a));
  } else if (wasfull) {
    flist_push(&partial[c], f);
  }
}
