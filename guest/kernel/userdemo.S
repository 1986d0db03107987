# A U-mode routine, position independent, copied into a user page by main.c.
# It makes a system call, touches an unmapped user page (the kernel resolves
# the page fault with a zero page), checks the value it stored, and exits.
#define SYS_HELLO 1
#define SYS_EXIT  2
#define USER_DATA 0x800000

.section .rodata.userdemo
.align 4
.globl userdemo_start
userdemo_start:
    li a7, SYS_HELLO
    ecall
    li t0, USER_DATA
    ld t2, 8(t0)              # load page fault: demand-zero page appears
    li t1, 0x5eed
    sd t1, 0(t0)
    ld a0, 0(t0)
    sub a0, a0, t1            # 0 if the store stuck
    or a0, a0, t2             # and the new page was zero
    li a7, SYS_EXIT
    ecall
1:  j 1b
.globl userdemo_end
userdemo_end:
