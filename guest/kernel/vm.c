// Sv39 page tables: the kernel's map (shared by every address space), user
// address spaces, demand paging, and copies between kernel and user memory.
//
// Translation-cache discipline: every address space uses ASID 0, so a satp
// write is followed by sfence.vma (vmswitch); a PTE that becomes valid or
// invalid is followed by sfence.vma of its address. Those fences are the
// only way stale translations leave the hart's TLB.
#include "types.h"
#include "riscv.h"
#include "memlayout.h"
#include "proc.h"
#include "defs.h"

pagetable_t kernel_pagetable;
extern char etext[], erodata[];

// Returns the PTE for `va` at `level` (0: 4 KiB page, 1: 2 MiB megapage),
// creating page-table pages on the way if `alloc`. Returns 0 if a table is
// missing and !alloc, if memory ran out, or if a bigger leaf maps `va`.
static pte_t *walklevel(pagetable_t pt, uint64 va, int level, int alloc) {
  if (va >= MAXVA)
    panic("walk");
  for (int l = 2; l > level; l--) {
    pte_t *pte = &pt[PX(l, va)];
    if (*pte & PTE_V) {
      if (*pte & (PTE_R | PTE_W | PTE_X))
        return 0;
      pt = (pagetable_t)PTE2PA(*pte);
    } else {
      if (!alloc || (pt = palloc(FRAME_PTABLE)) == 0)
        return 0;
      *pte = PA2PTE(pt) | PTE_V;
    }
  }
  return &pt[PX(level, va)];
}

// Returns the level-0 PTE for `va` (see walklevel).
pte_t *walk(pagetable_t pt, uint64 va, int alloc) { return walklevel(pt, va, 0, alloc); }

// Returns the valid leaf PTE mapping `va` at any level and stores its level
// in *level, or returns 0 if `va` is unmapped.
pte_t *walkleaf(pagetable_t pt, uint64 va, int *level) {
  if (va >= MAXVA)
    return 0;
  for (int l = 2; l >= 0; l--) {
    pte_t *pte = &pt[PX(l, va)];
    if (!(*pte & PTE_V))
      return 0;
    if (*pte & (PTE_R | PTE_W | PTE_X)) {
      *level = l;
      return pte;
    }
    pt = (pagetable_t)PTE2PA(*pte);
  }
  return 0;
}

// Kernel mappings: global, A and D preset (the kernel never needs the
// hardware to track them), megapages wherever alignment allows.
static void kvmmap(uint64 va, uint64 pa, uint64 size, int perm) {
  perm |= PTE_G | PTE_A | PTE_D | PTE_V;
  for (uint64 end = va + size; va < end;) {
    int big = va % MEGAPAGE == 0 && pa % MEGAPAGE == 0 && end - va >= MEGAPAGE;
    pte_t *pte = walklevel(kernel_pagetable, va, big ? 1 : 0, 1);
    if (!pte || (*pte & PTE_V))
      panic("kvmmap");
    *pte = PA2PTE(pa) | perm;
    va += big ? MEGAPAGE : PGSIZE;
    pa += big ? MEGAPAGE : PGSIZE;
  }
}

// Map a device's registers (whole pages: the UART's reg is 0x100 bytes).
static void kvmmapdev(uint64 base, uint64 size) {
  uint64 pa = PGROUNDDOWN(base);
  kvmmap(pa, pa, PGROUNDUP(base + size) - pa, PTE_R | PTE_W);
}

// Build the kernel's map: the devices the kernel drives and RAM from the
// kernel up at their physical addresses, none of it user-accessible. Text
// is R+X, read-only data (including the embedded programs) R, the rest of
// RAM R+W. The firmware's region below the kernel stays unmapped (OpenSBI
// guards it with a PMP region), and so does the CLINT (M-mode's; time is
// read from the time CSR).
void kvminit(uint64 ramend) {
  kernel_pagetable = palloc(FRAME_PTABLE);
  if (!kernel_pagetable)
    panic("kvminit");
  kvmmapdev(platform.uart.base, platform.uart.size);
  if (platform.enic.base)
    kvmmapdev(platform.enic.base, platform.enic.size);
  kvmmapdev(platform.plic.base, platform.plic.size);
  kvmmap(KERNEL_BASE, KERNEL_BASE, (uint64)etext - KERNEL_BASE, PTE_R | PTE_X);
  kvmmap((uint64)etext, (uint64)etext, (uint64)erodata - (uint64)etext, PTE_R);
  kvmmap((uint64)erodata, (uint64)erodata, ramend - (uint64)erodata, PTE_R | PTE_W);
  if (kernel_pagetable[PX(2, USER_BASE)] & PTE_V)
    panic("kvminit: kernel mapping in the user slot");
}

