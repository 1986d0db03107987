// Traps: system calls, page faults and other exceptions from user mode,
// timer interrupts (round-robin preemption, sleep deadlines), and a panic for
// anything the kernel does not expect from itself.
#include "types.h"
#include "riscv.h"
#include "proc.h"
#include "trap.h"
#include "defs.h"

volatile uint64 ticks;     // timer interrupts taken; sleepers sleep on it
uint64 tick_ns = 1000000;  // round-robin quantum (boot parameter tick_us)
extern char trapvec[];

void trapinit(void) {
  csr_write(stvec, (uint64)trapvec);
  csr_write(sscratch, 0);
  csr_set(sie, SIE_STIE);
}

// Program the timer for the earliest of: one quantum from now if `busy` (a
// process is about to run and may need preempting), the nearest sleep
// deadline. With neither it stays unarmed: nothing can then wake an idle
// hart, a deadlock the machine reports by ending the run (exit 125).
//
// An SBI call is a trap to the firmware, so an armed timer that is still in
// the future and no later than needed is left alone (firing early is
// harmless: the tick is taken and the timer programmed again).
static uint64 armed;  // what the timer is set to (~0: disarmed)

void timer_program(int busy) {
  uint64 next = nextdeadline(), now = now_ns(), aoe = aoe_deadline();
  if (aoe && (!next || aoe < next))
    next = aoe;
  if (busy) {
    uint64 q = now + tick_ns;
    if (!next || q < next)
      next = q;
  }
  if (!next)
    next = ~0UL;
  if (armed > now && armed <= next && armed != ~0UL)
    return;
  armed = next;
  sbi_set_timer(next == ~0UL ? ~0UL : ns2tb(next));  // also clears a pending timer interrupt
}

// The deadline (ns) the last timer interrupt taken had been set for.
uint64 timer_fired;

static void clockintr(void) {
  timer_fired = armed;
  ticks++;
  kstats.ticks++;
  aoe_timer();
  wakeup((void *)&ticks);
}

static const char *causename(uint64 c) {
  switch (c) {
  case CAUSE_ILLEGAL: return "illegal instruction";
  case CAUSE_BREAKPOINT: return "breakpoint";
  case CAUSE_FETCH_PF: return "instruction page fault";
  case CAUSE_LOAD_PF: return "load page fault";
  case CAUSE_STORE_PF: return "store page fault";
  default: return "exception";
  }
}

static void usertrap(struct trapframe *tf) {
  struct proc *p = myproc();
  uint64 cause = tf->scause;
  if (cause & SCAUSE_INTR) {
    if ((cause & 0xff) == IRQ_S_EXT) {
      devintr();
      goto out;
    }
    if ((cause & 0xff) != IRQ_S_TIMER)
      panic("usertrap: unexpected interrupt");
    clockintr();
    if (anyrunnable()) {  // the scheduler reprograms the timer
      kstats.preempt++;
      yield();
    } else {
      timer_program(1);
    }
  } else if (cause == CAUSE_ECALL_U) {
    tf->sepc += 4;
    syscall(tf);
  } else if (cause == CAUSE_FETCH_PF || cause == CAUSE_LOAD_PF || cause == CAUSE_STORE_PF) {
    int r = vmfault(p, tf->stval, cause);
    if (r == VMF_SEGV) {
      printf("pid %d (%s): segfault at 0x%lx cause %d pc 0x%lx\n", p->pid, p->name, tf->stval,
             (int)cause, tf->sepc);
      kstats.segfaults++;
      p->killed = 1;
    } else if (r == VMF_OOM) {
      printf("pid %d (%s): out of memory at 0x%lx pc 0x%lx, killed\n", p->pid, p->name,
             tf->stval, tf->sepc);
      kstats.oom_kills++;
      p->killed = 1;
    } else if (r == VMF_IOERR) {
      printf("pid %d (%s): swap-in I/O error at 0x%lx pc 0x%lx, killed\n", p->pid, p->name,
             tf->stval, tf->sepc);
      p->killed = 1;
    }
  } else {
    printf("pid %d (%s): %s (cause %d) stval 0x%lx pc 0x%lx, killed\n", p->pid, p->name,
           causename(cause), (int)cause, tf->stval, tf->sepc);
    p->killed = 1;
  }
out:
  if (p->killed)
    exit(-1);
}

// From S-mode only the timer is expected (taken in the scheduler's idle
// wait): the kernel touches user memory only through copyin/copyout, which
// never fault.
static void kerneltrap(struct trapframe *tf) {
  uint64 cause = tf->scause;
  if (cause == (SCAUSE_INTR | IRQ_S_TIMER)) {
    clockintr();
    timer_program(0);
    return;
  }
  if (cause == (SCAUSE_INTR | IRQ_S_EXT)) {
    devintr();
    return;
  }
  printf("kerneltrap: %s (scause %p) stval %p sepc %p\n", causename(cause), cause, tf->stval,
         tf->sepc);
  panic("kerneltrap");
}

void trap(struct trapframe *tf) {
  if (tf->sstatus & SSTATUS_SPP)
    kerneltrap(tf);
  else
    usertrap(tf);
  trapret(tf);
}
