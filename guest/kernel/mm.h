// Memory management structures: the frame table and user regions.
#pragma once
#include "types.h"
#include "kstats.h"

// One struct frame per physical page of RAM (Linux: struct page), indexed by
// (pa - platform.ram_base) / PGSIZE. `use` is a FRAME_* value (kstats.h, where the
// host can name them); `next`/`prev` are frame numbers linking the free list
// and kmalloc's partial lists now, the LRU lists of the swap issue later.
struct frame {
  uint8 use;
  uint8 flags;     // FR_* below
  uint16 ref;      // user: mappings of the page; kmalloc: live objects
  uint32 next, prev;
  uint32 swapslot; // user page in the swap cache: slot + 1 (0: none)
  union {
    struct { struct proc *proc; uint64 va; } user;  // reverse map: who maps it, where
    struct { void *free; uint64 size; } slab;       // kmalloc: free objects, object size
  };
};

#define NOFRAME 0xFFFFFFFFU  // end of a frame list

// Frame flags.
#define FR_IMAGE   0x01  // user page filled from a program image (clean copy exists)
#define FR_LRU     0x02  // on an LRU list (the swap issue)
#define FR_READAHEAD 0x04  // read ahead of a fault, not mapped yet (swap.c counts its fate)
#define FR_RESERVE 0x08  // pfmemalloc: handed out only thanks to the reserve below min;
                         // swapslot then holds the RESERVE_* it is charged to
#define FR_WRITEBACK 0x10  // being written to its swap slot
#define FR_LOCKED  0x20  // being read from its swap slot (faults on the slot wait)
#define FR_DIRTY   0x40  // differs from its swap copy (set when the PTE's D was lost)
#define FR_PREFETCH 0x80 // read by kprefetchd, not mapped yet (prefetch.c)

// PTE software bits: a PTE with V clear and PTE_SWAP set holds a swap slot
// in bits 63:10 (swap.c).
#define PTE_SWAP PTE_RSW0

// Free-memory watermarks, in pages (Linux: min_free_kbytes and the zone
// watermarks derived from it). Ordinary allocations stop at `min`; the pages
// below are the reserve.
struct wmark {
  uint64 min, low, high;
};

// A user region (Linux: a VMA). Pages inside [start, end) that are not yet
// mapped are filled on first touch: the part of [fileva, fileva + filesz)
// that overlaps a page comes from `file` (the program image), the rest is
// zero.
struct vma {
  int kind;          // VMA_* (0: slot unused)
  int perm;          // PTE_R|PTE_W|PTE_X the region allows
  uint64 start, end; // page aligned; start == end: empty
  const uint8 *file;
  uint64 fileva, filesz;
};

#define VMA_NONE  0
#define VMA_TEXT  1
#define VMA_DATA  2
#define VMA_HEAP  3
#define VMA_STACK 4
#define NVMA 6

// palloc(use | PALLOC_NOZERO): skip zeroing (the caller overwrites the page).
#define PALLOC_NOZERO 0x100

// Allocation flags (Linux: gfp_t) for palloc_flags and kmalloc_flags
// (docs/reserves.md). GFP_MEMALLOC: entitled to the reserve below min;
// GFP_NOMEMALLOC: never, whatever the task's PF_MEMALLOC says (it wins);
// GFP_RES(r): charge reserve pages to RESERVE_r rather than the task's
// current reserve.
#define GFP_MEMALLOC   0x1
#define GFP_NOMEMALLOC 0x2
#define GFP_RES(r)     (((r) + 1) << 4)
#define GFP_RESMASK    0xf0

// Results of vmfault().
#define VMF_OK   0
#define VMF_SEGV 1   // no region, or the region forbids the access
#define VMF_OOM  2   // no free page
#define VMF_IOERR 3  // the swap device failed the read
