// CSR access and Sv39 definitions (RISC-V privileged spec).
#pragma once
#include "types.h"

#define SSTATUS_SIE  (1UL << 1)
#define SSTATUS_SPIE (1UL << 5)
#define SSTATUS_SPP  (1UL << 8)
#define SSTATUS_SUM  (1UL << 18)
#define SIE_SSIE (1UL << 1)
#define SIE_STIE (1UL << 5)
#define SIE_SEIE (1UL << 9)

#define SCAUSE_INTR (1UL << 63)
#define IRQ_S_TIMER 5
#define IRQ_S_EXT   9
#define CAUSE_ILLEGAL 2
#define CAUSE_BREAKPOINT 3
#define CAUSE_ECALL_U 8
#define CAUSE_FETCH_PF 12
#define CAUSE_LOAD_PF 13
#define CAUSE_STORE_PF 15

#define csr_read(csr) ({ uint64 __v; asm volatile("csrr %0, " #csr : "=r"(__v)); __v; })
#define csr_write(csr, v) asm volatile("csrw " #csr ", %0" :: "r"((uint64)(v)))
#define csr_set(csr, v) asm volatile("csrs " #csr ", %0" :: "r"((uint64)(v)))
#define csr_clear(csr, v) asm volatile("csrc " #csr ", %0" :: "r"((uint64)(v)))

static inline void sfence_vma(void) { asm volatile("sfence.vma zero, zero" ::: "memory"); }
static inline void sfence_vma_va(uint64 va) { asm volatile("sfence.vma %0, zero" :: "r"(va) : "memory"); }
static inline void wfi(void) { asm volatile("wfi"); }
// Order our stores to a page against later instruction fetches from it.
static inline void fence_i(void) { asm volatile("fence.i" ::: "memory"); }
static inline void intr_on(void) { csr_set(sstatus, SSTATUS_SIE); }
static inline void intr_off(void) { csr_clear(sstatus, SSTATUS_SIE); }
// The time CSR: timebase units since the machine started (time.c turns
// them into ns). OpenSBI lets S-mode read it directly; emu's firmware
// emulates the read from virtual time.
static inline uint64 rdtime(void) { return csr_read(time); }

// Sv39: 4 KiB pages, three levels of 512 PTEs.
#define PGSIZE 4096UL
#define PGSHIFT 12
#define PGROUNDUP(a) (((a) + PGSIZE - 1) & ~(PGSIZE - 1))
#define PGROUNDDOWN(a) ((a) & ~(PGSIZE - 1))

// PTE bits (privileged spec, "Sv39 page table entry").
#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_G (1UL << 5)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE_RSW0 (1UL << 8)   // the two bits the hardware leaves to software
#define PTE_RSW1 (1UL << 9)

#define PA2PTE(pa) ((((uint64)(pa)) >> 12) << 10)
#define PTE2PA(pte) (((pte) >> 10) << 12)
#define PTE_FLAGS(pte) ((pte) & 0x3FF)
#define MEGAPAGE (1UL << 21)
#define PXSHIFT(level) (PGSHIFT + 9 * (level))
#define PX(level, va) ((((uint64)(va)) >> PXSHIFT(level)) & 0x1FF)
#define MAXVA (1UL << 38)

#define SATP_SV39 (8UL << 60)
#define MAKE_SATP(pt) (SATP_SV39 | (((uint64)(pt)) >> 12))
