// The platform-level interrupt controller (RISC-V PLIC spec 1.0.0). Its
// base, its number of sources and which context is our hart's S-mode one
// come from the device tree (platform.c), the register layout from
// memlayout.h. Only our context is touched: its enable bits (one per
// source, 32 to a word: a source above 31 is in a later word), its
// threshold and its claim/complete register.
#include "types.h"
#include "riscv.h"
#include "memlayout.h"
#include "defs.h"

#define REG(off) (*(volatile uint32 *)(platform.plic.base + (off)))
#define CONTEXT(off) REG(PLIC_CONTEXT + PLIC_CONTEXT_STRIDE * platform.plic.ctx + (off))

// Let every priority above 0 through to our context.
void plicinit(void) { CONTEXT(PLIC_THRESHOLD) = 0; }

// Route source `irq` (1..ndev) to our context, at priority 1.
void plic_enable(uint32 irq) {
  if (irq == 0 || irq > platform.plic.ndev)
    panic("plic_enable: no such source");
  REG(PLIC_PRIORITY + 4 * irq) = 1;
  REG(PLIC_ENABLE + PLIC_ENABLE_STRIDE * platform.plic.ctx + 4 * (irq / 32)) |= 1U << (irq % 32);
}

// An external interrupt: claim the source, dispatch it, complete it.
void devintr(void) {
  uint32 irq = CONTEXT(PLIC_CLAIM);
  if (irq && platform.enic.base && irq == platform.enic.irq)
    nic_intr();
  else if (irq)
    printf("devintr: unexpected irq %d\n", (int)irq);
  if (irq)
    CONTEXT(PLIC_CLAIM) = irq;
}
