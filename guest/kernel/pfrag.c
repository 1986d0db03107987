// Page fragments for RX buffers (Linux: page_frag_cache, netdev_alloc_frag).
// A cache carves its current page into buffers from the bottom up; the page
// goes back to the page allocator when the cache has moved on to a new page
// and the last fragment on it is freed (frame.ref counts the live fragments
// plus one for the cache). So receiving keeps asking the page allocator for
// fresh pages, one every PGSIZE / size buffers - which is what makes an
// exhausted machine unable to receive (docs/reserves.md). A page taken from
// the reserve carries FR_RESERVE, and every fragment on it reports the mark.
#include "types.h"
#include "riscv.h"
#include "mm.h"
#include "defs.h"

#define FRAG_ALIGN 64

// Drop the cache's reference to its page (freeing the page if no fragment
// on it is live).
static void frag_release(struct fragcache *c) {
  if (!c->page)
    return;
  struct frame *f = pa2frame((uint64)c->page);
  c->page = 0;
  if (--f->ref == 0)
    pfree((void *)frame2pa(f));
}

// Returns a buffer of `size` bytes (1..PGSIZE, not zeroed, FRAG_ALIGN
// aligned) from cache c, taking a new page with palloc_flags(gfp) when the
// current one is used up, or 0 if that fails. A caller not entitled to the
// reserve never gets a fragment of a reserve page.
void *frag_alloc(struct fragcache *c, uint32 size, int gfp) {
  size = (size + FRAG_ALIGN - 1) & ~(FRAG_ALIGN - 1);
  if (size == 0 || size > PGSIZE)
    return 0;
  if (c->page && (c->off + size > PGSIZE ||
                  ((pa2frame((uint64)c->page)->flags & FR_RESERVE) && !memalloc_entitled(gfp))))
    frag_release(c);
  if (!c->page) {
    uint8 *page = palloc_flags(FRAME_NETBUF | PALLOC_NOZERO, gfp);
    if (!page)
      return 0;
    pa2frame((uint64)page)->ref = 1;
    c->page = page;
    c->off = 0;
  }
  void *p = c->page + c->off;
  c->off += size;
  pa2frame((uint64)p)->ref++;
  return p;
}

// Free a buffer frag_alloc returned. Panics on a pointer that is not one.
void frag_free(void *p) {
  struct frame *f = pa2frame((uint64)p);
  if (f->use != FRAME_NETBUF || f->ref == 0 || (uint64)p % FRAG_ALIGN)
    panic("frag_free: not a fragment");
  if (--f->ref == 0)
    pfree((void *)PGROUNDDOWN((uint64)p));
}

// Returns 1 if the fragment p lies on a page from the reserve (pfmemalloc).
int frag_pfmemalloc(const void *p) {
  return (pa2frame((uint64)p)->flags & FR_RESERVE) != 0;
}

// Give the cache's page back (the fragments still live keep it until they
// are freed).
void frag_drain(struct fragcache *c) { frag_release(c); }
