// Trap handling: timer interrupts, system calls and page faults from the
// U-mode demo, and a panic for anything unexpected.
#include "types.h"
#include "riscv.h"
#include "memlayout.h"
#include "defs.h"
#include "trap.h"

#define TICK_NS 1000000UL   // 1 ms of virtual time

volatile uint64 ticks;
extern char trapvec[];

// User demo state (main.c).
extern pagetable_t user_pagetable;
#define USER_DATA 0x800000UL
#define SYS_HELLO 1
#define SYS_EXIT 2
void user_exited(long code) __attribute__((noreturn));

void trapinit(void) {
  csr_write(stvec, (uint64)trapvec);
  csr_write(sscratch, 0);
}

void timer_arm(void) { sbi_set_timer(rdtime() + TICK_NS); }

// Resolve a user page fault in the demo's data page with a fresh zero page.
// Returns 0 if resolved, -1 if the address is not a user data address.
static int user_fault(uint64 va) {
  if (PGROUNDDOWN(va) != USER_DATA)
    return -1;
  void *pa = kalloc();
  if (!pa)
    panic("user_fault: out of memory");
  if (mappages(user_pagetable, USER_DATA, PGSIZE, (uint64)pa, PTE_U | PTE_R | PTE_W) != 0)
    panic("user_fault: mappages");
  sfence_vma_va(USER_DATA);
  printf("trap: page fault at %p resolved with zero page %p\n", va, (uint64)pa);
  return 0;
}

void trap(struct trapframe *tf) {
  uint64 scause = tf->scause;
  int from_user = (tf->sstatus & SSTATUS_SPP) == 0;
  if (scause & SCAUSE_INTR) {
    if ((scause & 0xff) == IRQ_S_TIMER) {
      ticks++;
      timer_arm();
    } else {
      printf("trap: unexpected interrupt %d\n", (int)(scause & 0xff));
    }
  } else if (scause == CAUSE_ECALL_U && from_user) {
    tf->sepc += 4;
    if (tf->a7 == SYS_HELLO)
      printf("trap: system call from U-mode: hello\n");
    else if (tf->a7 == SYS_EXIT)
      user_exited(tf->a0);
    else
      printf("trap: unknown system call %d\n", (int)tf->a7);
  } else if ((scause == CAUSE_LOAD_PF || scause == CAUSE_STORE_PF) && from_user &&
             user_fault(tf->stval) == 0) {
    // the faulting instruction runs again and now succeeds
  } else {
    printf("trap: scause %p stval %p sepc %p from %s\n", scause, tf->stval, tf->sepc,
           from_user ? "user" : "kernel");
    panic("trap");
  }
  trapret(tf);
}

// Enter U-mode at `entry` for the first time. The trapframe is built at the
// top of the kernel stack whose top is `kstack_top`, so that trapret leaves
// that top in sscratch and later traps from U land on the same stack.
void usertrapret_first(uint64 entry, uint64 kstack_top) {
  struct trapframe *tf = (struct trapframe *)(kstack_top - sizeof(struct trapframe));
  memset(tf, 0, sizeof *tf);
  tf->sepc = entry;
  tf->sstatus = (csr_read(sstatus) & ~SSTATUS_SPP) | SSTATUS_SPIE;
  trapret(tf);
}
