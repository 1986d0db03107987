// The swap code's inner interface, for the code beside swap.c that works on
// the swap map and the swap cache directly (swapoff.c). Everything else
// goes through defs.h.
#pragma once
#include "types.h"
#include "riscv.h"
#include "proc.h"

// A swap PTE: V clear, PTE_SWAP set, the slot in bits 63:10 (mm.h).
#define SWAPPTE(s) (((uint64)(s) << 10) | PTE_SWAP)
#define PTE2SLOT(pte) ((uint32)((pte) >> 10))
#define SLOT_SECT 8      // sectors a slot (one page)
#define MAXSLOTS 32768   // the most slots a swap area has

uint32 swap_nslots(void);                  // slots of the swap area
uint32 swap_used(void);                    // slots held by a PTE or a cached page
int swap_count(uint32 s);                  // PTEs that hold slot s
struct frame *swap_cachepage(uint32 s);    // the swap-cache page of slot s, or 0
int swap_hint(uint32 s);                   // 1 + proc index it went out from, 0: none
#define RS_PREFETCH 1     // swap_readslots for kprefetchd: no reclaim, pages marked FR_PREFETCH
int swap_readslots(uint32 s, uint32 n, int how);
int swap_unuse(struct proc *p, uint64 va, pte_t *pte, int perm);
int swap_uncache(void);
void swap_wait_writeback(void);
int swap_table(void **tab, uint32 per_page, uint32 n);
