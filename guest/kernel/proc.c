// Processes: the table, spawn/exit/wait, sleep/wakeup, the round-robin
// scheduler. One hart, and the kernel runs with interrupts off except while
// the scheduler waits for one, so kernel code is never preempted and the
// process table needs no locks.
#include "types.h"
#include "riscv.h"
#include "proc.h"
#include "trap.h"
#include "defs.h"

struct proc proc[NPROC];
struct cpu cpu;
static struct proc *initproc;
static int nextpid = 1;

struct proc *myproc(void) { return cpu.proc; }

// Returns a fresh EMBRYO process named `name` with a pid and a kernel stack
// (canary at its bottom, trapframe at its top), or 0 if the table is full
// or memory ran out.
static struct proc *allocproc(const char *name) {
  struct proc *p;
  for (p = proc; p < proc + NPROC; p++)
    if (p->state == UNUSED)
      break;
  if (p == proc + NPROC)
    return 0;
  void *kstack = palloc(FRAME_KSTACK);
  if (!kstack)
    return 0;
  memset(p, 0, sizeof *p);
  p->kstack = (uint64)kstack;
  *(uint64 *)kstack = KSTACK_MAGIC;
  p->tf = (struct trapframe *)(p->kstack + PGSIZE - sizeof(struct trapframe));
  p->pid = nextpid++;
  strncpy(p->name, name, PROCNAME - 1);
  p->state = EMBRYO;
  return p;
}

// Release everything p still holds and return its slot to the table.
static void freeproc(struct proc *p) {
  if (p->pagetable && p->pagetable != kernel_pagetable)
    uvmfree(p);
  pfree((void *)p->kstack);
  memset(p, 0, sizeof *p);
  p->state = UNUSED;
}

// A new process's first switch lands here, on its kernel stack.
static void forkret(void) { trapret(myproc()->tf); }

static void kthreadstart(void) {
  myproc()->kfn();
  exit(0);
}

static void makerunnable(struct proc *p) {
  p->parent = myproc();
  if (!initproc)
    initproc = p;
  p->state = RUNNABLE;
  kstats.procs_created++;
}

// Start embedded program `name` as a child of the current process (the
// first one started becomes init) with argv (kernel strings, 0-terminated).
// Returns the child's pid, or -1 if there is no such program, its image is
// malformed, argv is too big, or processes or memory ran out.
int spawn(const char *name, char **argv) {
  const struct prog *pg = findprog(name);
  struct proc *p = pg ? allocproc(name) : 0;
  if (!p)
    return -1;
  p->pagetable = uvmcreate();
  if (!p->pagetable || loadprog(p, pg, argv) != 0) {
    freeproc(p);
    return -1;
  }
  p->context.ra = (uint64)forkret;
  p->context.sp = (uint64)p->tf;
  makerunnable(p);
  return p->pid;
}

// Start a kernel thread running fn() in the kernel's address space, child of
// the current process. Returns its pid, or -1 if processes or memory ran out.
int kthread(const char *name, void (*fn)(void)) {
  struct proc *p = allocproc(name);
  if (!p)
    return -1;
  p->pagetable = kernel_pagetable;
  p->kfn = fn;
  p->context.ra = (uint64)kthreadstart;
  p->context.sp = p->kstack + PGSIZE;
  makerunnable(p);
  return p->pid;
}

// Give up the hart: switch to the scheduler. The caller has set its state.
void sched(void) {
  struct proc *p = myproc();
  if (p->state == RUNNING)
    panic("sched: running");
  if (csr_read(sstatus) & SSTATUS_SIE)
    panic("sched: interrupts on");
  swtch(&p->context, &cpu.context);
}

void yield(void) {
  myproc()->state = RUNNABLE;
  sched();
}

// Sleep on `chan` until wakeup(chan). Interrupts are off in the kernel, so no
// wakeup can slip in between the caller's check and the sleep.
void sleep(void *chan) {
  struct proc *p = myproc();
  p->chan = chan;
  p->state = SLEEPING;
  sched();
  p->chan = 0;
}

// sleep() for a process waiting on memory or I/O: counted in the
// tasks_blocked gauge while it sleeps (the deadlock detector reads it).
void sleep_blocked(void *chan) {
  kstats.tasks_blocked++;
  sleep(chan);
  kstats.tasks_blocked--;
}

void wakeup(void *chan) {
  for (struct proc *p = proc; p < proc + NPROC; p++)
    if (p->state == SLEEPING && p->chan == chan)
      p->state = RUNNABLE;
}

// Sleep until virtual time `deadline` (ns). The timer is programmed for the
// earliest deadline (trap.c); each timer interrupt wakes the sleepers on
// `ticks`, which check their own deadline.
void sleepuntil(uint64 deadline) {
  struct proc *p = myproc();
  p->wake_at = deadline;
  while (now_ns() < deadline && !p->killed)
    sleep((void *)&ticks);
  p->wake_at = 0;
}

