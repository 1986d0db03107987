// The registers saved by trapvec.S on the kernel stack, in its order.
#pragma once
#include "types.h"

struct trapframe {
  uint64 zero, ra, sp, gp, tp, t0, t1, t2, s0, s1;
  uint64 a0, a1, a2, a3, a4, a5, a6, a7;
  uint64 s2, s3, s4, s5, s6, s7, s8, s9, s10, s11;
  uint64 t3, t4, t5, t6;
  uint64 sepc, sstatus, scause, stval;
};

_Static_assert(sizeof(struct trapframe) == 288, "trapframe layout must match trapvec.S");

void trap(struct trapframe *tf);
void trapret(struct trapframe *tf) __attribute__((noreturn));
