# The kernel's first instructions: the firmware enters here in S-mode with
# a0 = hart id, a1 = the flattened device tree, satp = 0 (bare), interrupts off.
.section .text.entry
.globl _entry
_entry:
    la sp, stack0_top
    mv s0, zero          # end of the frame-pointer chain for backtraces
    call main
1:  wfi
    j 1b

.section .bss
.align 12
.globl stack0
stack0:
    .space 16384
.globl stack0_top
stack0_top:
