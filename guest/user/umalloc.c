// malloc/free over sbrk: K&R's first-fit free list of 16-byte units,
// kept in address order so neighbours coalesce.
#include "user.h"

union header {
  struct {
    union header *next;
    size_t units;  // size of this block in headers, the header included
  } s;
  long double align;
};
typedef union header Header;

static Header base;
static Header *freep;

void free(void *ap) {
  if (!ap)
    return;
  Header *bp = (Header *)ap - 1, *p;
  for (p = freep; !(bp > p && bp < p->s.next); p = p->s.next)
    if (p >= p->s.next && (bp > p || bp < p->s.next))
      break;
  if (bp + bp->s.units == p->s.next) {
    bp->s.units += p->s.next->s.units;
    bp->s.next = p->s.next->s.next;
  } else {
    bp->s.next = p->s.next;
  }
  if (p + p->s.units == bp) {
    p->s.units += bp->s.units;
    p->s.next = bp->s.next;
  } else {
    p->s.next = bp;
  }
  freep = p;
}

// Grow the heap by at least n units. Returns the free list, or 0 if sbrk failed.
static Header *morecore(size_t n) {
  if (n < 4096)
    n = 4096;
  char *p = sbrk(n * sizeof(Header));
  if (p == (char *)-1)
    return 0;
  Header *h = (Header *)p;
  h->s.units = n;
  free(h + 1);
  return freep;
}

// Returns n bytes aligned to 16, or 0 if the heap cannot grow.
void *malloc(size_t n) {
  size_t units = (n + sizeof(Header) - 1) / sizeof(Header) + 1;
  if (n == 0 || n > (1UL << 40))
    return 0;
  Header *prev = freep;
  if (!prev) {
    base.s.next = freep = prev = &base;
    base.s.units = 0;
  }
  for (Header *p = prev->s.next;; prev = p, p = p->s.next) {
    if (p->s.units >= units) {
      if (p->s.units == units) {
        prev->s.next = p->s.next;
      } else {
        p->s.units -= units;
        p += p->s.units;
        p->s.units = units;
      }
      freep = prev;
      return p + 1;
    }
    if (p == freep && (p = morecore(units)) == 0)
      return 0;
  }
}
