// Loading a program embedded in the kernel image (progs.S) into a fresh
// address space: regions from its ELF program headers, argv on the stack,
// the first user registers. No page of text or data is copied here: each is
// copied from the image when first touched (vm.c, fillpage).
#include "types.h"
#include "riscv.h"
#include "elf.h"
#include "proc.h"
#include "trap.h"
#include "defs.h"

// Returns the embedded program called `name`, or 0.
const struct prog *findprog(const char *name) {
  for (uint64 i = 0; i < nprogs; i++)
    if (strcmp(progs[i].name, name) == 0)
      return &progs[i];
  return 0;
}

static int elfperm(uint32 flags) {
  return (flags & PF_R ? PTE_R : 0) | (flags & PF_W ? PTE_R | PTE_W : 0) |
         (flags & PF_X ? PTE_X : 0);
}

// Describe the program's loadable segments, an empty heap after them and the
// stack as p's regions. Returns the entry point, or 0 if the image is not a
// RISC-V ELF-64 whose segments lie in order, page-disjoint, inside the user
// space below the stack guard, with the entry in an executable one.
static uint64 loadelf(struct proc *p, const struct prog *pg) {
  uint64 size = pg->end - pg->start;
  const struct elfhdr *eh = (const struct elfhdr *)pg->start;
  if (size < sizeof *eh || eh->magic != ELF_MAGIC || eh->ident[0] != ELFCLASS64 ||
      eh->machine != EM_RISCV || eh->phentsize != sizeof(struct proghdr) || eh->phoff > size ||
      eh->phnum > (size - eh->phoff) / sizeof(struct proghdr))
    return 0;
  uint64 top = USER_BASE, entry = 0;
  int nv = 0;
  for (int i = 0; i < eh->phnum; i++) {
    const struct proghdr *ph = (const struct proghdr *)(pg->start + eh->phoff) + i;
    if (ph->type != PT_LOAD || ph->memsz == 0)
      continue;
    if (nv == NVMA - 2 || ph->filesz > ph->memsz || ph->off > size ||
        ph->filesz > size - ph->off || PGROUNDDOWN(ph->vaddr) < top ||
        ph->vaddr >= UGUARD_BASE || ph->memsz > UGUARD_BASE - ph->vaddr || !elfperm(ph->flags))
      return 0;
    struct vma *v = &p->vma[nv++];
    v->kind = ph->flags & PF_X ? VMA_TEXT : VMA_DATA;
    v->perm = elfperm(ph->flags);
    v->start = PGROUNDDOWN(ph->vaddr);
    v->end = top = PGROUNDUP(ph->vaddr + ph->memsz);
    v->file = pg->start + ph->off;
    v->fileva = ph->vaddr;
    v->filesz = ph->filesz;
    if (v->perm & PTE_X && ph->vaddr <= eh->entry && eh->entry < ph->vaddr + ph->memsz)
      entry = eh->entry;
  }
  if (!entry || top > UGUARD_BASE)
    return 0;
  p->vma[nv++] = (struct vma){.kind = VMA_HEAP, .perm = PTE_R | PTE_W, .start = top, .end = top};
  p->vma[nv] = (struct vma){.kind = VMA_STACK, .perm = PTE_R | PTE_W, .start = USTACK_BASE,
                            .end = USER_TOP};
  p->brk = top;
  return entry;
}

// Copy argv's strings and then its pointer array to the top of p's stack.
// Returns the user sp (argv[] lives there) and sets *argc, or returns 0 if
// argv exceeds MAXARG strings or ARGMAX bytes, or memory ran out.
static uint64 pushargs(struct proc *p, char **argv, int *argc) {
  uint64 sp = USER_TOP, uargv[MAXARG + 1];
  int n = 0;
  for (; argv[n]; n++) {
    uint64 len = strlen(argv[n]) + 1;
    if (n == MAXARG || USER_TOP - sp + len > ARGMAX)
      return 0;
    sp -= len;
    if (copyout(p, sp, argv[n], len) != 0)
      return 0;
    uargv[n] = sp;
  }
  uargv[n] = 0;
  sp = (sp - (n + 1) * sizeof(uint64)) & ~15UL;
  if (copyout(p, sp, uargv, (n + 1) * sizeof(uint64)) != 0)
    return 0;
  *argc = n;
  return sp;
}

// Load program `pg` with arguments `argv` (kernel strings, 0-terminated)
// into p, whose address space is empty, and set up its first return to
// user mode: pc at the entry, a0 = argc, a1 = argv, sp below them.
// Returns 0, or -1 if the image is malformed, argv too big or memory ran out.
int loadprog(struct proc *p, const struct prog *pg, char **argv) {
  int argc;
  uint64 entry = loadelf(p, pg), sp = entry ? pushargs(p, argv, &argc) : 0;
  if (!sp)
    return -1;
  struct trapframe *tf = p->tf;
  memset(tf, 0, sizeof *tf);
  tf->sepc = entry;
  tf->sp = sp;
  tf->a0 = argc;
  tf->a1 = sp;
  // Back to U with interrupts enabled there; SIE stays clear until sret.
  tf->sstatus = (csr_read(sstatus) & ~(SSTATUS_SPP | SSTATUS_SIE)) | SSTATUS_SPIE;
  return 0;
}
