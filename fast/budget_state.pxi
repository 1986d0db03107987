# Shared by fast/budget.pyx and fast/traps.pyx (textual include): the block
# budget's state, which the trap path's C interrupt hook updates after a
# trap it delivered itself (as Traps.arm does for the Python path).

# What a block's SYSTEM-opcode instructions (CSR access, xRET, WFI, ECALL,
# SFENCE) mean for the block after it (emu/machine/budget.py, "Blocks"):
DEF SYS_NONE = 0          # none: the interrupt state did not change
DEF SYS_INSIDE = 1        # one, not last: recheck what is enabled
DEF SYS_LAST = 2          # last: recheck; the next block follows unless a trap was taken
DEF SYS_SRET = 3          # sret last: the next block is at sepc unless a trap was taken
DEF SYS_MRET = 4          # mret last: the next block is at mepc unless a trap was taken
DEF SYS_FENCE_I = 5       # fence.i last: as SYS_LAST, and code may have changed
DEF SYS_SATP = 6          # a satp CSR access last: as SYS_LAST, and check the MODE
DEF SYS_PMP = 7           # a pmpcfg/pmpaddr access last: as SYS_LAST, and check PMP
DEF NCACHE = 16384         # block-count cache entries (a power of two)
DEF MAX_BLOCK = 8192      # bytes: QEMU caps a TB at 512 instructions, two pages


cdef struct count_entry:
    uint64_t pc
    uint64_t epoch
    uint32_t size
    uint16_t n
    uint16_t system


cdef struct budget_state:
    int64_t icount
    int64_t stop_at
    uint64_t lines
    uint64_t umip
    uint64_t mie
    uint64_t mideleg
    int in_m
    uint64_t blk_pc
    uint64_t blk_size
    int stopped
    int irq_stop
    uint64_t *code_epoch      # the MMU's code epoch (emu/mmu/tlb.py)
    uint64_t own_epoch        # forget_code() and the fallback when no MMU watches
    uint64_t counted          # blocks whose instructions were decoded (cache misses)
    int masked                # the last check found the pending interrupts masked
    int after_system          # SYS_* of the block let run last
    uint64_t expect           # where the next block must start (SYS_LAST, start())
    int expect_valid
    int native_trap           # unicorn took an interrupt itself (see the reference)
    const unsigned char *pmp_state   # unicorn's PMP registers (watch_pmp), or NULL
    unsigned char pmp_seen[256]      # ... as the hook last saw them
    uint64_t pmp_flushes      # TLB flushes for a PMP change
    uint64_t fence_i          # fence.i executed (each flushes the TLB)
    uint64_t good_satp        # satp after its last write of a MODE we walk
    uint64_t satp_ignored     # satp writes of a MODE we do not walk, undone
    count_entry cache[NCACHE]