// Make `pt` the hart's address space. All spaces share ASID 0, so the fence
// after the satp write is what drops the old space's translations (and it
// orders our earlier page-table stores before the new space's walks).
void vmswitch(pagetable_t pt) {
  uint64 satp = MAKE_SATP(pt);
  if (csr_read(satp) == satp)
    return;
  csr_write(satp, satp);
  sfence_vma();
}

// Returns a new address space - a root table whose kernel entries point at
// the kernel's own lower-level tables, so kernel mappings are shared, and an
// empty user slot - or 0 if out of memory.
pagetable_t uvmcreate(void) {
  pagetable_t pt = palloc(FRAME_PTABLE);
  if (pt)
    memcpy(pt, kernel_pagetable, PGSIZE);
  return pt;
}

// Drop p's mapping of the user page at pa: a private page is freed, an
// image page just loses a mapper.
static void dropframe(struct proc *p, uint64 pa) {
  struct frame *f = pa2frame(pa);
  if ((f->use != FRAME_USER && f->use != FRAME_IMAGE) || f->ref == 0)
    panic("dropframe");
  p->rss--;
  if (--f->ref == 0 && f->use == FRAME_USER)
    swap_pagefree(f);
}

static void freetables(struct proc *p, pagetable_t t, int level) {
  for (int i = 0; i < 512; i++) {
    pte_t pte = t[i];
    if (!(pte & PTE_V)) {
      if (level == 0 && (pte & PTE_SWAP))
        swap_free_pte(pte);
      t[i] = 0;
      continue;
    }
    if (level > 0)
      freetables(p, (pagetable_t)PTE2PA(pte), level - 1);
    else
      dropframe(p, PTE2PA(pte));
    t[i] = 0;
  }
  pfree(t);
}

// Free p's user pages, its user page-table pages and its root. The hart must
// not be using this address space (panics if it is); its translations left
// the TLB with the fence of the switch away from it.
void uvmfree(struct proc *p) {
  if (csr_read(satp) == MAKE_SATP(p->pagetable))
    panic("uvmfree: address space in use");
  pte_t *slot = &p->pagetable[PX(2, USER_BASE)];
  if (*slot & PTE_V)
    freetables(p, (pagetable_t)PTE2PA(*slot), 1);
  pfree(p->pagetable);
  p->pagetable = 0;
  if (p->rss)
    panic("uvmfree: rss");
}

// Returns p's level-0 PTE for `va`, allocating page-table pages (with
// reclaim if memory is short), or 0 if memory ran out.
static pte_t *ptealloc(struct proc *p, uint64 va) {
  for (;;) {
    pte_t *pte = walk(p->pagetable, va, 0);
    if (pte)
      return pte;
    // walk(alloc) takes at most two pages: make sure they are there.
    void *a = palloc_reclaim(FRAME_PTABLE), *b = palloc_reclaim(FRAME_PTABLE);
    if (a)
      pfree(a);
    if (b)
      pfree(b);
    if (!a || !b)
      return walk(p->pagetable, va, 1);
    pte = walk(p->pagetable, va, 1);
    if (pte)
      return pte;
  }
}

// Map the user page `pa` at `va` in p's space with region permissions
// `perm`. A private page records its one mapper (the reverse map reclaim
// will use); an image page is shared and only counts mappers. Returns 0, or
// -1 if a page-table page could not be allocated.
int mapuser(struct proc *p, uint64 va, uint64 pa, int perm) {
  pte_t *pte = ptealloc(p, va);
  if (!pte)
    return -1;
  if (*pte & PTE_V)
    panic("mapuser: remap");
  struct frame *f = pa2frame(pa);
  if (f->use == FRAME_USER) {
    f->user.proc = p;
    f->user.va = va;
    swap_mapped(f);
  }
  f->ref++;
  *pte = PA2PTE(pa) | perm | PTE_U | PTE_V;
  p->rss++;
  sfence_vma_va(va);
  return 0;
}

// Unmap and free the resident pages of p in [va, va + npages pages).
void uvmunmap(struct proc *p, uint64 va, uint64 npages) {
  for (uint64 a = PGROUNDDOWN(va); npages-- > 0; a += PGSIZE) {
    pte_t *pte = walk(p->pagetable, a, 0);
    if (pte && !(*pte & PTE_V) && (*pte & PTE_SWAP)) {
      swap_free_pte(*pte);
      *pte = 0;
      continue;
    }
    if (!pte || !(*pte & PTE_V))
      continue;
    uint64 pa = PTE2PA(*pte);
    *pte = 0;
    sfence_vma_va(a);
    dropframe(p, pa);
  }
}

// Returns p's region containing `va`, or 0.
static struct vma *findvma(struct proc *p, uint64 va) {
  for (struct vma *v = p->vma; v < p->vma + NVMA; v++)
    if (v->kind != VMA_NONE && v->start <= va && va < v->end)
      return v;
  return 0;
}

// Returns the page of an embedded program image that a read-only region
// maps at page `va`, or 0 if the region is writable or not page-aligned
// with its image, or has no image bytes in that page.
static uint64 imagepage(struct vma *v, uint64 va) {
  uint64 img = (uint64)v->file;
  if (!img || (v->perm & PTE_W) || img % PGSIZE != v->fileva % PGSIZE ||
      va + PGSIZE <= v->fileva || va >= v->fileva + v->filesz)
    return 0;
  uint64 pa = PGROUNDDOWN(img) + (va - PGROUNDDOWN(v->fileva));
  return pa2frame(pa)->use == FRAME_IMAGE ? pa : 0;
}

// Fault-around for the heap while swapping: map up to 7 more zero pages
// after `va` (unmapped, same page table, memory above the low watermark).
// Every trap costs a CPU exit on this machine, and a process that touches
// a new heap page usually touches the next ones too. Not counted as faults.
#define ZEROAROUND 8
static void zeroaround(struct proc *p, struct vma *v, uint64 va) {
  for (int i = 1; i < ZEROAROUND; i++) {
    uint64 a = va + (uint64)i * PGSIZE;
    if (a >= v->end || nfree() <= wmark.low)
      break;
    pte_t *pte = walk(p->pagetable, a, 0);
    if (!pte || *pte)
      break;
    void *page = palloc(FRAME_USER);
    if (!page)
      break;
    if (mapuser(p, a, (uint64)page, v->perm) != 0) {
      pfree(page);
      break;
    }
    kstats.zero_faultaround++;
  }
}

// Bring in the page of region v holding `va`. Read-only image bytes (text)
// are mapped straight from the embedded image, shared by every process that
// runs the program; otherwise a fresh page gets the image bytes that fall in
// it (data, copied now: on first touch) and zero elsewhere. Returns the
// physical page, or 0 if out of memory.
//
// Mapping text rather than copying it also keeps the emulator honest: a
// frame that once held code never receives different code, so unicorn's
// translated-code cache, which misses writes made through the kernel's
// alias of a frame, cannot serve stale instructions.
static uint64 fillpage(struct proc *p, struct vma *v, uint64 va) {
  va = PGROUNDDOWN(va);
  uint64 pa = imagepage(v, va);
  if (pa) {
    if (mapuser(p, va, pa, v->perm) != 0)
      return 0;
    kstats.faults[FAULT_IMAGE]++;
    p->minflt++;
    return pa;
  }
  uint8 *page = palloc_reclaim(FRAME_USER);
  if (!page)
    return 0;
  int kind = FAULT_ZERO;
  uint64 lo = va > v->fileva ? va : v->fileva;
  uint64 hi = va + PGSIZE < v->fileva + v->filesz ? va + PGSIZE : v->fileva + v->filesz;
  if (lo < hi) {
    memcpy(page + (lo - va), v->file + (lo - v->fileva), hi - lo);
    pa2frame((uint64)page)->flags |= FR_IMAGE;
    kind = FAULT_IMAGE;
  }
  if (v->perm & PTE_X)
    fence_i();
  if (mapuser(p, va, (uint64)page, v->perm) != 0) {
    pfree(page);
    return 0;
  }
  kstats.faults[kind]++;
  p->minflt++;
  if (v->kind == VMA_HEAP && swap_active())
    zeroaround(p, v, va);
  return (uint64)page;
}

static int needed(uint64 cause) {
  return cause == CAUSE_FETCH_PF ? PTE_X : cause == CAUSE_STORE_PF ? PTE_W : PTE_R;
}

// Resolve p's page fault at `va` with scause `cause`. Returns VMF_OK when the
// faulting instruction can run again, VMF_SEGV when no region holds `va` or
// its region forbids the access, VMF_OOM when no page was free.
int vmfault(struct proc *p, uint64 va, uint64 cause) {
  struct vma *v = va >= USER_BASE && va < USER_TOP ? findvma(p, va) : 0;
  if (!v) {
    kstats.faults[FAULT_BAD]++;
    return VMF_SEGV;
  }
  if (!(v->perm & needed(cause))) {
    kstats.faults[FAULT_PROT]++;
    return VMF_SEGV;
  }
  pte_t *pte = walk(p->pagetable, va, 0);
  if (pte && (*pte & PTE_V)) {
    kstats.faults[FAULT_SPURIOUS]++;
    return VMF_OK;
  }
  if (pte && (*pte & PTE_SWAP))
    return swapin(p, va, v->perm, v->end);
  return fillpage(p, v, va) ? VMF_OK : VMF_OOM;
}

// Returns the physical address of p's user byte `va` for an access needing
// `need` (PTE_R or PTE_W), bringing the page in first if it is not resident;
// 0 if no region allows that access at `va` or memory ran out. Sets A (and D
// for a write) in the PTE: the kernel's access through its own map is
// invisible to the hardware's A/D updates, and reclaim will trust D.
uint64 uvmaddr(struct proc *p, uint64 va, int need) {
  if (va < USER_BASE || va >= USER_TOP)
    return 0;
  struct vma *v = findvma(p, va);
  if (!v || !(v->perm & need))
    return 0;
  pte_t *pte = walk(p->pagetable, va, 0);
  if (pte && !(*pte & PTE_V) && (*pte & PTE_SWAP)) {
    if (swapin(p, va, v->perm, v->end) != VMF_OK)
      return 0;
    kstats.copyfills++;
    pte = walk(p->pagetable, va, 0);
  } else if (!pte || !(*pte & PTE_V)) {
    if (!fillpage(p, v, va))
      return 0;
    kstats.copyfills++;
    pte = walk(p->pagetable, va, 0);
  }
  *pte |= PTE_A | (need == PTE_W ? PTE_D : 0);
  return PTE2PA(*pte) + va % PGSIZE;
}

// Copy `len` bytes from kernel `src` to p's user address `dstva`. Returns
// 0, or -1 if some destination byte is not writable user memory, in which
// case nothing was written (every page is checked before the first copy).
int copyout(struct proc *p, uint64 dstva, const void *src, uint64 len) {
  if (dstva + len < dstva)
    return -1;
  for (uint64 a = dstva; a < dstva + len; a = PGROUNDDOWN(a) + PGSIZE)
    if (!uvmaddr(p, a, PTE_W))
      return -1;
  const uint8 *s = src;
  while (len > 0) {
    uint64 pa = uvmaddr(p, dstva, PTE_W);
    uint64 n = PGSIZE - dstva % PGSIZE;
    if (n > len)
      n = len;
    memcpy((void *)pa, s, n);
    len -= n;
    s += n;
    dstva += n;
  }
  return 0;
}

// Copy `len` bytes from p's user address `srcva` to kernel `dst`.
// Returns 0, or -1 if some source byte is not readable user memory.
int copyin(struct proc *p, void *dst, uint64 srcva, uint64 len) {
  uint8 *d = dst;
  while (len > 0) {
    uint64 pa = uvmaddr(p, srcva, PTE_R);
    if (!pa)
      return -1;
    uint64 n = PGSIZE - srcva % PGSIZE;
    if (n > len)
      n = len;
    memcpy(d, (void *)pa, n);
    len -= n;
    d += n;
    srcva += n;
  }
  return 0;
}

// Copy the NUL-terminated string at p's `srcva` into `dst` (max bytes, the
// NUL included). Returns its length, or -1 if it is not readable user
// memory or does not end within `max` bytes.
int copyinstr(struct proc *p, char *dst, uint64 srcva, uint64 max) {
  uint64 i = 0;
  while (i < max) {
    const char *s = (const char *)uvmaddr(p, srcva + i, PTE_R);
    if (!s)
      return -1;
    for (uint64 n = PGSIZE - (srcva + i) % PGSIZE; n > 0 && i < max; n--, i++)
      if ((dst[i] = *s++) == 0)
        return i;
  }
  return -1;
}

// Move p's program break by n bytes. Returns the old break, or -1 if the
// new one would fall below the heap's start or reach the stack guard page.
// Growing only widens the heap region (pages come on first touch);
// shrinking frees the pages above the new break.
int64 uvmsbrk(struct proc *p, int64 n) {
  struct vma *h = 0;
  for (struct vma *v = p->vma; v < p->vma + NVMA; v++)
    if (v->kind == VMA_HEAP)
      h = v;
  if (!h)
    return -1;
  uint64 old = p->brk, new = old + n;
  if (n < 0 ? (new > old || new < h->start) : (new < old || PGROUNDUP(new) > UGUARD_BASE))
    return -1;
  if (PGROUNDUP(new) < h->end)
    uvmunmap(p, PGROUNDUP(new), (h->end - PGROUNDUP(new)) / PGSIZE);
  h->end = PGROUNDUP(new);
  p->brk = new;
  return old;
}
