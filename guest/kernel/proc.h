// Processes: the process table entry, saved kernel context, the per-hart state.
#pragma once
#include "types.h"
#include "mm.h"
#include "syscall.h"

// Callee-saved registers, saved and restored by swtch.S in this order.
struct context {
  uint64 ra, sp;
  uint64 s[12];
};

enum procstate { UNUSED = PS_UNUSED, EMBRYO = PS_EMBRYO, RUNNABLE = PS_RUNNABLE,
                 RUNNING = PS_RUNNING, SLEEPING = PS_SLEEPING, ZOMBIE = PS_ZOMBIE };

struct proc {
  enum procstate state;
  int pid;
  char name[PROCNAME];
  struct proc *parent;
  void *chan;              // SLEEPING on this channel
  uint64 wake_at;          // sleep(): virtual-time deadline, 0 = none
  int killed;
  int xstate;              // exit status for wait()
  uint64 kstack;           // one page; its lowest word is a canary
  struct trapframe *tf;    // user registers, at the top of kstack
  struct context context;  // where swtch() resumes the process
  pagetable_t pagetable;   // kernel_pagetable for kernel threads
  struct vma vma[NVMA];
  uint64 brk;              // program break; the heap region ends at PGROUNDUP(brk)
  uint64 rss;              // resident user pages
  uint64 minflt, majflt;   // its page faults resolved without I/O / by reading swap
  void (*kfn)(void);       // kernel threads: the body (0 for user processes)
  int flags;               // PF_* below
};

struct cpu {
  struct proc *proc;        // running process, or 0 in the scheduler
  struct context context;   // the scheduler's, swtch() here to enter it
};

// Process flags.
#define PF_MEMALLOC 0x1  // reclaim, swap-out, AoE completion: may allocate below min

#define KSTACK_MAGIC 0x6b73746b63616e61UL  // canary at the bottom of every kernel stack

extern struct proc proc[NPROC];