// Returns the earliest sleep deadline, or 0 if nobody sleeps on time.
uint64 nextdeadline(void) {
  uint64 next = 0;
  for (struct proc *p = proc; p < proc + NPROC; p++)
    if (p->state == SLEEPING && p->wake_at && (!next || p->wake_at < next))
      next = p->wake_at;
  return next;
}

// Returns 1 if some process other than the caller could run.
int anyrunnable(void) {
  for (struct proc *p = proc; p < proc + NPROC; p++)
    if (p->state == RUNNABLE)
      return 1;
  return 0;
}

// Power the machine off with `status` as emu's exit status (0..255).
void poweroff(int status) {
  sbi_shutdown(status == 0 ? 0 : 0xF0000000U | (status & 0xff));
}

// End the current process with `status`. Its memory is freed now; the
// parent's wait() frees the rest. When init exits the machine powers off
// with init's status.
void exit(int status) {
  struct proc *p = myproc();
  if (p == initproc) {
    printf("init: exited with status %d\n", status);
    if (status != 0 && kstats.aoe_dead) {
      // Whatever failed, the cause is known: say so with one status (EIO).
      printf("boot: the swap device died (I/O error), powering off with status 5\n");
      poweroff(5);
    }
    if (status == 0)
      printf("boot: all good, powering off\n");
    else
      printf("boot: init failed, powering off\n");
    poweroff(status);
  }
  for (struct proc *c = proc; c < proc + NPROC; c++) {
    if (c->parent == p) {
      c->parent = initproc;
      if (c->state == ZOMBIE)
        wakeup(initproc);
    }
  }
  if (p->pagetable != kernel_pagetable) {
    vmswitch(kernel_pagetable);
    uvmfree(p);
  }
  p->xstate = status;
  p->state = ZOMBIE;
  wakeup(p->parent);
  sched();
  panic("exit: zombie ran");
}

// Wait for a child to exit and free it. Returns its pid and stores its exit
// status in *status (if status is not 0), or returns -1 if the caller has
// no children or has been killed.
int wait(int *status) {
  struct proc *p = myproc();
  for (;;) {
    int kids = 0;
    for (struct proc *c = proc; c < proc + NPROC; c++) {
      if (c->parent != p || c->state == UNUSED)
        continue;
      kids = 1;
      if (c->state == ZOMBIE) {
        int pid = c->pid;
        if (status)
          *status = c->xstate;
        freeproc(c);
        return pid;
      }
    }
    if (!kids || p->killed)
      return -1;
    sleep(p);
  }
}

// Fill the per-process part of a meminfo record.
void procinfo(struct meminfo *mi) {
  mi->nproc = 0;
  for (struct proc *p = proc; p < proc + NPROC; p++) {
    if (p->state == UNUSED)
      continue;
    struct procinfo *pi = &mi->procs[mi->nproc++];
    pi->pid = p->pid;
    pi->state = p->state;
    pi->rss = p->rss;
    pi->minflt = p->minflt;
    pi->majflt = p->majflt;
    memcpy(pi->name, p->name, PROCNAME);
  }
}

// The idle wait: wfi with interrupts still off returns once an enabled
// interrupt is pending (no wakeup can be lost between the scan and the
// wait), and the brief intr_on() takes it.
static void idle(void) {
  timer_program(0);
  wfi();
  intr_on();
  intr_off();
}

// Per-hart scheduler, never returns: run each RUNNABLE process in turn,
// starting after the one that ran last (round robin).
void scheduler(void) {
  struct proc *last = proc + NPROC - 1;
  for (;;) {
    struct proc *p = last;
    do {
      p = p + 1 == proc + NPROC ? proc : p + 1;
    } while (p->state != RUNNABLE && p != last);
    swap_sched();
    if (p->state != RUNNABLE) {
      idle();
      continue;
    }
    p->state = RUNNING;
    cpu.proc = p;
    // A user process or kswapd that has work (not one that only checks a
    // sleep deadline the tick woke it for): the machine is not idle.
    uint64 now = now_ns();
    if ((!p->kfn || (p->flags & PF_MEMALLOC)) && (!p->wake_at || now >= p->wake_at))
      last_activity_ns = now;
    vmswitch(p->pagetable);
    timer_program(1);
    kstats.ctxsw++;
    swtch(&cpu.context, &p->context);
    cpu.proc = 0;
    if (p->state != UNUSED && *(uint64 *)p->kstack != KSTACK_MAGIC)
      panic("scheduler: kernel stack overflow");
    last = p;
  }
}
