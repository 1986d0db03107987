// Sv39 page tables: the kernel's direct map and the helpers to build them.
#include "types.h"
#include "riscv.h"
#include "memlayout.h"
#include "defs.h"

pagetable_t kernel_pagetable;

// Return the level-0 PTE for `va`, allocating page-table pages on the way if
// `alloc`. Returns 0 if a page is missing (and !alloc) or memory ran out.
pte_t *walk(pagetable_t pt, uint64 va, int alloc) {
  if (va >= MAXVA)
    panic("walk");
  for (int level = 2; level > 0; level--) {
    pte_t *pte = &pt[PX(level, va)];
    if (*pte & PTE_V) {
      pt = (pagetable_t)PTE2PA(*pte);
    } else {
      if (!alloc || (pt = kalloc()) == 0)
        return 0;
      *pte = PA2PTE(pt) | PTE_V;
    }
  }
  return &pt[PX(0, va)];
}

// Map [va, va+size) to [pa, pa+size) with `perm`. Returns 0, or -1 if a page
// table page could not be allocated. Panics on a remap.
int mappages(pagetable_t pt, uint64 va, uint64 size, uint64 pa, int perm) {
  uint64 a = PGROUNDDOWN(va), last = PGROUNDDOWN(va + size - 1);
  for (;; a += PGSIZE, pa += PGSIZE) {
    pte_t *pte = walk(pt, a, 1);
    if (pte == 0)
      return -1;
    if (*pte & PTE_V)
      panic("mappages: remap");
    *pte = PA2PTE(pa) | perm | PTE_V;
    if (a == last)
      return 0;
  }
}

static void kvmmap(pagetable_t pt, uint64 va, uint64 pa, uint64 sz, int perm) {
  if (mappages(pt, va, sz, pa, perm) != 0)
    panic("kvmmap");
}

// Build the kernel page table: devices and all of RAM mapped at their
// physical addresses (no U bit: user mode cannot touch them).
void kvminit(void) {
  kernel_pagetable = kalloc();
  if (!kernel_pagetable)
    panic("kvminit");
  pagetable_t pt = kernel_pagetable;
  kvmmap(pt, UART_BASE, UART_BASE, UART_SIZE, PTE_R | PTE_W);
  kvmmap(pt, NIC_BASE, NIC_BASE, NIC_SIZE, PTE_R | PTE_W);
  kvmmap(pt, PLIC_BASE, PLIC_BASE, PLIC_SIZE, PTE_R | PTE_W);
  kvmmap(pt, TIMER_BASE, TIMER_BASE, TIMER_SIZE, PTE_R);
  kvmmap(pt, RAM_BASE, RAM_BASE, bootinfo->ram_size, PTE_R | PTE_W | PTE_X);
}

// Switch this hart to the kernel page table. The fences order the page-table
// stores before the switch and drop stale translations after it.
void kvminithart(void) {
  sfence_vma();
  csr_write(satp, MAKE_SATP(kernel_pagetable));
  sfence_vma();
}
