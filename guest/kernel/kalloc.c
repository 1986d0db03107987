// Physical page allocator: a free list of 4 KiB pages between the end of the
// kernel image and the end of RAM.
#include "types.h"
#include "riscv.h"
#include "defs.h"

struct run { struct run *next; };

static struct run *freelist;
static uint64 nfree;
static uint64 mem_start, mem_end;

void kinit(uint64 start, uint64 end) {
  mem_start = PGROUNDUP(start);
  mem_end = PGROUNDDOWN(end);
  for (uint64 p = mem_end - PGSIZE; p >= mem_start; p -= PGSIZE)
    kfree((void *)p);
}

// Free the page at `pa` (page aligned, inside the managed range).
void kfree(void *pa) {
  uint64 a = (uint64)pa;
  if (a % PGSIZE || a < mem_start || a >= mem_end)
    panic("kfree");
  struct run *r = pa;
  r->next = freelist;
  freelist = r;
  nfree++;
}

// Returns a zeroed page, or 0 if out of memory.
void *kalloc(void) {
  struct run *r = freelist;
  if (!r)
    return 0;
  freelist = r->next;
  nfree--;
  memset(r, 0, PGSIZE);
  return r;
}

uint64 kfreepages(void) { return nfree; }
